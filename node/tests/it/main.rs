//! braid-node's integration tests, one binary (each former test binary is a module): the
//! shipped config files against the defaults, three in-process registry nodes, and the
//! metrics of every role on a small in-process network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod api;
mod configs;
mod metrics;
mod registry_node;
mod stale_directory;
mod support;
