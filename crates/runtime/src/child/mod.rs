//! The container side of a start: runs inside the freshly cloned child (new mount, pid, uts,
//! ipc and net namespaces; pid 1 of its pid namespace), sets the container up and execs init.
//!
//! Interface contract with the monitor (`crate::monitor`):
//! 1. The monitor clones the child with [`clone_flags`] and calls [`run`] in it.
//! 2. The child closes every inherited descriptor except stdio and those in the context, and
//!    does what needs neither cgroups nor host network ([`setup_early`]: rootfs, proc, sys,
//!    mount entries, /dev, console and ttys, `lo`, hostname) while the monitor works, then
//!    blocks for the release message on `ctx.sync_read` ([`release_message`]: the monitor
//!    sends it after creating the child's cgroups and the host side of the network; EOF = the
//!    monitor died, the child exits 1 without a message).
//! 3. The child joins the cgroups the message names by writing `0` into each file (v1
//!    `tasks`: a single thread moving itself waits for no RCU grace period, where a move by
//!    pid does), unshares its cgroup namespace (it is in its cgroup now), mounts the cgroups,
//!    pivot_root, sysctls, prlimits, capabilities, no_new_privs, personality, ids, cwd and
//!    environment ([`setup_late`]), then execs init.
//! 4. On any failure it writes a one-line UTF-8 message to `ctx.err_write` and exits 1; a
//!    successful exec closes `ctx.err_write` (O_CLOEXEC) with nothing written.

mod dev;
mod error;
mod mounts;
#[cfg(test)]
mod tests;

pub use dev::{devpts_options, AUTODEV_TMPFS_SIZE, DEVICES, LINKS};
pub use error::{ChildError, ErrnoText};
pub use mounts::{
    cgroup_hierarchies, mount_auto, mount_entry, parse_mount_options, resolve_in_root,
    CgroupHierarchy, MountOptions,
};

use crate::spec::{CapsSpec, InitSpec, ProcMode, StartSpec};
use crate::syscall::{LinuxSyscall, Syscall};
use mounts::{remount, PSEUDO};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

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
    /// The monitor's CPU affinity, put back once released: the monitor sent the child to
    /// another CPU for its early setup ([`crate::syscall::CpuNudge`]).
    pub affinity: Option<nix::sched::CpuSet>,
}

/// Namespaces the monitor clones the child into: mount, pid, uts, ipc and (unless
/// `share_host_net`) net. The cgroup namespace is unshared by the child itself once it has
/// been placed in its cgroups.
pub fn clone_flags(spec: &StartSpec) -> CloneFlags {
    let mut f = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if !spec.share_host_net {
        f |= CloneFlags::CLONE_NEWNET;
    }
    f
}

/// Entry point in the cloned child: set the container up and exec init. Never returns: on
/// failure the error is written (one line, no newline) to `ctx.err_write` and the child
/// `_exit(1)`s; if the monitor died before releasing the child, it exits 1 silently.
///
/// The child closes every inherited descriptor not in `ctx` (other than 0-2) first thing, and
/// logs nothing (a `tracing` subscriber inherited from the monitor would write to a closed or
/// reused descriptor): errors travel on `err_write` only.
pub fn run(spec: &StartSpec, ctx: ChildContext) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_with(&LinuxSyscall, spec, &ctx)
    }));
    let msg = match result {
        Ok(Ok(never)) => match never {},
        Ok(Err(ChildError::MonitorGone)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("internal error: the container setup panicked".to_string()),
    };
    if let Some(msg) = msg {
        crate::syscall::write_all_raw(ctx.err_write.as_raw_fd(), msg.as_bytes());
    }
    // SAFETY: _exit ends the process without running atexit handlers or destructors, which
    // belong to the monitor's image; nothing else is touched.
    unsafe { libc::_exit(1) }
}

