//! Network namespace handles. "The host" is always the namespace of the calling thread.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetError, Result};

/// An open network namespace file. The namespace lives at least as long as this value.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    path: String,
}

impl NetNs {
    /// The namespace of the calling thread (`/proc/thread-self/ns/net`).
    pub fn current() -> Result<Self> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// The namespace of process `pid` (e.g. a container's init).
    pub fn from_pid(pid: u32) -> Result<Self> {
        Self::open(format!("/proc/{pid}/ns/net"))
    }

    /// A namespace file: `/proc/<pid>/ns/net` or a bind mount of one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| NetError::Namespace {
            op: "open",
            path: path.display().to_string(),
            source,
        })?;
        Ok(NetNs {
            fd: file.into(),
            path: path.display().to_string(),
        })
    }

    /// A new, empty network namespace (only a down `lo`), without moving the calling thread
    /// into it: unshare on this thread, keep the new namespace's fd, switch back. It is
    /// destroyed, with every virtual link in it, when the last fd and process let go of it.
    pub fn create() -> Result<Self> {
        let orig = Self::current()?;
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Namespace {
            op: "unshare(CLONE_NEWNET)",
            path: orig.path.clone(),
            source: io::Error::from(e),
        })?;
        let new = Self::current();
        orig.restore();
        let mut new = new?;
        new.path = format!("new netns (fd of {})", new.path);
        Ok(new)
    }

    /// Where this handle came from (for messages).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Run `f` with the calling thread inside this namespace, then switch back.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let orig = Self::current()?;
        self.enter()?;
        let out = f();
        orig.restore();
        Ok(out)
    }

    /// Move the calling thread into this namespace.
    pub(crate) fn enter(&self) -> Result<()> {
        setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Namespace {
            op: "setns",
            path: self.path.clone(),
            source: io::Error::from(e),
        })
    }

    /// Switch the calling thread back to this (its original) namespace. Failing here would
    /// leave the thread in a foreign namespace where every later call would act on the wrong
    /// links: that is not recoverable, so it panics.
    pub(crate) fn restore(&self) {
        if let Err(e) = self.enter() {
            panic!("cannot switch back to the original network namespace: {e}");
        }
    }

    /// True when both handles name the same namespace (same inode).
    pub fn same_as(&self, other: &NetNs) -> Result<bool> {
        let st = |n: &NetNs| {
            nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&n.fd)).map_err(|e| {
                NetError::Namespace {
                    op: "fstat",
                    path: n.path.clone(),
                    source: io::Error::from(e),
                }
            })
        };
        let (a, b) = (st(self)?, st(other)?);
        Ok(a.st_ino == b.st_ino && a.st_dev == b.st_dev)
    }
}

/// Write a `/proc/sys/net/...` value as seen from namespace `ns` (`None` = the calling
/// thread's): net sysctl files bind to the namespace of the thread that opens them.
pub fn write_net_sysctl(ns: Option<&NetNs>, path: &str, value: &str) -> Result<()> {
    let write = || std::fs::write(path, value);
    let r = match ns {
        Some(ns) => ns.run(write)?,
        None => write(),
    };
    r.map_err(|source| NetError::File {
        op: "write",
        path: path.into(),
        source,
    })
}

/// Read a `/proc/sys/net/...` value as seen from namespace `ns`.
pub fn read_net_sysctl(ns: Option<&NetNs>, path: &str) -> Result<String> {
    let read = || std::fs::read_to_string(path);
    let r = match ns {
        Some(ns) => ns.run(read)?,
        None => read(),
    };
    r.map(|s| s.trim().to_string())
        .map_err(|source| NetError::File {
            op: "read",
            path: path.into(),
            source,
        })
}

/// Disable IPv6 on a link (LXC does this on the host end of a bridged veth).
pub fn disable_ipv6(ns: Option<&NetNs>, ifname: &str) -> Result<()> {
    crate::types::validate_ifname(ifname)?;
    write_net_sysctl(
        ns,
        &format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    )
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
