#![doc = include_str!("../README.md")]

pub mod protocol;
#[cfg(feature = "raft")]
pub mod raft;
pub mod repeat;
#[cfg(feature = "client")]
pub mod service;
pub mod state;
#[cfg(feature = "store")]
pub mod store;
