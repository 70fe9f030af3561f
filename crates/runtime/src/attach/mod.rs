//! `lxrs attach`: run a command inside a running container.
//!
//! ```no_run
//! use lxrs_runtime::attach::{attach, AttachOptions, AttachTarget};
//! let target = AttachTarget::new("web", 4242);
//! let opts = AttachOptions { command: vec!["hostname".into()], ..Default::default() };
//! let status = attach(&target, &opts)?; // the command's exit status, or 128 + signal
//! # Ok::<(), lxrs_runtime::attach::AttachError>(())
//! ```
//!
//! Process model (one fork): the calling process opens everything it needs from the host side
//! (`/proc/<init>/ns/*`, the files joining the init's cgroups, a pty in the
//! container's devpts), enters only the container's *pid* namespace (`setns(CLONE_NEWPID)` only
//! changes the namespace of future children), then forks once (into the init's cgroup2 directory,
//! CLONE_INTO_CGROUP, where the kernel can). The child writes itself into the
//! cgroups (still with host privileges), enters the other namespaces in LXC's order (user, mnt,
//! uts, ipc, net, cgroup, time), drops the bounding set, switches ids and execs. The parent never
//! leaves the host's mount, network or user namespaces nor its cgroups, so a freeze, kill or
//! cgroup limit of the container never hits the process holding the user's terminal. It reaps
//! the command, forwards signals, and proxies the pty. The calling process must be
//! single-threaded (checked).

mod child;
mod error;
mod linux;
mod plan;
mod pty;

pub use child::{AttachSys, ChildFailure, ChildPlan};
pub use error::AttachError;
pub use plan::{
    build_env, parse_arch, parse_elevated, parse_namespaces, Elevated, EnvPolicy, Namespace,
    NamespaceSet, DEFAULT_PATH,
};

use crate::spec::Personality;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The container to attach to.
#[derive(Debug)]
pub struct AttachTarget {
    /// Container name (for messages).
    pub name: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// A pidfd of the init, if the monitor handed one out: guards against pid reuse.
    pub pidfd: Option<OwnedFd>,
    /// `lxc.environment` (`VAR=VALUE`, or bare `VAR` = the caller's value).
    pub environment: Vec<String>,
    /// `lxc.no_new_privs`.
    pub no_new_privs: bool,
}

impl AttachTarget {
    /// A target with no pidfd, no environment and no `no_new_privs`.
    pub fn new(name: impl Into<String>, pid: i32) -> AttachTarget {
        AttachTarget {
            name: name.into(),
            pid,
            pidfd: None,
            environment: Vec::new(),
            no_new_privs: false,
        }
    }
}

/// How to attach (the `lxrs attach` options).
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// `-e`: steps to skip. (`lxrs attach -s` implies [`Elevated::ALL`]: the CLI does that.)
    pub elevated: Elevated,
    /// `-s`: namespaces to enter; `None` = every namespace of the init that differs from ours.
    /// Namespaces we already share are never re-entered.
    pub namespaces: Option<NamespaceSet>,
    /// `-R`: fresh `/proc` and `/sys` in a private mount namespace when the container's mount
    /// namespace is not entered.
    pub remount_sys_proc: bool,
    pub env_policy: EnvPolicy,
    /// `--keep-var` (with [`EnvPolicy::Clear`]).
    pub keep_vars: Vec<String>,
    /// `-v VAR=VALUE` (bare `VAR` = the caller's value), applied last.
    pub set_vars: Vec<OsString>,
    /// `-u`, `-g`: ids inside the container (default 0).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `-L`: append pty output to this file (only when a pty is used).
    pub pty_log: Option<PathBuf>,
    /// `-a`: personality; default = the container init's.
    pub personality: Option<Personality>,
    /// Command and arguments; empty = the user's login shell from the container's passwd.
    pub command: Vec<OsString>,
    /// Where procfs is mounted (a parameter for tests).
    pub proc_root: PathBuf,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            elevated: Elevated::NONE,
            namespaces: None,
            remount_sys_proc: false,
            env_policy: EnvPolicy::Keep,
            keep_vars: Vec::new(),
            set_vars: Vec::new(),
            uid: None,
            gid: None,
            pty_log: None,
            personality: None,
            command: Vec::new(),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// Signals `attach` forwards to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
];

