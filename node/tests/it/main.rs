//! braid-node's integration tests, one binary (each former test binary is a module): the
//! shipped config files against the defaults, and three in-process registry nodes.

mod configs;
mod registry_node;
