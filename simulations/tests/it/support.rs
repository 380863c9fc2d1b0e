//! Helpers shared by the simulation tests: who may share the machine with whom.
//!
//! Each test starts its own network of relays on loopback, all in this one process. The tests
//! that measure throughput or how a stream's bytes split over its strands (the scheduler
//! follows each strand's RTT) would be skewed by another network running beside them on a small
//! CI machine, so they run [`alone`]; every other test that starts a network takes a
//! [`shared`] turn, and any number of those run side by side (up to the test threads).

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Read: a network test is running. Write: a measuring test runs alone.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// For a test that starts a network: waits while a measuring test runs, and keeps measuring
/// tests waiting until the guard is dropped.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// For a test that measures throughput or strand shares: waits until no other network test
/// runs, and keeps them all waiting until the guard is dropped.
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}
