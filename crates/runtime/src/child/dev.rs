//! `/dev`: the autodev tmpfs, its nodes and links, the private devpts, console and ttys.

use super::error::ChildError;
use super::mounts::{bind, do_mount, mkdir_p, resolve_in_root};
use crate::syscall::{NodeKind, Syscall};
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// `lxc.autodev.tmpfs.size` default (bytes).
pub const AUTODEV_TMPFS_SIZE: u32 = 500_000;

/// The standard character devices of an autodev `/dev`: name, major, minor.
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Standard symlinks of an autodev `/dev`: link name, target.
pub const LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Mount the autodev tmpfs on `<rootfs>/dev` (before the mount entries, so entries can
/// target `/dev`).
pub(crate) fn mount_dev_tmpfs(sys: &dyn Syscall, rootfs: &Path) -> Result<(), ChildError> {
    let dev = resolve_in_root(sys, rootfs, "dev")?;
    mkdir_p(sys, rootfs, &dev)?;
    let data = format!("size={AUTODEV_TMPFS_SIZE},mode=755");
    do_mount(
        sys,
        "none",
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(&data),
    )
}

/// Nodes, links, `/dev/shm` and `/dev/mqueue` of an autodev `/dev`.
pub(crate) fn populate_dev(sys: &dyn Syscall, rootfs: &Path) -> Result<(), ChildError> {
    let dev = resolve_in_root(sys, rootfs, "dev")?;
    let old_mask = sys.umask(0);
    let r = make_nodes(sys, &dev);
    sys.umask(old_mask);
    r?;
    for (name, target) in LINKS {
        let link = dev.join(name);
        sys.symlink(Path::new(target), &link)
            .map_err(|e| ChildError::path("create symlink", link, e))?;
    }
    let shm = dev.join("shm");
    mkdir(sys, &shm)?;
    do_mount(
        sys,
        "shm",
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    let mq = dev.join("mqueue");
    mkdir(sys, &mq)?;
    match sys.mount(
        Some(Path::new("mqueue")),
        &mq,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    ) {
        // ENODEV: kernel without POSIX mqueues; EBUSY: already mounted there by an
        // lxc.mount.entry (LXC's own templates add one).
        Ok(()) | Err(Errno::ENODEV) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(ChildError::Mount {
            src: "mqueue".into(),
            fstype: "mqueue".into(),
            target: mq,
            errno,
        }),
    }
}

fn mkdir(sys: &dyn Syscall, p: &Path) -> Result<(), ChildError> {
    match sys.mkdir(p, 0o755) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(ChildError::path("create directory", p, e)),
    }
}

fn make_nodes(sys: &dyn Syscall, dev: &Path) -> Result<(), ChildError> {
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        match sys.mknod(&path, NodeKind::Char, 0o666, *major, *minor) {
            Ok(()) => {}
            // Not allowed to create nodes: bind the host's node onto an empty file.
            Err(Errno::EPERM) | Err(Errno::EACCES) => {
                sys.create_file(&path, 0o666)
                    .map_err(|e| ChildError::path("create file", &path, e))?;
                bind(sys, &Path::new("/dev").join(name), &path, false)?;
            }
            Err(e) => return Err(ChildError::path("create device node", path, e)),
        }
    }
    Ok(())
}

/// devpts options for `lxc.pty.max` (0 = kernel default).
pub fn devpts_options(pty_max: u32) -> String {
    let mut s = String::from("newinstance,ptmxmode=0666,mode=0620,gid=5");
    if pty_max > 0 {
        s.push_str(&format!(",max={pty_max}"));
    }
    s
}

