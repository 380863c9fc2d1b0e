//! braid-router's integration tests, one binary (each former test binary is a module): the
//! circuit manager's relay list across directory updates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod directory;
