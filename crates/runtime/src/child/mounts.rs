//! Mounts made before `pivot_root`: the rootfs bind, `lxc.mount.auto`, `lxc.mount.entry`.
//!
//! All targets are host paths under the rootfs, found with [`resolve_in_root`], which resolves
//! symlinks with the rootfs as `/` (like `openat2(RESOLVE_IN_ROOT)`), so a symlink in the
//! container's tree can never point a mount at the host. No container process runs yet, so
//! nothing can swap a path component between resolution and mount.

use super::error::ChildError;
use crate::spec::{CgroupMountMode, CreateKind, MountAuto, MountEntry, ProcMode, SysMode};
use crate::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Flags used for the pseudo filesystems (proc, sysfs, cgroup).
pub(crate) const PSEUDO: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

const MAX_SYMLINKS: usize = 40;

/// `mount(8)`-style options split into mount flags, propagation flags and the data string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// `private`, `rslave`, ... applied by a separate mount(2) after the mount.
    pub propagation: MsFlags,
    /// Options passed to the filesystem (`size=10m,mode=755`).
    pub data: Vec<String>,
}

impl MountOptions {
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Parse mount options (each item may itself be comma-separated).
pub fn parse_mount_options<S: AsRef<str>>(opts: &[S]) -> MountOptions {
    use MsFlags as F;
    let mut o = MountOptions {
        flags: F::empty(),
        propagation: F::empty(),
        data: Vec::new(),
    };
    for opt in opts.iter().flat_map(|s| s.as_ref().split(',')) {
        let opt = opt.trim();
        let (set, clear) = match opt {
            "" | "defaults" => continue,
            // fstab(5)-only options that mean nothing to mount(2).
            "auto" | "noauto" | "user" | "nouser" | "users" | "nofail" | "_netdev" | "owner"
            | "group" => continue,
            "ro" => (F::MS_RDONLY, F::empty()),
            "rw" => (F::empty(), F::MS_RDONLY),
            "nosuid" => (F::MS_NOSUID, F::empty()),
            "suid" => (F::empty(), F::MS_NOSUID),
            "nodev" => (F::MS_NODEV, F::empty()),
            "dev" => (F::empty(), F::MS_NODEV),
            "noexec" => (F::MS_NOEXEC, F::empty()),
            "exec" => (F::empty(), F::MS_NOEXEC),
            "sync" => (F::MS_SYNCHRONOUS, F::empty()),
            "async" => (F::empty(), F::MS_SYNCHRONOUS),
            "dirsync" => (F::MS_DIRSYNC, F::empty()),
            "remount" => (F::MS_REMOUNT, F::empty()),
            "mand" => (F::MS_MANDLOCK, F::empty()),
            "nomand" => (F::empty(), F::MS_MANDLOCK),
            "noatime" => (F::MS_NOATIME, F::empty()),
            "atime" => (F::empty(), F::MS_NOATIME),
            "nodiratime" => (F::MS_NODIRATIME, F::empty()),
            "diratime" => (F::empty(), F::MS_NODIRATIME),
            "relatime" => (F::MS_RELATIME, F::empty()),
            "norelatime" => (F::empty(), F::MS_RELATIME),
            "strictatime" => (F::MS_STRICTATIME, F::empty()),
            "nostrictatime" => (F::empty(), F::MS_STRICTATIME),
            "lazytime" => (F::MS_LAZYTIME, F::empty()),
            "nolazytime" => (F::empty(), F::MS_LAZYTIME),
            "silent" => (F::MS_SILENT, F::empty()),
            "loud" => (F::empty(), F::MS_SILENT),
            "bind" => (F::MS_BIND, F::empty()),
            "rbind" => (F::MS_BIND | F::MS_REC, F::empty()),
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
            | "runbindable" => {
                let p = match opt.trim_start_matches('r') {
                    "private" => F::MS_PRIVATE,
                    "slave" => F::MS_SLAVE,
                    "shared" => F::MS_SHARED,
                    _ => F::MS_UNBINDABLE,
                };
                o.propagation |= p;
                if opt.starts_with('r') {
                    o.propagation |= F::MS_REC;
                }
                continue;
            }
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o
}

/// `MS_RDONLY|MS_BIND` style names for messages.
pub(crate) fn flag_names(flags: MsFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(n, _)| n).collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

enum Step {
    Parent,
    Name(OsString),
}

/// Resolve `path` (as configured, relative to the rootfs; a leading `/` is ignored) to a host
/// path under `root`, following symlinks found in the tree with `root` as `/`; `..` inside a
/// symlink's target never climbs above `root`. The configured path itself may not contain `..`.
/// Components that do not exist yet are kept as they are (they may be created afterwards).
pub fn resolve_in_root(sys: &dyn Syscall, root: &Path, path: &str) -> Result<PathBuf, ChildError> {
    let mut pending: Vec<Step> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => pending.push(Step::Name(n.to_os_string())),
            Component::ParentDir => {
                return Err(ChildError::BadTarget {
                    target: path.into(),
                    reason: "'..' would leave the container's root filesystem",
                })
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending.reverse(); // a stack: next component on top
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(step) = pending.pop() {
        match step {
            Step::Parent => {
                resolved.pop();
            }
            Step::Name(name) => {
                let mut candidate = root.to_path_buf();
                candidate.extend(&resolved);
                candidate.push(&name);
                match sys.readlink(&candidate) {
                    Ok(Some(target)) => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(ChildError::SymlinkLoop {
                                root: root.into(),
                                path: path.into(),
                            });
                        }
                        if target.is_absolute() {
                            resolved.clear();
                        }
                        for c in target.components().rev() {
                            match c {
                                Component::Normal(n) => pending.push(Step::Name(n.into())),
                                Component::ParentDir => pending.push(Step::Parent),
                                _ => {}
                            }
                        }
                    }
                    Ok(None) => resolved.push(name),
                    Err(e) => return Err(ChildError::path("readlink", candidate, e)),
                }
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// mkdir -p of `path` below `root` (both host paths; `path` resolved by [`resolve_in_root`]).
pub(crate) fn mkdir_p(sys: &dyn Syscall, root: &Path, path: &Path) -> Result<(), ChildError> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            match sys.mkdir(&cur, 0o755) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(ChildError::path("create directory", cur, e)),
            }
        }
    }
    Ok(())
}

pub(crate) fn do_mount(
    sys: &dyn Syscall,
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), ChildError> {
    sys.mount(Some(Path::new(source)), target, fstype, flags, data)
        .map_err(|errno| ChildError::Mount {
            src: source.into(),
            fstype: fstype
                .unwrap_or(if flags.contains(MsFlags::MS_BIND) {
                    "bind"
                } else {
                    "-"
                })
                .into(),
            target: target.into(),
            errno,
        })
}

pub(crate) fn bind(
    sys: &dyn Syscall,
    source: &Path,
    target: &Path,
    rec: bool,
) -> Result<(), ChildError> {
    let flags = if rec {
        MsFlags::MS_BIND | MsFlags::MS_REC
    } else {
        MsFlags::MS_BIND
    };
    do_mount(sys, &source.to_string_lossy(), target, None, flags, None)
}

/// Change the per-mount flags of `target` (`MS_REMOUNT|MS_BIND|flags`).
pub(crate) fn remount(sys: &dyn Syscall, target: &Path, flags: MsFlags) -> Result<(), ChildError> {
    let flags = flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    sys.mount(None, target, None, flags, None)
        .map_err(|errno| ChildError::Remount {
            target: target.into(),
            flags: flag_names(flags),
            errno,
        })
}

fn propagate(sys: &dyn Syscall, target: &Path, flags: MsFlags) -> Result<(), ChildError> {
    sys.mount(None, target, None, flags, None)
        .map_err(|errno| ChildError::Propagation {
            target: target.into(),
            flags: flag_names(flags),
            errno,
        })
}

/// Step 3: `/` rslave, the rootfs bound onto itself (and its options applied: flags such as
/// `nodev`/`nosuid` by a bind remount now, `ro` at the very end; filesystem data options mean
/// nothing for a bind of a directory and are ignored).
pub(crate) fn prepare_rootfs(
    sys: &dyn Syscall,
    rootfs: &Path,
    options: &[String],
) -> Result<(), ChildError> {
    propagate(sys, Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)?;
    bind(sys, rootfs, rootfs, true)?;
    let o = parse_mount_options(options);
    // `ro` is applied at the very end (see `finish_rootfs`), everything else now.
    let flags = o.flags - (MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
    if !flags.is_empty() {
        remount(sys, rootfs, flags)?;
    }
    if !o.propagation.is_empty() {
        propagate(sys, rootfs, o.propagation)?;
    }
    Ok(())
}

/// Like [`prepare_rootfs`] for an overlay rootfs: the overlay is mounted on `rootfs` (in the
/// container's fresh mount namespace, so it disappears with it) instead of a self-bind.
pub(crate) fn prepare_overlay_rootfs(
    sys: &dyn Syscall,
    rootfs: &Path,
    overlay: &crate::spec::OverlaySpec,
    options: &[String],
) -> Result<(), ChildError> {
    propagate(sys, Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay.lower.display(),
        overlay.upper.display(),
        overlay.work.display()
    );
    do_mount(
        sys,
        "overlay",
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )?;
    let o = parse_mount_options(options);
    let flags = o.flags - (MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
    if !flags.is_empty() {
        remount(sys, rootfs, flags)?;
    }
    if !o.propagation.is_empty() {
        propagate(sys, rootfs, o.propagation)?;
    }
    Ok(())
}

/// Per-mount flags the rootfs keeps when it is finally remounted read-only.
pub(crate) fn rootfs_final_flags(options: &[String]) -> MsFlags {
    let o = parse_mount_options(options);
    let keep = MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_STRICTATIME;
    (o.flags & keep) | MsFlags::MS_RDONLY
}

/// Step 5: one `lxc.mount.entry`. `optional` entries ignore mount and create failures (a
/// target that escapes the rootfs is always an error).
pub fn mount_entry(sys: &dyn Syscall, rootfs: &Path, e: &MountEntry) -> Result<(), ChildError> {
    // LXC accepts targets spelled with the rootfs path in front (lxc.container.conf(5):
    // `/lib /root/myrootfs/lib none ro,bind`): strip it.
    let abs = Path::new("/").join(&e.target);
    let target = match abs.strip_prefix(rootfs) {
        Ok(rel) if rootfs != Path::new("/") => rel.to_string_lossy().into_owned(),
        _ => e.target.clone(),
    };
    let target = resolve_in_root(sys, rootfs, &target)?;
    let source = if e.relative {
        resolve_in_root(sys, rootfs, &e.source)?
            .to_string_lossy()
            .into_owned()
    } else {
        e.source.clone()
    };
    match mount_entry_at(sys, rootfs, e, &source, &target) {
        Err(_) if e.optional => Ok(()),
        r => r,
    }
}

fn mount_entry_at(
    sys: &dyn Syscall,
    rootfs: &Path,
    e: &MountEntry,
    source: &str,
    target: &Path,
) -> Result<(), ChildError> {
    match e.create {
        Some(CreateKind::Dir) => mkdir_p(sys, rootfs, target)?,
        Some(CreateKind::File) => {
            if let Some(parent) = target.parent() {
                mkdir_p(sys, rootfs, parent)?;
            }
            sys.create_file(target, 0o644)
                .map_err(|errno| ChildError::path("create file", target, errno))?;
        }
        None => {}
    }
    let o = parse_mount_options(&e.options);
    let data = o.data_string();
    if o.flags.contains(MsFlags::MS_BIND) {
        let rec = o.flags.contains(MsFlags::MS_REC);
        bind(sys, Path::new(source), target, rec)?;
        let rest = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !rest.is_empty() {
            remount(sys, target, rest)?;
        }
    } else {
        let fstype = (!e.fstype.is_empty()).then_some(e.fstype.as_str());
        do_mount(sys, source, target, fstype, o.flags, data.as_deref())?;
    }
    if !o.propagation.is_empty() {
        propagate(sys, target, o.propagation)?;
    }
    Ok(())
}

/// One cgroup v1 hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Directory name under `/sys/fs/cgroup` (the host's, e.g. `cpu` or `systemd`).
    pub dir: String,
    /// mount(2) data selecting the hierarchy: `cpu,cpuacct` or `name=systemd`.
    pub options: String,
}

/// The cgroup hierarchies of the host, from `/proc/self/mountinfo` text: the v1 ones (one per
/// superblock) and whether there is a cgroup2 mount (and where).
pub fn cgroup_hierarchies(mountinfo: &str) -> (Vec<CgroupHierarchy>, Option<String>) {
    const CONTROLLERS: &[&str] = &[
        "cpuset",
        "cpu",
        "cpuacct",
        "blkio",
        "io",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
        "debug",
    ];
    let mut v1: Vec<(String, CgroupHierarchy)> = Vec::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(dev), Some(mountpoint), Some(fstype)) = (pre.get(2), pre.get(4), post.first())
        else {
            continue;
        };
        match *fstype {
            "cgroup" => {
                let superopts = post.get(2).copied().unwrap_or("");
                let opts: Vec<&str> = superopts
                    .split(',')
                    .filter(|o| CONTROLLERS.contains(o) || o.starts_with("name="))
                    .collect();
                if opts.is_empty() || v1.iter().any(|(d, _)| d == dev) {
                    continue;
                }
                let options = opts.join(",");
                let dir = match mountpoint.strip_prefix("/sys/fs/cgroup/") {
                    Some(d) if !d.is_empty() && !d.contains('/') => d.to_string(),
                    _ => options.trim_start_matches("name=").to_string(),
                };
                v1.push((dev.to_string(), CgroupHierarchy { dir, options }));
            }
            "cgroup2" if v2.is_none() => v2 = Some(mountpoint.to_string()),
            _ => {}
        }
    }
    (v1.into_iter().map(|(_, h)| h).collect(), v2)
}

/// Step 4: `lxc.mount.auto`. The read-only remount of `/proc/sys` (proc:mixed) is left to
/// the caller (after the sysctls are written); with `own_netns`, `/proc/sys/net` stays
/// writable.
pub fn mount_auto(
    sys: &dyn Syscall,
    rootfs: &Path,
    auto: &MountAuto,
    own_netns: bool,
    host_mountinfo: &str,
) -> Result<(), ChildError> {
    mount_auto_early(sys, rootfs, auto, own_netns)?;
    mount_auto_cgroup(sys, rootfs, auto, host_mountinfo)
}

/// `lxc.mount.auto` without its cgroup part, which needs the cgroup namespace (made once the
/// monitor has placed the child): proc and sysfs (left writable until
/// [`mount_auto_cgroup`] has mounted the cgroups under it).
pub fn mount_auto_early(
    sys: &dyn Syscall,
    rootfs: &Path,
    auto: &MountAuto,
    own_netns: bool,
) -> Result<(), ChildError> {
    if let Some(mode) = auto.proc {
        let proc = resolve_in_root(sys, rootfs, "proc")?;
        mkdir_p(sys, rootfs, &proc)?;
        do_mount(sys, "proc", &proc, Some("proc"), PSEUDO, None)?;
        if mode == ProcMode::Mixed {
            let sysrq = proc.join("sysrq-trigger");
            match sys.mount(Some(&sysrq), &sysrq, None, MsFlags::MS_BIND, None) {
                Ok(()) => remount(sys, &sysrq, PSEUDO | MsFlags::MS_RDONLY)?,
                Err(Errno::ENOENT) => {} // kernel without magic sysrq
                Err(errno) => {
                    return Err(ChildError::Mount {
                        src: sysrq.to_string_lossy().into(),
                        fstype: "bind".into(),
                        target: sysrq,
                        errno,
                    })
                }
            }
            // made read-only after the sysctls are applied
            let procsys = proc.join("sys");
            bind(sys, &procsys, &procsys, false)?;
            if own_netns {
                // As LXC: the container's own network sysctls stay writable (a separate
                // mount on top, untouched by the later read-only remount of /proc/sys).
                let net = procsys.join("net");
                bind(sys, &net, &net, false)?;
            }
        }
    }
    let sysdir = resolve_in_root(sys, rootfs, "sys")?;
    if let Some(mode) = auto.sys {
        mkdir_p(sys, rootfs, &sysdir)?;
        do_mount(sys, "sysfs", &sysdir, Some("sysfs"), PSEUDO, None)?;
        if mode == SysMode::Mixed {
            let net = sysdir.join("devices/virtual/net");
            match sys.mount(Some(&net), &net, None, MsFlags::MS_BIND, None) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(errno) => {
                    return Err(ChildError::Mount {
                        src: net.to_string_lossy().into(),
                        fstype: "bind".into(),
                        target: net,
                        errno,
                    })
                }
            }
        }
    }
    Ok(())
}

