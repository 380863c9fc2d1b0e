//! braid-relay's integration tests, one binary (each former test binary is a module): the
//! whole onion sans-IO, and the braided-stream engine over in-memory strands.

mod braid_engine;
mod onion;
