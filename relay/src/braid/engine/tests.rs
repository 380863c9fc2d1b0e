//! Engine tests on a virtual clock.
