#![doc = include_str!("../README.md")]

pub mod error;
pub mod reader;
pub mod writer;

pub use error::{Error, Problem, WriteError};
pub use reader::Reader;
pub use writer::Writer;

#[cfg(test)]
mod tests;
