//! The `braid` command's end-to-end tests, one binary (each former test binary is a module):
//! `braid relay`, `directory`, `registry`, `proxy` and `sim` run as OS processes
//! (`CARGO_BIN_EXE_braid`), checked with curl, SOCKS5 clients and their logs; `upnp_netns`
//! runs relays in network namespaces behind a real UPnP router; `layers` checks the README's
//! crate map against the Cargo.toml files. Shared helpers are in
//! `support`.
//!
//! The tests share this process and run in parallel: each network has its own loopback
//! addresses (`127.0.0.BASE..`, a distinct base per test), ports are picked by the OS (fixed
//! ports only inside `upnp_netns`'s namespaces, which are named per test), and nothing sets
//! environment variables of this process (children get theirs per command).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod app_ports;
mod config_errors;
mod e2e_curl;
mod exit_policy;
mod layers;
mod manual;
mod ops;
mod ops_signals;
mod readme_network;
mod registry_e2e;
mod sd_notify;
mod sim_serve;
mod socks_peers;
mod status_page;
mod strands_curl;
mod support;
mod upnp_netns;
