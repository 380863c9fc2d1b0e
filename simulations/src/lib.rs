#![doc = include_str!("../README.md")]

pub mod exposure;
pub mod fault;
pub mod http;
pub mod network;
pub mod report;
pub mod scenario;

pub use network::SimNetwork;
pub use report::Report;
pub use scenario::Scenario;

/// Errors of the simulator.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node failed to start.
    #[error("node: {0}")]
    Node(#[from] braid_node::NodeError),
    /// A scenario file is bad.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A fault could not be applied.
    #[error("fault: {0}")]
    Fault(String),
    /// The network never became ready.
    #[error("network not ready: {0}")]
    NotReady(String),
}

pub mod run;
