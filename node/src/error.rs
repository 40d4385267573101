//! Node errors, sorted by whose problem they are.

use std::path::{Path, PathBuf};

/// Errors starting or running a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory has no node yet.
    #[error("no kith node in {0} (run `kith init --name NAME --listen ADDR` first)")]
    NotInitialized(PathBuf),
    /// `init` on a directory that already has a node.
    #[error("{0} already holds a kith node")]
    AlreadyInitialized(PathBuf),
    /// Another daemon holds the data directory.
    #[error("a kith node is already running on {dir}{}; stop it with `kith stop`", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { dir: PathBuf, pid: Option<u32> },
    /// A setting or file has a bad value.
    #[error("{0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{path}: {error}")]
    Io {
        path: String,
        /// Not a `source`: the message already says it, and chained errors would say it twice.
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

impl NodeError {
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        NodeError::Io {
            path: path.display().to_string(),
            error,
        }
    }
}
