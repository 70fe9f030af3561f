//! Errors of the lifecycle API.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("container {name:?} is already running")]
    AlreadyRunning { name: String },
    #[error("container {name:?} is not running")]
    NotRunning { name: String },
    #[error("container {name:?} failed to start: {message}")]
    StartFailed { name: String, message: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} (container {name:?}): {source}")]
    Monitor {
        op: &'static str,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container {name:?}: monitor answered {op}: {message}")]
    Refused {
        op: &'static str,
        name: String,
        message: String,
    },
    #[error("container {name:?}: protocol error during {op}: {detail}")]
    Protocol {
        op: &'static str,
        name: String,
        detail: String,
    },
    #[error("container {name:?}: {what} did not happen within {secs} s")]
    Timeout {
        name: String,
        what: &'static str,
        secs: u64,
    },
    #[error("container {name:?}: {message}")]
    Invalid { name: String, message: String },
}
