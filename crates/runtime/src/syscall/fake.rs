//! A recording fake of [`Syscall`] for unit tests (no root needed).
//!
//! Every state-changing call is appended to a log in order, as a [`Call`]; calls can be made
//! to fail with [`RecordingSyscall::fail_when`]. A failed call is still recorded (it was
//! attempted). `readlink` and `read_file` answer from [`RecordingSyscall::symlink_at`] and
//! [`RecordingSyscall::file`] and are not recorded; `readlink("/proc/self/fd/N")` answers
//! `/dev/pts/fdN` unless configured otherwise, and `same_file` says yes unless told
//! [`RecordingSyscall::different_files`].

use super::{NodeKind, Syscall};
use crate::spec::Personality;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: MntFlags,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Unshare(CloneFlags),
    Sethostname(String),
    LoopbackUp,
    Mkdir {
        path: PathBuf,
        mode: u32,
    },
    CreateFile {
        path: PathBuf,
        mode: u32,
    },
    Mknod {
        path: PathBuf,
        kind: NodeKind,
        mode: u32,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Chdir(PathBuf),
    Umask(u32),
    WriteFile {
        path: PathBuf,
        data: String,
    },
    OpenRdwr(PathBuf),
    Setrlimit {
        resource: u32,
        soft: u64,
        hard: u64,
    },
    Personality(Personality),
    CapBsetDrop(u32),
    CapClearInheritableAmbient(Vec<u32>),
    Setgroups(Vec<u32>),
    Setgid(u32),
    Setuid(u32),
    SetNoNewPrivs,
    /// The CPUs of the mask.
    SetAffinity(Vec<usize>),
    SetPdeathsigKill,
    ReadRelease(RawFd),
    ResetSignals,
    Setsid,
    SetControllingTty(RawFd),
    Dup2 {
        fd: RawFd,
        target: RawFd,
    },
    CloseFdsExcept(Vec<RawFd>),
    CloexecFrom(RawFd),
    Execve {
        path: String,
        argv: Vec<String>,
        env: Vec<String>,
    },
}

impl Call {
    /// For mounts: the target path.
    pub fn mount_target(&self) -> Option<&Path> {
        match self {
            Call::Mount { target, .. } => Some(target),
            _ => None,
        }
    }
}

fn opt<T: fmt::Display>(o: &Option<T>) -> String {
    o.as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Compact one-line form used in assertion messages, e.g.
/// `mount proc /r/proc proc MS_NOSUID | MS_NODEV | MS_NOEXEC -`.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => write!(
                f,
                "mount {} {} {} {:?} {}",
                opt(&source.as_ref().map(|s| s.display())),
                target.display(),
                opt(fstype),
                flags,
                opt(data)
            ),
            Call::Umount2 { target, flags } => write!(f, "umount2 {} {flags:?}", target.display()),
            Call::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root {} {}", new_root.display(), put_old.display())
            }
            Call::Mkdir { path, mode } => write!(f, "mkdir {} {mode:o}", path.display()),
            Call::CreateFile { path, mode } => write!(f, "create {} {mode:o}", path.display()),
            Call::Mknod {
                path,
                kind,
                mode,
                major,
                minor,
            } => {
                write!(
                    f,
                    "mknod {} {kind:?} {mode:o} {major}:{minor}",
                    path.display()
                )
            }
            Call::Symlink { target, link } => {
                write!(f, "symlink {} -> {}", link.display(), target.display())
            }
            Call::Chdir(p) => write!(f, "chdir {}", p.display()),
            Call::WriteFile { path, data } => write!(f, "write {} {data:?}", path.display()),
            other => write!(f, "{other:?}"),
        }
    }
}

type FailRule = (Box<dyn Fn(&Call) -> bool>, Errno);

/// The recording fake.
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    symlinks: HashMap<PathBuf, PathBuf>,
    files: HashMap<PathBuf, String>,
    fail: Vec<FailRule>,
    last_cap: u32,
    release: Option<Vec<PathBuf>>,
    exec_errno: Errno,
    umask: RefCell<u32>,
    different_files: bool,
}

impl Default for RecordingSyscall {
    fn default() -> Self {
        Self {
            calls: RefCell::new(Vec::new()),
            symlinks: HashMap::new(),
            files: HashMap::new(),
            fail: Vec::new(),
            last_cap: 40,
            release: Some(Vec::new()),
            exec_errno: Errno::ENOENT,
            umask: RefCell::new(0o022),
            different_files: false,
        }
    }
}

impl fmt::Debug for RecordingSyscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingSyscall")
            .field("calls", &self.calls.borrow())
            .finish()
    }
}

impl RecordingSyscall {
    pub fn new() -> Self {
        Self::default()
    }
    /// Pretend `path` is a symlink to `target`.
    pub fn symlink_at(mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.symlinks.insert(path.into(), target.into());
        self
    }
    /// Contents returned by `read_file(path)` (other paths: `ENOENT`).
    pub fn file(mut self, path: impl Into<PathBuf>, contents: impl Into<String>) -> Self {
        self.files.insert(path.into(), contents.into());
        self
    }
    /// Make every call matching `pred` fail with `errno` (after recording it).
    pub fn fail_when(mut self, pred: impl Fn(&Call) -> bool + 'static, errno: Errno) -> Self {
        self.fail.push((Box::new(pred), errno));
        self
    }
    /// `cap_last_cap` answer (default 40).
    pub fn last_cap(mut self, last: u32) -> Self {
        self.last_cap = last;
        self
    }
    /// Simulate the monitor dying before the release (sync read gets EOF).
    pub fn sync_eof(mut self) -> Self {
        self.release = None;
        self
    }
    /// The cgroup files the release message names (default none).
    pub fn release_joins(mut self, files: Vec<PathBuf>) -> Self {
        self.release = Some(files);
        self
    }
    /// Errno every execve returns (default ENOENT).
    pub fn exec_errno(mut self, e: Errno) -> Self {
        self.exec_errno = e;
        self
    }
    /// Make `same_file` answer false (default: true).
    pub fn different_files(mut self) -> Self {
        self.different_files = true;
        self
    }
    /// The calls recorded so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn rec(&self, c: Call) -> Result<(), Errno> {
        let failed = self.fail.iter().find(|(p, _)| p(&c)).map(|(_, e)| *e);
        self.calls.borrow_mut().push(c);
        failed.map_or(Ok(()), Err)
    }
}