/// Run a command in the container and wait for it. Returns its exit status, or 128 + the
/// signal that killed it. Needs root (or the container's owner privileges) and a
/// single-threaded calling process.
pub fn attach(target: &AttachTarget, opts: &AttachOptions) -> Result<i32, AttachError> {
    let name = target.name.as_str();
    let proc_root = opts.proc_root.as_path();

    // No threads: the child runs Rust code between fork and exec.
    let self_status = read_to_string(&proc_root.join("self/status"))?;
    if let Some(n) = plan::parse_threads(&self_status).filter(|n| *n > 1) {
        return Err(AttachError::Threaded { threads: n });
    }

    // Pin the process: every later /proc read goes through this descriptor, which fails with
    // ESRCH instead of reading a recycled pid.
    let pdir_path = proc_root.join(target.pid.to_string());
    let not_running = || AttachError::NotRunning {
        name: name.to_string(),
        pid: target.pid,
    };
    let pdir = match open_path(None, &pdir_path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ESRCH) => return Err(not_running()),
        Err(e) => return Err(AttachError::io("open", &pdir_path, e.into())),
    };
    if let Some(pidfd) = &target.pidfd {
        // SAFETY: pidfd_send_signal with signal 0 only checks the process; no memory passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == -1 && Errno::last() == Errno::ESRCH {
            return Err(not_running());
        }
    }

    // Namespaces.
    let mut ns_fds: Vec<(Namespace, OwnedFd)> = Vec::new();
    for ns in Namespace::ORDER {
        let explicit = opts.namespaces.is_some_and(|s| s.contains(ns));
        let wanted = match opts.namespaces {
            Some(s) => s.contains(ns),
            None => !(ns == Namespace::Cgroup && opts.elevated.cgroup),
        };
        if !wanted {
            continue;
        }
        let rel = format!("ns/{}", ns.proc_name());
        let path = pdir_path.join(&rel);
        let theirs = match nix::sys::stat::fstatat(
            Some(pdir.as_raw_fd()),
            rel.as_str(),
            nix::fcntl::AtFlags::empty(),
        ) {
            Ok(st) => st,
            Err(Errno::ESRCH) => return Err(not_running()),
            Err(Errno::ENOENT) if !explicit => continue,
            Err(Errno::ENOENT) => {
                return Err(AttachError::NoSuchNamespace {
                    name: name.to_string(),
                    ns: ns.proc_name(),
                    path,
                    cause: Errno::ENOENT.into(),
                })
            }
            Err(e) => {
                return Err(AttachError::Namespace {
                    name: name.to_string(),
                    ns: ns.proc_name(),
                    path,
                    cause: e.into(),
                })
            }
        };
        let ours_path = proc_root.join("self").join(&rel);
        if let Ok(ours) = nix::sys::stat::stat(&ours_path) {
            if ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino {
                continue; // already there (and setns into our own user ns is EINVAL)
            }
        }
        let fd = open_path(Some(pdir.as_raw_fd()), Path::new(&rel), OFlag::O_RDONLY).map_err(
            |e| match e {
                Errno::ESRCH => not_running(),
                e => AttachError::Namespace {
                    name: name.to_string(),
                    ns: ns.proc_name(),
                    path: path.clone(),
                    cause: e.into(),
                },
            },
        )?;
        ns_fds.push((ns, fd));
    }
    let entered = |ns: Namespace| ns_fds.iter().any(|(n, _)| *n == ns);
    let enter_mnt = entered(Namespace::Mnt);

    // cgroups: open the files that join the init's cgroups now (early, clear errors, host
    // view); those we are in already are left out (a write would still take the kernel's
    // cgroup locks).
    let mut cgroup_files: Vec<(OwnedFd, PathBuf)> = Vec::new();
    // The init's cgroup2 directory, and the descriptor of its `cgroup.procs` among the files.
    let mut v2_dir: Option<(OwnedFd, RawFd)> = None;
    if !opts.elevated.cgroup {
        let ours = plan::parse_proc_cgroup(&read_to_string(&proc_root.join("self/cgroup"))?);
        let entries: Vec<_> = plan::parse_proc_cgroup(&read_at(&pdir, &pdir_path, "cgroup")?)
            .into_iter()
            .filter(|e| !ours.contains(e))
            .collect();
        let mounts =
            plan::parse_mountinfo_cgroups(&read_to_string(&proc_root.join("self/mountinfo"))?);
        for p in plan::cgroup_join_paths(&entries, &mounts) {
            let fd = open_path(None, &p, OFlag::O_WRONLY)
                .map_err(|e| AttachError::io("open for joining the cgroup", &p, e.into()))?;
            if p.ends_with("cgroup.procs") {
                // cgroup2: the child is cloned straight into it (below) where the kernel can.
                if let Some(dir) = p.parent() {
                    v2_dir = open_path(None, dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                        .ok()
                        .map(|d| (d, fd.as_raw_fd()));
                }
            }
            cgroup_files.push((fd, p));
        }
    }

    // Bounding set and personality of the init.
    let init_status = if opts.elevated.cap {
        None
    } else {
        Some(read_at(&pdir, &pdir_path, "status")?)
    };
    let capbnd = match &init_status {
        None => None,
        Some(st) => Some(plan::parse_capbnd(st).ok_or_else(|| {
            AttachError::invalid(
                "status file",
                &pdir_path.join("status").display().to_string(),
                "no CapBnd line",
            )
        })?),
    };
    let want_persona = match opts.personality {
        Some(p) => Some(plan::persona_value(p)),
        None => read_at(&pdir, &pdir_path, "personality")
            .ok()
            .and_then(|s| plan::parse_personality(&s)),
    };
    // SAFETY: personality(0xffffffff) only queries the current persona.
    let our_persona = unsafe { libc::personality(0xffff_ffff) } as u32;
    let persona = want_persona.filter(|p| *p != our_persona);

    // The container's root, for its passwd and its devpts (only when entering its mount ns).
    let uid = opts.uid.unwrap_or(0);
    let gid = opts.gid.unwrap_or(0);
    let need_root_fd = enter_mnt;
    let root_fd = if need_root_fd {
        Some(
            open_path(
                Some(pdir.as_raw_fd()),
                Path::new("root"),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            )
            .map_err(|e| match e {
                Errno::ESRCH | Errno::ENOENT => not_running(),
                e => AttachError::io("open", pdir_path.join("root"), e.into()),
            })?,
        )
    } else {
        None
    };

    // Command: given, else the login shell of `uid` in the container's passwd, else /bin/sh.
    let argv_os: Vec<OsString> = if opts.command.is_empty() {
        let passwd = match &root_fd {
            Some(root) => read_in_root(root.as_raw_fd(), "etc/passwd"),
            None => std::fs::read_to_string("/etc/passwd").ok(),
        };
        let shell = passwd
            .and_then(|p| plan::shell_from_passwd(&p, uid))
            .unwrap_or_else(|| "/bin/sh".to_string());
        vec![OsString::from(shell)]
    } else {
        opts.command.clone()
    };
    let argv: Vec<CString> = argv_os
        .iter()
        .map(|a| {
            CString::new(a.as_bytes()).map_err(|_| {
                AttachError::invalid(
                    "command argument",
                    &a.to_string_lossy(),
                    "contains a NUL byte",
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let file = argv[0].clone();

    // Environment, built here; the child only passes it to execve.
    let ours: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let env = build_env(
        opts.env_policy,
        &ours,
        &opts.keep_vars,
        &target.environment,
        &opts.set_vars,
    );
    let env = child::env_cstrings(&env);
    let path_var = child::path_of(&env);

    // Terminal: a pty when any of stdin, stdout, stderr is one.
    let ttys = [pty::isatty(0), pty::isatty(1), pty::isatty(2)];
    let pty = if ttys.iter().any(|t| *t) {
        let p = pty::open_pty(root_fd.as_ref().map(|f| f.as_raw_fd()))?;
        let src = ttys.iter().position(|t| *t).unwrap_or(0) as RawFd;
        pty::copy_winsize(src, p.master.as_raw_fd());
        Some(p)
    } else {
        None
    };
    let log = match (&pty, &opts.pty_log) {
        (Some(_), Some(path)) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600) // a terminal transcript is private
                .open(path)
                .map_err(|e| AttachError::io("open pty log", path, e))?,
        ),
        _ => None,
    };

    // Signals: blocked and read from a signalfd; the child restores the caller's mask.
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&mask),
        Some(&mut old),
    )
    .map_err(|errno| AttachError::Sys {
        op: "block signals",
        errno,
    })?;
    let _mask_guard = MaskGuard(old);
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|errno| AttachError::Sys {
            op: "signalfd",
            errno,
        })?;

    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| AttachError::Sys { op: "pipe2", errno })?;

    let mut plan = ChildPlan {
        cgroup_fds: cgroup_files
            .iter()
            .map(|(fd, p)| (fd.as_raw_fd(), p.clone()))
            .collect(),
        namespaces: ns_fds
            .iter()
            .filter(|(n, _)| *n != Namespace::Pid)
            .map(|(n, fd)| (*n, fd.as_raw_fd()))
            .collect(),
        remount_sys_proc: opts.remount_sys_proc && !enter_mnt,
        cwd: std::env::current_dir().ok(),
        persona,
        capbnd,
        pty_slave: pty.as_ref().map(|p| (p.slave.as_raw_fd(), ttys)),
        uid,
        gid,
        no_new_privs: target.no_new_privs,
        file,
        argv,
        env,
        path: path_var,
    };

    // The pid namespace applies to children only: enter it here, fork, and step back.
    let pid_back = if let Some((_, fd)) = ns_fds.iter().find(|(n, _)| *n == Namespace::Pid) {
        let back = open_path(
            None,
            &proc_root.join("self/ns/pid_for_children"),
            OFlag::O_RDONLY,
        )
        .ok();
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID).map_err(|errno| {
            AttachError::Setup {
                name: name.to_string(),
                op: "enter pid namespace (setns)".into(),
                errno,
            }
        })?;
        back
    } else {
        None
    };

    // Into the init's cgroup2 directory at birth (CLONE_INTO_CGROUP): no migration, so no
    // RCU grace period to wait for on an idle host, where writing `cgroup.procs` waits one.
    let into = v2_dir.as_ref().and_then(|(dir, procs)| {
        match crate::syscall::clone_into_cgroup(0, dir.as_raw_fd()) {
            Ok(0) => Some((Ok(ForkResult::Child), Some(*procs))),
            Ok(pid) => Some((
                Ok(ForkResult::Parent {
                    child: Pid::from_raw(pid as i32),
                }),
                None,
            )),
            // No clone3 or CLONE_INTO_CGROUP here, or the kernel refuses this cgroup: a plain
            // fork, and the child writes `cgroup.procs` (which names any refusal).
            Err(_) => None,
        }
    });
    let fork = match into {
        Some((r, joined)) => {
            if let Some(procs) = joined {
                plan.cgroup_fds.retain(|(fd, _)| *fd != procs);
            }
            r
        }
        // SAFETY: the process is single-threaded (checked above), so the child may run Rust
        // code; it only runs `run_child` and then execs or `_exit`s.
        None => unsafe { nix::unistd::fork() },
    };
    if !matches!(fork, Ok(ForkResult::Child)) {
        if let Some(back) = &pid_back {
            if let Err(e) = nix::sched::setns(back.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID) {
                tracing::debug!("could not step back into our pid namespace: {e}");
            }
        }
    }
    let child = match fork {
        Err(Errno::ENOMEM) if pid_back.is_some() => {
            return Err(AttachError::Setup {
                name: name.to_string(),
                op: "fork into the pid namespace (its init is gone: container stopping?)".into(),
                errno: Errno::ENOMEM,
            })
        }
        Err(errno) => return Err(AttachError::Sys { op: "fork", errno }),
        Ok(ForkResult::Child) => {
            let mut sys = linux::LinuxAttachSys {
                saved_mask: *old.as_ref(),
            };
            let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child::run_child(&mut sys, &plan)
            }))
            .unwrap_or_else(|_| ChildFailure {
                exec: false,
                op: "attached process panicked".into(),
                errno: Errno::EIO,
            });
            let _ = pty::write_all(err_w.as_raw_fd(), &failure.encode());
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(failure.exit_code()) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };

    // Parent. Close what belongs to the child, then learn whether it got to exec.
    drop(err_w);
    drop(ns_fds);
    drop(cgroup_files);
    drop(v2_dir);
    let master = pty.map(|p| {
        drop(p.slave);
        p.master
    });
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut report);
    if let Some(f) = ChildFailure::decode(&report) {
        let _ = waitpid(child, None);
        return Err(if f.exec {
            AttachError::Exec {
                name: name.to_string(),
                command: f.op,
                errno: f.errno,
            }
        } else {
            AttachError::Setup {
                name: name.to_string(),
                op: f.op,
                errno: f.errno,
            }
        });
    }

    match master {
        None => wait_plain(&sigfd, child),
        Some(master) => {
            let raw = if ttys[0] {
                Some(pty::RawGuard::new(0)?)
            } else {
                None
            };
            let out = if ttys[1] {
                1
            } else if ttys[2] {
                2
            } else {
                0
            };
            let src = ttys.iter().position(|t| *t).unwrap_or(0) as RawFd;
            let r = proxy(Proxy {
                master,
                input: ttys[0].then_some(0),
                output: out,
                winsize_src: src,
                log,
                sigfd: &sigfd,
                child,
            });
            drop(raw);
            r
        }
    }
}

