//! The directory model's integration tests: one binary, a module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod descriptor;
mod directory;
mod listing;
mod policy;
mod snapshot_codec;
mod snapshot_verify;
mod support;
