//! braid-transport's integration tests, one binary (each former test binary is a module): real
//! swarms on loopback, the dial-back server and client, the identity file, and the rustls
//! provider the transport installs itself. Shared helpers are in `support`.
//!
//! Nothing in this binary installs a rustls crypto provider: `Transport::start` does (see
//! `provider`). The whole binary needs the `driver` feature (`required-features` in Cargo.toml).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod accept;
mod dialback;
mod identity;
mod identity_cost;
mod provider;
mod routing;
mod support;
mod transport;
