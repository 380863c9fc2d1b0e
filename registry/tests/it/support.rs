//! Helpers shared by the test modules.

pub mod relays;
#[cfg(feature = "server")]
pub mod service;