fn cs(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        self.rec(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        self.rec(Call::Umount2 {
            target: target.into(),
            flags,
        })
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.rec(Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        })
    }
    fn unshare(&self, flags: CloneFlags) -> Result<(), Errno> {
        self.rec(Call::Unshare(flags))
    }
    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.rec(Call::Sethostname(name.into()))
    }
    fn loopback_up(&self) -> Result<(), Errno> {
        self.rec(Call::LoopbackUp)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.rec(Call::Mkdir {
            path: path.into(),
            mode,
        })
    }
    fn create_file(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.rec(Call::CreateFile {
            path: path.into(),
            mode,
        })
    }
    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno> {
        self.rec(Call::Mknod {
            path: path.into(),
            kind,
            mode,
            major,
            minor,
        })
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.rec(Call::Symlink {
            target: target.into(),
            link: link.into(),
        })
    }
    fn readlink(&self, path: &Path) -> Result<Option<PathBuf>, Errno> {
        if let Some(t) = self.symlinks.get(path) {
            return Ok(Some(t.clone()));
        }
        // Descriptors look like ptys: /proc/self/fd/N -> /dev/pts/fdN.
        let fd = path
            .strip_prefix("/proc/self/fd")
            .ok()
            .and_then(|n| n.to_str()?.parse::<RawFd>().ok());
        Ok(fd.map(|n| PathBuf::from(format!("/dev/pts/fd{n}"))))
    }
    fn same_file(&self, _fd: RawFd, _path: &Path) -> Result<bool, Errno> {
        Ok(!self.different_files)
    }
    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        self.rec(Call::Chdir(path.into()))
    }
    fn umask(&self, mask: u32) -> u32 {
        let _ = self.rec(Call::Umask(mask));
        self.umask.replace(mask)
    }
    fn read_file(&self, path: &Path) -> Result<String, Errno> {
        self.files.get(path).cloned().ok_or(Errno::ENOENT)
    }
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), Errno> {
        self.rec(Call::WriteFile {
            path: path.into(),
            data: String::from_utf8_lossy(data).into_owned(),
        })
    }
    fn open_rdwr(&self, path: &Path) -> Result<RawFd, Errno> {
        self.rec(Call::OpenRdwr(path.into())).map(|()| 99)
    }
    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        self.rec(Call::Setrlimit {
            resource,
            soft,
            hard,
        })
    }
    fn personality(&self, persona: Personality) -> Result<(), Errno> {
        self.rec(Call::Personality(persona))
    }
    fn cap_last_cap(&self) -> Result<u32, Errno> {
        Ok(self.last_cap)
    }
    fn cap_bset_drop(&self, cap: u32) -> Result<(), Errno> {
        self.rec(Call::CapBsetDrop(cap))
    }
    fn cap_clear_inheritable_ambient(&self, caps: &[u32]) -> Result<(), Errno> {
        self.rec(Call::CapClearInheritableAmbient(caps.to_vec()))
    }
    fn setgroups(&self, groups: &[u32]) -> Result<(), Errno> {
        self.rec(Call::Setgroups(groups.to_vec()))
    }
    fn setgid(&self, gid: u32) -> Result<(), Errno> {
        self.rec(Call::Setgid(gid))
    }
    fn setuid(&self, uid: u32) -> Result<(), Errno> {
        self.rec(Call::Setuid(uid))
    }
    fn set_no_new_privs(&self) -> Result<(), Errno> {
        self.rec(Call::SetNoNewPrivs)
    }
    fn set_pdeathsig_kill(&self) -> Result<(), Errno> {
        self.rec(Call::SetPdeathsigKill)
    }
    fn set_affinity(&self, mask: &nix::sched::CpuSet) -> Result<(), Errno> {
        self.rec(Call::SetAffinity(super::cpus(mask)))
    }
    fn read_release(&self, fd: RawFd) -> Result<Option<Vec<PathBuf>>, Errno> {
        self.rec(Call::ReadRelease(fd))
            .map(|()| self.release.clone())
    }
    fn reset_signals(&self) -> Result<(), Errno> {
        self.rec(Call::ResetSignals)
    }
    fn setsid(&self) -> Result<(), Errno> {
        self.rec(Call::Setsid)
    }
    fn set_controlling_tty(&self, fd: RawFd) -> Result<(), Errno> {
        self.rec(Call::SetControllingTty(fd))
    }
    fn dup2(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        self.rec(Call::Dup2 { fd, target })
    }
    fn close_fds_except(&self, keep: &[RawFd]) -> Result<(), Errno> {
        self.rec(Call::CloseFdsExcept(keep.to_vec()))
    }
    fn cloexec_from(&self, from: RawFd) -> Result<(), Errno> {
        self.rec(Call::CloexecFrom(from))
    }
    fn execve(&self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
        let c = Call::Execve {
            path: cs(path),
            argv: argv.iter().map(|a| cs(a)).collect(),
            env: env.iter().map(|a| cs(a)).collect(),
        };
        match self.rec(c) {
            Err(e) => e,
            Ok(()) => self.exec_errno,
        }
    }
}
