//! braid-splitter's integration tests, one binary: properties (any loss, reordering and
//! duplication pattern reassembles exactly or fails clearly) and scenarios (end-to-end over the
//! virtual-clock network of `braid_splitter::harness`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod properties;
mod scenarios;