/// A private devpts instance on `/dev/pts`, and `/dev/ptmx` pointing at its ptmx.
pub(crate) fn mount_devpts(
    sys: &dyn Syscall,
    rootfs: &Path,
    pty_max: u32,
    autodev: bool,
) -> Result<(), ChildError> {
    let pts = resolve_in_root(sys, rootfs, "dev/pts")?;
    mkdir_p(sys, rootfs, &pts)?;
    do_mount(
        sys,
        "devpts",
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&devpts_options(pty_max)),
    )?;
    if !autodev {
        // A static /dev: cover its ptmx with ours, or link one in.
        let ptmx = resolve_in_root(sys, rootfs, "dev/ptmx")?;
        let src = pts.join("ptmx");
        match sys.mount(Some(&src), &ptmx, None, MsFlags::MS_BIND, None) {
            Ok(()) => {}
            Err(Errno::ENOENT) => sys
                .symlink(Path::new("pts/ptmx"), &ptmx)
                .map_err(|e| ChildError::path("create symlink", &ptmx, e))?,
            Err(errno) => {
                return Err(ChildError::Mount {
                    src: src.to_string_lossy().into(),
                    fstype: "bind".into(),
                    target: ptmx,
                    errno,
                })
            }
        }
    }
    Ok(())
}

/// Bind one pty slave (`fd`) on `/dev/<dir>/<name>` (or `/dev/<name>` without a tty dir);
/// with a tty dir, `/dev/<name>` becomes a symlink to it.
fn bind_pty(
    sys: &dyn Syscall,
    rootfs: &Path,
    dir: Option<&str>,
    name: &str,
    fd: RawFd,
) -> Result<(), ChildError> {
    // The pty was opened in the monitor's mount namespace; a bind from its /proc/self/fd
    // link names that namespace's mount and fails (EINVAL). Bind it by its path instead,
    // found in our copy of the host's mounts (what LXC does too).
    let fdlink = PathBuf::from(format!("/proc/self/fd/{fd}"));
    let source = match sys.readlink(&fdlink) {
        Ok(Some(p)) if p.is_absolute() => p,
        Ok(_) => {
            return Err(ChildError::Invalid {
                what: "pty descriptor",
                value: fdlink.display().to_string(),
                reason: "does not name a terminal device path",
            })
        }
        Err(e) => return Err(ChildError::path("readlink", fdlink, e)),
    };
    // The path must still name the very device we were handed (not, say, a pty of the
    // same number in some other devpts instance).
    match sys.same_file(fd, &source) {
        Ok(true) => {}
        Ok(false) => {
            return Err(ChildError::Invalid {
                what: "pty descriptor",
                value: format!("{} -> {}", fdlink.display(), source.display()),
                reason: "the path names a different device than the descriptor",
            })
        }
        Err(e) => return Err(ChildError::path("stat", source, e)),
    }
    let node = match dir {
        Some(d) => resolve_in_root(sys, rootfs, &format!("dev/{d}/{name}"))?,
        None => resolve_in_root(sys, rootfs, &format!("dev/{name}"))?,
    };
    sys.create_file(&node, 0o600)
        .map_err(|e| ChildError::path("create file", &node, e))?;
    bind(sys, &source, &node, false)?;
    if let Some(d) = dir {
        let link = resolve_in_root(sys, rootfs, "dev")?.join(name);
        match sys.symlink(&Path::new(d).join(name), &link) {
            Ok(()) => {}
            // A static /dev already has the node: cover it with the pty as well.
            Err(Errno::EEXIST) => bind(sys, &source, &link, false)?,
            Err(e) => return Err(ChildError::path("create symlink", link, e)),
        }
    }
    Ok(())
}

/// `/dev/console` and `/dev/tty1..N` (`lxc.tty.dir`-aware).
pub(crate) fn setup_ptys(
    sys: &dyn Syscall,
    rootfs: &Path,
    tty_dir: Option<&str>,
    console: Option<RawFd>,
    ttys: &[RawFd],
) -> Result<(), ChildError> {
    let dev = resolve_in_root(sys, rootfs, "dev")?;
    let tty_dir = tty_dir.filter(|d| !d.is_empty());
    if let Some(d) = tty_dir {
        if d.contains('/') || d == ".." || d == "." {
            return Err(ChildError::Invalid {
                what: "lxc.tty.dir",
                value: d.into(),
                reason: "must be a single directory name",
            });
        }
        if console.is_some() || !ttys.is_empty() {
            mkdir(sys, &dev.join(d))?;
        }
    }
    if let Some(fd) = console {
        bind_pty(sys, rootfs, tty_dir, "console", fd)?;
    }
    for (i, fd) in ttys.iter().enumerate() {
        bind_pty(sys, rootfs, tty_dir, &format!("tty{}", i + 1), *fd)?;
    }
    Ok(())
}