/// [`run`] against any [`Syscall`] (the fake in tests): wait for the monitor, [`setup`],
/// then exec init. Returns only on failure.
pub fn run_with(
    sys: &dyn Syscall,
    spec: &StartSpec,
    ctx: &ChildContext,
) -> Result<Infallible, ChildError> {
    // Step 1: die with the monitor. getppid() is no use here (0 in a new pid namespace); the
    // sync pipe gives EOF if the monitor died before the prctl took effect.
    sys.set_pdeathsig_kill()
        .map_err(|e| ChildError::op("set parent-death signal", "SIGKILL", e))?;
    // Descriptors inherited from the monitor other than ours go first: among them may be
    // the write end of the sync pipe, which would keep us from ever seeing EOF.
    let mut keep = vec![ctx.sync_read.as_raw_fd(), ctx.err_write.as_raw_fd()];
    keep.extend(ctx.console.iter().chain(&ctx.ttys).map(AsRawFd::as_raw_fd));
    sys.close_fds_except(&keep).map_err(|e| {
        ChildError::op(
            "close inherited descriptors, keeping",
            format!("{keep:?}"),
            e,
        )
    })?;
    let console = ctx.console.as_ref().map(AsRawFd::as_raw_fd);
    let ttys: Vec<RawFd> = ctx.ttys.iter().map(AsRawFd::as_raw_fd).collect();
    // While the monitor creates the cgroups and the host side of the network (on the other
    // CPU, when there is one), the child does everything that needs neither.
    setup_early(sys, spec, console, &ttys)?;
    let joins = match sys.read_release(ctx.sync_read.as_raw_fd()) {
        Ok(Some(j)) => j,
        Ok(None) => return Err(ChildError::MonitorGone),
        Err(errno) => return Err(ChildError::Sync { errno }),
    };
    // The release comes after the monitor's nudge: from here on, init's affinity is the
    // monitor's (then the cpuset's, for a v1 cpuset joined next).
    if let Some(mask) = &ctx.affinity {
        sys.set_affinity(mask).map_err(|e| {
            ChildError::op(
                "restore the CPU affinity to",
                crate::syscall::cpu_list(mask),
                e,
            )
        })?;
    }
    // Still single-threaded and in the host's view of the cgroup mounts.
    for file in &joins {
        sys.write_file(file, b"0")
            .map_err(|e| ChildError::op("join the cgroup by writing 0 to", file.display(), e))?;
    }
    setup_late(sys, spec, console)?;
    exec_init(sys, &spec.init)
}

/// First byte of a release message.
const RELEASE: u8 = 1;

/// The message that releases the child: [`RELEASE`], the payload length (u32, little endian),
/// then the cgroup files to join, each followed by a NUL.
pub fn release_message(joins: &[PathBuf]) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut payload = Vec::new();
    for j in joins {
        payload.extend_from_slice(j.as_os_str().as_bytes());
        payload.push(0);
    }
    let mut m = Vec::with_capacity(5 + payload.len());
    m.push(RELEASE);
    m.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    m.extend_from_slice(&payload);
    m
}

