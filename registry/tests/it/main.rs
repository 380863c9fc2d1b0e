//! The registry's integration tests: one binary, a module per topic. The modules that need the
//! SQLite store, the Raft group or the server side of the service are compiled with the feature
//! they need (`cargo test -p braid-registry --all-features` runs them all).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[cfg(feature = "server")]
mod leader_jobs;
#[cfg(feature = "server")]
mod measure;
#[cfg(feature = "raft")]
mod raft;
#[cfg(feature = "server")]
mod service;
#[cfg(feature = "server")]
mod service_dialback;
#[cfg(feature = "server")]
mod service_feed;
mod state;
#[cfg(feature = "store")]
mod store;
mod support;
#[cfg(feature = "server")]
mod votes;
