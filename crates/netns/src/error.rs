//! Errors of this crate: every variant names the operation and the link, address or path.

use std::fmt;
use std::io;

/// Result alias of this crate.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to the kernel about networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The kernel answered a request with an error (a netlink NACK).
    #[error("{op} {target}: {} ({}, errno {errno}){}", errno_desc(*errno), errno_name(*errno), detail_suffix(detail))]
    Kernel {
        /// What we asked for, e.g. "create veth".
        op: &'static str,
        /// The link, address or route the request was about.
        target: String,
        /// Positive errno value.
        errno: i32,
        /// The kernel's extended-ack message, when it sent one ("Unknown device type").
        detail: Option<String>,
    },
    /// Opening, binding or using the netlink socket failed.
    #[error("netlink socket: {op}: {source}")]
    Socket {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Opening or entering a network namespace failed.
    #[error("network namespace {path}: {op}: {source}")]
    Namespace {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded or was not what the request calls for.
    #[error("{op} {target}: unexpected netlink reply: {reason}")]
    Protocol {
        op: &'static str,
        target: String,
        reason: String,
    },
    /// A value given by the caller cannot be used (interface name too long, bad MAC, ...).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// A companion program (nft, dnsmasq) failed or could not be run.
    #[error("{program}: {op}: {reason}")]
    Command {
        program: String,
        op: &'static str,
        reason: String,
    },
    /// A file of the host network service could not be read or written.
    #[error("{op} {path}: {source}")]
    File {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Several steps of a teardown failed; every failure is kept.
    #[error("{}", Teardown(.0))]
    Teardown(Vec<NetError>),
}

struct Teardown<'a>(&'a [NetError]);

impl fmt::Display for Teardown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} teardown step(s) failed: ", self.0.len())?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn errno_desc(errno: i32) -> String {
    // nix's descriptions are the C library's strerror texts: lower-case the first letter so the
    // message reads as one sentence ("no such device").
    let desc = nix::errno::Errno::from_raw(errno).desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => format!("error {errno}"),
    }
}

fn errno_name(errno: i32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(errno))
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

impl NetError {
    /// The errno of a kernel refusal, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The kernel said the link (or address, or route) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::EADDRNOTAVAIL) | Some(libc::ESRCH)
        )
    }

    /// The kernel said the object already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        NetError::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Collects the errors of a teardown: every step runs, every failure is kept.
#[derive(Debug, Default)]
pub struct ErrorList(Vec<NetError>);

impl ErrorList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep the error of `r`, if any; returns the success value.
    pub fn keep<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(NetError::Teardown(list)) => {
                self.0.extend(list);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "teardown step failed");
                self.0.push(e);
                None
            }
        }
    }

    /// Add an error.
    pub fn push(&mut self, e: NetError) {
        self.keep::<()>(Err(e));
    }

    /// `Ok(())` when nothing failed, else one [`NetError::Teardown`] with every failure.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(NetError::Teardown(self.0))
        }
    }
}
