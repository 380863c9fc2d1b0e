//! braid-relay's integration tests, one binary (each former test binary is a module): the
//! whole onion sans-IO, and the braided-stream engine over in-memory strands.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod braid_engine;
mod measure;
mod onion;
