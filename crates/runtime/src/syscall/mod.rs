//! The seam between container setup code and the kernel.
//!
//! Every privileged or state-changing call the container side of a start makes goes through
//! [`Syscall`]: [`LinuxSyscall`] is the real implementation (`nix`/`libc`), and
//! [`fake::RecordingSyscall`] records each call in order (and can be told to fail some), so the
//! mount, `/dev` and `pivot_root` sequencing is unit-tested without root.
//!
//! Reads that do not change anything (`readlink`, `read_file`) are part of the trait too so the
//! fake can describe a rootfs (symlinks) and host files (`/proc/self/mountinfo`), but the fake
//! does not record them.

mod cpu;
pub mod fake;
mod linux;

pub use cpu::{cpu_list, cpus, CpuNudge};

pub use linux::LinuxSyscall;
pub(crate) use linux::{
    clone_into_cgroup, own_signals, plain_clone, set_default_dispositions, signal_masks,
    write_all_raw,
};

use crate::spec::Personality;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Kind of special file for [`Syscall::mknod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
}

/// The kernel interface used by `crate::child`. All paths are used as given (no resolution).
pub trait Syscall {
    /// mount(2). `source`/`fstype`/`data` `None` pass NULL.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    fn unshare(&self, flags: CloneFlags) -> Result<(), Errno>;
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    /// Bring up `lo` of this process's network namespace (SIOCSIFFLAGS |= IFF_UP).
    fn loopback_up(&self) -> Result<(), Errno>;
    /// mkdir(2) of one directory (no parents; `EEXIST` when it exists).
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno>;
    /// Create an empty regular file; an existing entry (of any kind, symlinks not followed) is
    /// left alone and is not opened (`O_CREAT|O_EXCL`, `EEXIST` = success).
    fn create_file(&self, path: &Path, mode: u32) -> Result<(), Errno>;
    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno>;
    /// symlink(2): create `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno>;
    /// The target of `path` if it is a symlink; `Ok(None)` if it is not one or does not exist.
    fn readlink(&self, path: &Path) -> Result<Option<PathBuf>, Errno>;
    /// Whether `path` (followed) is the same file as the open descriptor `fd`.
    fn same_file(&self, fd: RawFd, path: &Path) -> Result<bool, Errno>;
    fn chdir(&self, path: &Path) -> Result<(), Errno>;
    /// umask(2); returns the previous mask.
    fn umask(&self, mask: u32) -> u32;
    fn read_file(&self, path: &Path) -> Result<String, Errno>;
    /// Open for writing (no create, no truncate) and write `data` in one write(2).
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), Errno>;
    /// open(2) `O_RDWR|O_CLOEXEC`; the descriptor is deliberately leaked to the caller.
    fn open_rdwr(&self, path: &Path) -> Result<RawFd, Errno>;
    /// setrlimit(2) for this process; `u64::MAX` is `RLIM_INFINITY`.
    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno>;
    fn personality(&self, persona: Personality) -> Result<(), Errno>;
    /// Highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
    fn cap_last_cap(&self) -> Result<u32, Errno>;
    /// prctl(PR_CAPBSET_DROP).
    fn cap_bset_drop(&self, cap: u32) -> Result<(), Errno>;
    /// Remove `caps` from the inheritable set (capset) and the ambient set.
    fn cap_clear_inheritable_ambient(&self, caps: &[u32]) -> Result<(), Errno>;
    fn setgroups(&self, groups: &[u32]) -> Result<(), Errno>;
    fn setgid(&self, gid: u32) -> Result<(), Errno>;
    fn setuid(&self, uid: u32) -> Result<(), Errno>;
    /// prctl(PR_SET_NO_NEW_PRIVS, 1).
    fn set_no_new_privs(&self) -> Result<(), Errno>;
    /// prctl(PR_SET_PDEATHSIG, SIGKILL).
    fn set_pdeathsig_kill(&self) -> Result<(), Errno>;
    /// sched_setaffinity(0, mask).
    fn set_affinity(&self, mask: &nix::sched::CpuSet) -> Result<(), Errno>;
    /// Block for the monitor's release message on `fd` ([`crate::child::release_message`]):
    /// the cgroup files to join, or `Ok(None)` on EOF (the monitor is gone).
    fn read_release(&self, fd: RawFd) -> Result<Option<Vec<PathBuf>>, Errno>;
    /// All signal dispositions back to `SIG_DFL`, empty signal mask.
    fn reset_signals(&self) -> Result<(), Errno>;
    fn setsid(&self) -> Result<(), Errno>;
    /// ioctl(fd, TIOCSCTTY, 0).
    fn set_controlling_tty(&self, fd: RawFd) -> Result<(), Errno>;
    fn dup2(&self, fd: RawFd, target: RawFd) -> Result<(), Errno>;
    /// Close every descriptor `>= 3` that is not in `keep`.
    fn close_fds_except(&self, keep: &[RawFd]) -> Result<(), Errno>;
    /// Mark every descriptor `>= from` close-on-exec (`close_range(.., CLOSE_RANGE_CLOEXEC)`).
    fn cloexec_from(&self, from: RawFd) -> Result<(), Errno>;
    /// execve(2); returns only on failure.
    fn execve(&self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno;
}
