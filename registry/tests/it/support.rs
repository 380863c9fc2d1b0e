//! Helpers shared by the test modules.

pub(crate) mod relays;
#[cfg(feature = "server")]
pub(crate) mod service;
