//! Errors of the container side of a start. Each names the operation and the path or value.

use nix::errno::Errno;
use std::fmt;
use std::path::PathBuf;

/// `No such file or directory (ENOENT)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrnoText(pub Errno);

impl fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.0.desc(), self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("wait for the monitor on the sync pipe: {}", ErrnoText(*.errno))]
    Sync { errno: Errno },
    #[error("the monitor exited before releasing the container")]
    MonitorGone,
    #[error("mount {src} ({fstype}) on {target}: {}", ErrnoText(*.errno))]
    Mount {
        src: String,
        fstype: String,
        target: PathBuf,
        errno: Errno,
    },
    #[error("remount {target} ({flags}): {}", ErrnoText(*.errno))]
    Remount {
        target: PathBuf,
        flags: String,
        errno: Errno,
    },
    #[error("set propagation {flags} on {target}: {}", ErrnoText(*.errno))]
    Propagation {
        target: PathBuf,
        flags: String,
        errno: Errno,
    },
    #[error("unmount {target}: {}", ErrnoText(*.errno))]
    Umount { target: PathBuf, errno: Errno },
    #[error("pivot_root into {root}: {}", ErrnoText(*.errno))]
    PivotRoot { root: PathBuf, errno: Errno },
    /// mkdir, create, mknod, chdir, readlink, read, symlink, open on one path.
    #[error("{op} {path}: {}", ErrnoText(*.errno))]
    Path {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("mount target {target:?}: {reason}")]
    BadTarget {
        target: String,
        reason: &'static str,
    },
    #[error("too many levels of symbolic links resolving {path:?} inside {root}")]
    SymlinkLoop { root: PathBuf, path: String },
    #[error("write {value:?} to {path}: {}", ErrnoText(*.errno))]
    Write {
        path: PathBuf,
        value: String,
        errno: Errno,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// sethostname, unshare, setrlimit, personality, capability and id changes, console setup.
    #[error("{op} {value}: {}", ErrnoText(*.errno))]
    Op {
        op: &'static str,
        value: String,
        errno: Errno,
    },
    #[error("exec {path}: {}", ErrnoText(*.errno))]
    Exec { path: String, errno: Errno },
}

impl ChildError {
    pub(crate) fn path(op: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        ChildError::Path {
            op,
            path: path.into(),
            errno,
        }
    }
    pub(crate) fn op(op: &'static str, value: impl fmt::Display, errno: Errno) -> Self {
        ChildError::Op {
            op,
            value: value.to_string(),
            errno,
        }
    }
}
