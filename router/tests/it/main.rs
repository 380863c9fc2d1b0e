//! braid-router's integration tests, one binary (each former test binary is a module): the
//! circuit manager's relay list across directory updates.

mod directory;
