//! Errors of `lxrs attach`.

use nix::errno::Errno;
use std::path::PathBuf;

/// Why an attach failed. Every variant names the container (or the value) and the operation;
/// the message is complete on its own (OS errors are part of it, not a `source()` chain).
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The init process is gone (container stopped, or a stale pid).
    #[error("container {name:?} is not running (process {pid} does not exist)")]
    NotRunning { name: String, pid: i32 },
    /// `/proc/<pid>/ns/<ns>` could not be inspected or opened.
    #[error("container {name:?}: cannot open {ns} namespace {}: {cause}", path.display())]
    Namespace {
        name: String,
        ns: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A namespace named with `-s` that the kernel or the target does not have.
    #[error("container {name:?}: no {ns} namespace to enter ({}): {cause}", path.display())]
    NoSuchNamespace {
        name: String,
        ns: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Reading or opening a host file (`/proc/<pid>/cgroup`, a `cgroup.procs`, a log file, ...).
    #[error("{op} {}: {cause}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A bad option value (`-s`, `-e`, `-a`, `-v`, ...).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// A system call in the attaching process failed.
    #[error("{op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    /// A setup step in the attached process (inside the container) failed; nothing was run.
    #[error("container {name:?}: {op}: {errno}")]
    Setup {
        name: String,
        op: String,
        errno: Errno,
    },
    /// The command could not be executed inside the container.
    #[error("container {name:?}: cannot execute {command:?}: {errno}")]
    Exec {
        name: String,
        command: String,
        errno: Errno,
    },
    /// Forking Rust code out of a multi-threaded process is not allowed.
    #[error("attach must run in a single-threaded process (this one has {threads} threads)")]
    Threaded { threads: u32 },
}

impl AttachError {
    /// The exit status `lxrs attach` should return for this error: 127 (command not found) or
    /// 126 (not executable) for [`AttachError::Exec`], like a shell; 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AttachError::Exec { errno, .. } if *errno == Errno::ENOENT => 127,
            AttachError::Exec { .. } => 126,
            _ => 1,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        AttachError::Io {
            op,
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        AttachError::Invalid {
            what,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
