//! Waiting for the signal (or time) that stops a node.

use std::time::Duration;

use anyhow::{Context, Result};

/// Waits for SIGINT, SIGTERM, or `for_secs` seconds.
pub(crate) async fn wait_for_stop(for_secs: Option<u64>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let limit = async {
        match for_secs {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = limit => {}
    }
    Ok(())
}
