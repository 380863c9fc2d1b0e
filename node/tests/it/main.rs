//! braid-node's integration tests, one binary (each former test binary is a module): the
//! shipped config files against the defaults, and three in-process registry nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod api;
mod configs;
mod registry_node;
mod stale_directory;
