//! The node crate's error type.

use std::path::PathBuf;

/// Errors starting or running a node.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A config file could not be read.
    #[error("config file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A config file does not parse (the message names the key).
    #[error("config file {path}: {message}")]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A config value is out of range.
    #[error("config file {path}: key `{key}`: {reason}")]
    ConfigValue {
        /// The file (or `"<built-in>"` for programmatic configs).
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key file is bad.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A relay descriptor file is unreadable or not a valid signed descriptor.
    #[error("descriptor file {path}: {reason}")]
    Descriptor {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] braid_transport::Error),
    /// The relay service failed.
    #[error("relay: {0}")]
    Relay(#[from] braid_relay::RelayError),
    /// The router failed.
    #[error("router: {0}")]
    Router(#[from] braid_router::RouterError),
    /// A descriptor or directory failed.
    #[error("registry: {0}")]
    Registry(#[from] braid_directory::Error),
    /// A registry service (Raft, publication, directory feed) failed.
    #[error("{0}")]
    Service(String),
    /// I/O on a named file or socket.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl NodeError {
    /// The same error, naming `file` where it names a placeholder (`<registry config>`,
    /// `<built-in>` ...): a node started from a config file reports checks made after loading
    /// it (such as "this node is not in the registries list") against that file.
    pub fn in_file(self, file: &std::path::Path) -> Self {
        match self {
            NodeError::ConfigValue { path, key, reason }
                if path.to_string_lossy().starts_with('<') =>
            {
                NodeError::ConfigValue {
                    path: file.to_path_buf(),
                    key,
                    reason,
                }
            }
            other => other,
        }
    }
}