/// The cgroup part of `lxc.mount.auto` (in the container's cgroup namespace), then sysfs
/// made read-only as its mode says.
pub fn mount_auto_cgroup(
    sys: &dyn Syscall,
    rootfs: &Path,
    auto: &MountAuto,
    host_mountinfo: &str,
) -> Result<(), ChildError> {
    if let Some(mode) = auto.cgroup {
        mount_cgroups(sys, rootfs, mode, host_mountinfo)?;
    }
    finish_sys(sys, rootfs, auto)
}

fn finish_sys(sys: &dyn Syscall, rootfs: &Path, auto: &MountAuto) -> Result<(), ChildError> {
    if matches!(auto.sys, Some(SysMode::Mixed | SysMode::Ro)) {
        let sysdir = resolve_in_root(sys, rootfs, "sys")?;
        remount(sys, &sysdir, PSEUDO | MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

fn mount_cgroups(
    sys: &dyn Syscall,
    rootfs: &Path,
    mode: CgroupMountMode,
    host_mountinfo: &str,
) -> Result<(), ChildError> {
    use CgroupMountMode as M;
    let base = resolve_in_root(sys, rootfs, "sys/fs/cgroup")?;
    mkdir_p(sys, rootfs, &base)?;
    let (v1, v2) = cgroup_hierarchies(host_mountinfo);
    let ro = matches!(mode, M::Ro | M::FullRo | M::Cgroup2Ro);
    let flags = if ro {
        PSEUDO | MsFlags::MS_RDONLY
    } else {
        PSEUDO
    };
    // cgroup2 only: requested, or a pure unified host.
    if matches!(mode, M::Cgroup2 | M::Cgroup2Ro) || (v1.is_empty() && v2.is_some()) {
        return do_mount(sys, "cgroup2", &base, Some("cgroup2"), flags, None);
    }
    do_mount(
        sys,
        "cgroup",
        &base,
        Some("tmpfs"),
        PSEUDO,
        Some("size=10240k,mode=755"),
    )?;
    // We are in our own cgroup namespace: each fresh hierarchy mount shows the container's
    // own cgroup as its root, so "mixed" (own cgroup writable) = hierarchies rw, tmpfs ro.
    // The directories are made in the tmpfs just mounted (nothing else is in it), below a
    // base already resolved inside the rootfs: one mkdir each.
    let mkdir_in_tmpfs = |name: &str| -> Result<PathBuf, ChildError> {
        let dir = base.join(name);
        if Path::new(name).components().count() != 1 {
            mkdir_p(sys, rootfs, &dir)?;
            return Ok(dir);
        }
        match sys.mkdir(&dir, 0o755) {
            Ok(()) | Err(Errno::EEXIST) => Ok(dir),
            Err(e) => Err(ChildError::path("create directory", dir, e)),
        }
    };
    for h in &v1 {
        let dir = mkdir_in_tmpfs(&h.dir)?;
        do_mount(sys, "cgroup", &dir, Some("cgroup"), flags, Some(&h.options))?;
    }
    if let Some(v2) = v2 {
        let name = v2
            .strip_prefix("/sys/fs/cgroup/")
            .filter(|d| !d.is_empty() && !d.contains('/'))
            .unwrap_or("unified");
        let dir = mkdir_in_tmpfs(name)?;
        do_mount(sys, "cgroup2", &dir, Some("cgroup2"), flags, None)?;
    }
    if !matches!(mode, M::Rw | M::FullRw) {
        remount(sys, &base, PSEUDO | MsFlags::MS_RDONLY)?;
    }
    Ok(())
}
