//! braid-simulations' integration tests, one binary (each former test binary is a module):
//! whole networks in this process over real QUIC on loopback (bandwidth limits, faults, relay
//! bounds, preemptive circuits, braided strands) and the scenario files. Tests that measure
//! run alone (see `support`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod bandwidth;
mod exposure;
mod families;
mod faults;
mod guards;
mod identities;
mod limits;
mod preemptive;
mod scenarios;
mod strands;
mod support;
