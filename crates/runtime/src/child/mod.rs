//! The container side of a start: runs inside the freshly cloned child (new mount, pid, uts,
//! ipc and net namespaces; pid 1 of its pid namespace), sets the container up and execs init.
//!
//! Interface contract with the monitor (`crate::monitor`):
//! 1. The monitor clones the child with [`clone_flags`] and calls [`run`] in it.
//! 2. The child blocks reading one byte from `ctx.sync_read` (the monitor writes it after
//!    placing the child in its cgroups and creating the host side of the network).
//! 3. The child unshares its cgroup namespace (it is in its cgroup now), sets up mounts,
//!    pivot_root, /dev, console and ttys, hostname, sysctls, prlimits, capabilities,
//!    no_new_privs, personality, ids, cwd and environment, then execs init.
//! 4. On any failure it writes a one-line UTF-8 message to `ctx.err_write` and exits 1; a
//!    successful exec closes `ctx.err_write` (O_CLOEXEC) with nothing written.

use crate::spec::StartSpec;
use std::os::fd::OwnedFd;

/// File descriptors the monitor hands to the child.
#[derive(Debug)]
pub struct ChildContext {
    /// Read end; the monitor writes one byte when host-side setup is done.
    pub sync_read: OwnedFd,
    /// Write end, O_CLOEXEC; error message on failure, closed by a successful exec.
    pub err_write: OwnedFd,
    /// pty slave that becomes `/dev/console` and init's stdio (None: console disabled,
    /// init's stdio is /dev/null).
    pub console: Option<OwnedFd>,
    /// pty slaves for `/dev/tty1` .. `/dev/ttyN` (`lxc.tty.max`).
    pub ttys: Vec<OwnedFd>,
}