/// Read a [`release_message`] from `fd`: `Ok(None)` on EOF before its first byte, `EPROTO`
/// for anything else than a whole message.
pub fn read_release_from(fd: RawFd) -> Result<Option<Vec<PathBuf>>, Errno> {
    use std::os::unix::ffi::OsStrExt;
    fn fill(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut got = 0;
        while got < buf.len() {
            match nix::unistd::read(fd, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
    let mut head = [0u8; 5];
    match fill(fd, &mut head)? {
        0 => return Ok(None),
        5 if head[0] == RELEASE => {}
        _ => return Err(Errno::EPROTO),
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return Err(Errno::EPROTO);
    }
    let mut payload = vec![0u8; len];
    if fill(fd, &mut payload)? != len || payload.last().is_some_and(|b| *b != 0) {
        return Err(Errno::EPROTO);
    }
    Ok(Some(
        payload
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
            .collect(),
    ))
}

/// The whole container setup ([`setup_early`] then [`setup_late`]) with no monitor in
/// between.
pub fn setup(
    sys: &dyn Syscall,
    spec: &StartSpec,
    console: Option<RawFd>,
    ttys: &[RawFd],
) -> Result<(), ChildError> {
    setup_early(sys, spec, console, ttys)?;
    setup_late(sys, spec, console)
}

/// The part of a start that needs neither the cgroups nor the host side of the network, run
/// before the monitor releases the child: `/` rslave and the rootfs bound onto itself;
/// `lxc.mount.auto` proc and sys; the autodev tmpfs; mount entries; `/dev` nodes, devpts,
/// console and ttys; `lo` up; hostname.
pub fn setup_early(
    sys: &dyn Syscall,
    spec: &StartSpec,
    console: Option<RawFd>,
    ttys: &[RawFd],
) -> Result<(), ChildError> {
    let rootfs = spec.rootfs.path.as_path();
    match &spec.rootfs.overlay {
        Some(o) => mounts::prepare_overlay_rootfs(sys, rootfs, o, &spec.rootfs.options)?,
        None => mounts::prepare_rootfs(sys, rootfs, &spec.rootfs.options)?,
    }
    let own_netns = !spec.share_host_net;
    mounts::mount_auto_early(sys, rootfs, &spec.mount_auto, own_netns)?;
    if spec.autodev {
        dev::mount_dev_tmpfs(sys, rootfs)?;
    }
    for entry in &spec.mounts {
        mounts::mount_entry(sys, rootfs, entry)?;
    }
    if spec.autodev {
        dev::populate_dev(sys, rootfs)?;
    }
    dev::mount_devpts(sys, rootfs, spec.tty.pty_max, spec.autodev)?;
    dev::setup_ptys(sys, rootfs, spec.tty.dir.as_deref(), console, ttys)?;
    if own_netns {
        sys.loopback_up()
            .map_err(|e| ChildError::op("bring up", "lo", e))?;
    }
    sys.sethostname(&spec.hostname)
        .map_err(|e| ChildError::op("set hostname", &spec.hostname, e))?;
    Ok(())
}

/// The rest, once the monitor has placed the child in its cgroups and made its network
/// interfaces: the cgroup namespace and `lxc.mount.auto` cgroup mounts (after the mount
/// entries, as LXC mounts them); pivot_root; sysctls (the interfaces exist now),
/// `lxc.proc.*`, prlimits, personality; `/proc/sys` and rootfs read-only remounts; session,
/// controlling tty and stdio; capability bounding set; groups, gid, uid; no_new_privs; cwd.
pub fn setup_late(
    sys: &dyn Syscall,
    spec: &StartSpec,
    console: Option<RawFd>,
) -> Result<(), ChildError> {
    sys.unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| ChildError::op("unshare", "CLONE_NEWCGROUP", e))?;
    let rootfs = spec.rootfs.path.as_path();
    let mountinfo = if spec.mount_auto.cgroup.is_some() {
        let p = Path::new("/proc/self/mountinfo");
        sys.read_file(p)
            .map_err(|e| ChildError::path("read", p, e))?
    } else {
        String::new()
    };
    mounts::mount_auto_cgroup(sys, rootfs, &spec.mount_auto, &mountinfo)?;

    pivot(sys, rootfs)?;

    for (key, value) in &spec.sysctls {
        let path = sysctl_path(key)?;
        sys.write_file(&path, value.as_bytes())
            .map_err(|errno| ChildError::Write {
                path,
                value: value.clone(),
                errno,
            })?;
    }
    for (file, value) in &spec.proc_writes {
        let path = proc_self_path(file)?;
        sys.write_file(&path, value.as_bytes())
            .map_err(|errno| ChildError::Write {
                path,
                value: value.clone(),
                errno,
            })?;
    }
    for l in &spec.prlimits {
        let (soft, hard) = (l.soft.unwrap_or(u64::MAX), l.hard.unwrap_or(u64::MAX));
        sys.setrlimit(l.resource, soft, hard).map_err(|e| {
            ChildError::op(
                "setrlimit",
                format!("resource {} to {soft}:{hard}", l.resource),
                e,
            )
        })?;
    }
    if let Some(p) = spec.personality {
        sys.personality(p)
            .map_err(|e| ChildError::op("set personality", format!("{p:?}"), e))?;
    }
    if spec.mount_auto.proc == Some(ProcMode::Mixed) {
        remount(sys, Path::new("/proc/sys"), PSEUDO | MsFlags::MS_RDONLY)?;
    }
    if spec.rootfs.readonly {
        remount(
            sys,
            Path::new("/"),
            mounts::rootfs_final_flags(&spec.rootfs.options),
        )?;
    }

    setup_stdio(sys, console)?;
    drop_capabilities(sys, &spec.caps)?;
    set_ids(sys, &spec.init)?;
    if spec.no_new_privs {
        sys.set_no_new_privs()
            .map_err(|e| ChildError::op("set", "no_new_privs", e))?;
    }
    sys.chdir(&spec.init.cwd)
        .map_err(|e| ChildError::path("change directory to", &spec.init.cwd, e))?;
    Ok(())
}

/// `pivot_root(".", ".")` in the rootfs, then detach the old root stacked on top of it.
fn pivot(sys: &dyn Syscall, rootfs: &Path) -> Result<(), ChildError> {
    sys.chdir(rootfs)
        .map_err(|e| ChildError::path("change directory to", rootfs, e))?;
    sys.pivot_root(Path::new("."), Path::new("."))
        .map_err(|errno| ChildError::PivotRoot {
            root: rootfs.into(),
            errno,
        })?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)
        .map_err(|errno| ChildError::Umount {
            target: PathBuf::from("old root (after pivot_root)"),
            errno,
        })?;
    sys.chdir(Path::new("/"))
        .map_err(|e| ChildError::path("change directory to", "/", e))
}

fn plain_components(s: &str) -> bool {
    !s.is_empty()
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`.
fn sysctl_path(key: &str) -> Result<PathBuf, ChildError> {
    let rel = key.replace('.', "/");
    if key.contains('/') || !plain_components(&rel) || rel.split('/').any(str::is_empty) {
        return Err(ChildError::Invalid {
            what: "lxc.sysctl key",
            value: key.into(),
            reason: "expected dot-separated names like net.ipv4.ip_forward",
        });
    }
    Ok(Path::new("/proc/sys").join(rel))
}

fn proc_self_path(file: &str) -> Result<PathBuf, ChildError> {
    if file.contains('/') || !plain_components(file) {
        return Err(ChildError::Invalid {
            what: "lxc.proc key",
            value: file.into(),
            reason: "expected a file name in /proc/<pid>/",
        });
    }
    Ok(Path::new("/proc/self").join(file))
}

/// New session; the console pty slave becomes the controlling terminal and stdio (or
/// `/dev/null` without a console).
fn setup_stdio(sys: &dyn Syscall, console: Option<RawFd>) -> Result<(), ChildError> {
    sys.setsid()
        .map_err(|e| ChildError::op("setsid", "for init", e))?;
    let fd = match console {
        Some(fd) => {
            sys.set_controlling_tty(fd)
                .map_err(|e| ChildError::op("make the console the controlling tty, fd", fd, e))?;
            fd
        }
        None => {
            let p = Path::new("/dev/null");
            sys.open_rdwr(p)
                .map_err(|e| ChildError::path("open", p, e))?
        }
    };
    for target in 0..3 {
        sys.dup2(fd, target)
            .map_err(|e| ChildError::op("dup2 onto stdio, fd", format!("{fd} -> {target}"), e))?;
    }
    Ok(())
}

/// The capabilities removed from the bounding set: `drop`, or everything not in `keep`.
pub fn capabilities_to_drop(caps: &CapsSpec, last_cap: u32) -> Vec<u32> {
    match &caps.keep {
        Some(keep) => (0..=last_cap).filter(|c| !keep.contains(c)).collect(),
        None => {
            let mut v: Vec<u32> = Vec::new();
            for &c in &caps.drop {
                // A capability this kernel does not know cannot be held: nothing to drop.
                if c <= last_cap && !v.contains(&c) {
                    v.push(c);
                }
            }
            v
        }
    }
}

fn drop_capabilities(sys: &dyn Syscall, caps: &CapsSpec) -> Result<(), ChildError> {
    let last = sys
        .cap_last_cap()
        .map_err(|e| ChildError::op("read", "cap_last_cap", e))?;
    let list = capabilities_to_drop(caps, last);
    if list.is_empty() {
        return Ok(());
    }
    for &cap in &list {
        sys.cap_bset_drop(cap)
            .map_err(|e| ChildError::op("drop from the bounding set capability", cap, e))?;
    }
    sys.cap_clear_inheritable_ambient(&list).map_err(|e| {
        ChildError::op(
            "clear from the inheritable and ambient sets capabilities",
            format!("{list:?}"),
            e,
        )
    })
}

fn set_ids(sys: &dyn Syscall, init: &InitSpec) -> Result<(), ChildError> {
    sys.setgroups(&init.groups)
        .map_err(|e| ChildError::op("setgroups", format!("{:?}", init.groups), e))?;
    sys.setgid(init.gid)
        .map_err(|e| ChildError::op("setgid", init.gid, e))?;
    sys.setuid(init.uid)
        .map_err(|e| ChildError::op("setuid", init.uid, e))?;
    if init.uid != 0 || init.gid != 0 {
        // The kernel clears the parent-death signal when credentials change.
        sys.set_pdeathsig_kill()
            .map_err(|e| ChildError::op("set parent-death signal", "SIGKILL", e))?;
    }
    Ok(())
}

fn cstring(what: &'static str, s: String) -> Result<CString, ChildError> {
    CString::new(s).map_err(|e| ChildError::Invalid {
        what,
        value: String::from_utf8_lossy(&e.into_vec()).into_owned(),
        reason: "contains a NUL byte",
    })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Step 11: every descriptor but stdio close-on-exec, signals back to default, execve init
/// with exactly `init.env`. A command without `/` is looked up in the env's `PATH`.
pub fn exec_init(sys: &dyn Syscall, init: &InitSpec) -> Result<Infallible, ChildError> {
    let Some(arg0) = init.argv.first() else {
        return Err(ChildError::Invalid {
            what: "init command",
            value: String::new(),
            reason: "empty",
        });
    };
    let argv = init
        .argv
        .iter()
        .map(|a| cstring("init argument", a.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = init
        .env
        .iter()
        .map(|(k, v)| cstring("environment variable", format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    sys.cloexec_from(3)
        .map_err(|e| ChildError::op("mark descriptors close-on-exec from", 3, e))?;
    sys.reset_signals()
        .map_err(|e| ChildError::op("reset signal", "dispositions and mask", e))?;
    if arg0.contains('/') {
        let errno = sys.execve(&cstring("init command", arg0.clone())?, &argv, &env);
        return Err(ChildError::Exec {
            path: arg0.clone(),
            errno,
        });
    }
    let path_var = init
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let mut result = Errno::ENOENT;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{arg0}");
        match sys.execve(&cstring("init command", candidate.clone())?, &argv, &env) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => result = Errno::EACCES,
            errno => {
                return Err(ChildError::Exec {
                    path: candidate,
                    errno,
                })
            }
        }
    }
    Err(ChildError::Exec {
        path: arg0.clone(),
        errno: result,
    })
}