/// Restores the signal mask (after draining nothing: pending signals were read by the loops).
struct MaskGuard(SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&self.0),
            None,
        );
    }
}

fn open_path(dir: Option<RawFd>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = match dir {
        Some(d) => nix::fcntl::openat(Some(d), path, flags | OFlag::O_CLOEXEC, Mode::empty())?,
        None => nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())?,
    };
    // SAFETY: `fd` was just returned by open/openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn read_to_string(path: &Path) -> Result<String, AttachError> {
    lxrs_cgroup::read_pseudo(path).map_err(|e| AttachError::io("read", path, e))
}

/// Read `/proc/<pid>/<rel>` through the pinned directory.
fn read_at(pdir: &OwnedFd, pdir_path: &Path, rel: &str) -> Result<String, AttachError> {
    let fd = open_path(Some(pdir.as_raw_fd()), Path::new(rel), OFlag::O_RDONLY)
        .map_err(|e| AttachError::io("open", pdir_path.join(rel), e.into()))?;
    lxrs_cgroup::read_pseudo_file(std::fs::File::from(fd))
        .map_err(|e| AttachError::io("read", pdir_path.join(rel), e))
}

/// Read a file of the container, resolving symlinks inside its root.
fn read_in_root(root: RawFd, rel: &str) -> Option<String> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let fd = nix::fcntl::openat2(root, rel, how).ok()?;
    // SAFETY: `fd` was just returned by openat2 and is owned by nobody else.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    Some(s)
}

fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Read pending signals: returns the command's exit status once it is gone. Forwarded signals
/// go to the command, except (`skip_kernel`) those the kernel generated for our terminal: the
/// command shares our process group then and got them itself.
fn handle_signals(
    sigfd: &SignalFd,
    child: Pid,
    skip_kernel: bool,
    winch: &mut dyn FnMut(),
) -> Option<i32> {
    let mut status = None;
    while let Ok(Some(info)) = sigfd.read_signal() {
        let sig = info.ssi_signo as i32;
        if sig == libc::SIGCHLD {
            loop {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(ws) => match exit_code(ws) {
                        Some(c) => {
                            status = Some(c);
                            break;
                        }
                        None if ws == WaitStatus::StillAlive => break,
                        None => continue,
                    },
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
        } else if sig == libc::SIGWINCH {
            winch();
        } else if !(skip_kernel && info.ssi_code == libc::SI_KERNEL) && status.is_none() {
            // SAFETY: kill with a valid signal number to our own child.
            unsafe { libc::kill(child.as_raw(), sig) };
        }
    }
    status
}

fn poll_fds(fds: &mut [libc::pollfd]) {
    // SAFETY: `fds` is a valid array of pollfd for the call.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
}

/// No terminal: the command has our stdin/stdout/stderr; just forward signals and reap.
fn wait_plain(sigfd: &SignalFd, child: Pid) -> Result<i32, AttachError> {
    loop {
        if let Some(code) = handle_signals(sigfd, child, true, &mut || {}) {
            return Ok(code);
        }
        let mut fds = [libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        poll_fds(&mut fds);
    }
}

struct Proxy<'a> {
    master: OwnedFd,
    /// Our stdin when it is a terminal.
    input: Option<RawFd>,
    /// The terminal the command's output is shown on.
    output: RawFd,
    winsize_src: RawFd,
    log: Option<std::fs::File>,
    sigfd: &'a SignalFd,
    child: Pid,
}

/// Proxy between our terminal and the pty master until the command exits; then drain what it
/// wrote and return its status.
fn proxy(mut p: Proxy<'_>) -> Result<i32, AttachError> {
    use std::io::Write;
    let m = p.master.as_raw_fd();
    pty::set_nonblocking(m);
    let mut pending: Vec<u8> = Vec::new();
    let mut master_open = true;
    let mut input_open = p.input.is_some();
    let mut buf = vec![0u8; 16384];
    let (src, child) = (p.winsize_src, p.child);
    let show = |p: &mut Proxy<'_>, data: &[u8]| {
        let _ = pty::write_all(p.output, data);
        if let Some(l) = &mut p.log {
            let _ = l.write_all(data);
        }
    };
    loop {
        if let Some(code) = handle_signals(p.sigfd, child, false, &mut || pty::copy_winsize(src, m))
        {
            // Drain what the command wrote before exiting (non-blocking: descendants may still
            // hold the slave open).
            if master_open {
                while let Ok(n @ 1..) = pty::read(m, &mut buf) {
                    show(&mut p, &buf[..n]);
                }
            }
            return Ok(code);
        }
        let mut fds = vec![libc::pollfd {
            fd: p.sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if master_open {
            let mut ev = libc::POLLIN;
            if !pending.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: m,
                events: ev,
                revents: 0,
            });
        }
        let input_idx = match p.input {
            Some(fd) if input_open && pending.len() < 65536 => {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                Some(fds.len() - 1)
            }
            _ => None,
        };
        poll_fds(&mut fds);
        if master_open {
            let re = fds[1].revents;
            if re & libc::POLLOUT != 0 && !pending.is_empty() {
                // SAFETY: `pending` is valid for `pending.len()` bytes.
                let n = unsafe { libc::write(m, pending.as_ptr().cast(), pending.len()) };
                if n > 0 {
                    pending.drain(..n as usize);
                } else if n < 0 && !matches!(Errno::last(), Errno::EAGAIN | Errno::EINTR) {
                    pending.clear();
                }
            }
            if re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match pty::read(m, &mut buf) {
                    Ok(n) if n > 0 => show(&mut p, &buf[..n]),
                    Err(Errno::EAGAIN) => {}
                    _ => {
                        // EIO/EOF: every slave descriptor is closed.
                        master_open = false;
                        pending.clear();
                    }
                }
            }
        }
        if let Some(i) = input_idx {
            if fds[i].revents != 0 {
                match pty::read(fds[i].fd, &mut buf) {
                    Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => {}
                    _ => input_open = false,
                }
            }
        }
    }
}
