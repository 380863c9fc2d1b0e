//! Why a Raft call of the registry failed. A command that applied but was refused by the state
//! machine's rules is not an error: it is `Ok(Applied::Rejected(..))`.

use std::path::PathBuf;
use std::time::Duration;

use crate::store::StoreError;

/// Everything [`RegistryRaft`](super::RegistryRaft) calls can fail with.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The configuration breaks a rule (see `RaftConfig::validate`).
    #[error("bad raft config: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The state machine's SQLite file could not be opened or read.
    #[error("registry store: {0}")]
    Store(#[from] StoreError),
    /// The Raft log's SQLite file could not be opened.
    #[error("raft log {path}: {source}")]
    LogStore {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The transport refused (registering member addresses, accepting `/braid/raft/1`).
    #[error("transport while {context}: {source}")]
    Transport {
        /// What was being done.
        context: &'static str,
        /// The transport's error.
        #[source]
        source: braid_transport::Error,
    },
    /// openraft refused to start, initialize or serve (its own words).
    #[error("raft: {reason}")]
    Raft {
        /// openraft's error text.
        reason: String,
    },
    /// No leader was known after waiting this long (an election is running, or too few
    /// members are up to elect one).
    #[error("no raft leader after waiting {waited:?}")]
    NoLeader {
        /// How long the call waited.
        waited: Duration,
    },
    /// The leader (or the member believed to lead) could not take the command.
    #[error("forwarding to leader {leader}: {reason}")]
    Forward {
        /// The leader's node id.
        leader: u64,
        /// What went wrong.
        reason: String,
    },
    /// A wait ran out of time.
    #[error("{what}: not done within {timeout:?}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// The node was shut down.
    #[error("the raft node is shut down")]
    ShutDown,
}
