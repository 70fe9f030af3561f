//! Sequencing tests of the container side of a start, against the recording fake.

use super::*;
use crate::spec::*;
use crate::syscall::fake::{Call, RecordingSyscall};
use crate::syscall::NodeKind;
use std::os::fd::OwnedFd;

const R: &str = "/var/lib/lxrs/c1/rootfs";

const HOST_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

fn spec() -> StartSpec {
    let mut s = StartSpec::new("c1", std::path::Path::new("/var/lib/lxrs"));
    s.rootfs.path = R.into();
    s.autodev = false;
    s.console.buffer_size = 0;
    s
}

/// LXC's modern defaults (common.conf) plus a bit of everything.
fn full_spec() -> StartSpec {
    let mut s = spec();
    s.rootfs.readonly = true;
    s.rootfs.options = vec!["ro".into(), "nodev".into()];
    s.hostname = "web1".into();
    s.mount_auto = MountAuto {
        proc: Some(ProcMode::Mixed),
        sys: Some(SysMode::Mixed),
        cgroup: Some(CgroupMountMode::Mixed),
    };
    s.autodev = true;
    s.tty = TtySpec {
        count: 2,
        dir: Some("lxc".into()),
        pty_max: 1024,
    };
    s.mounts = vec![entry(
        "/srv/data",
        "srv/data",
        "none",
        &["bind", "ro"],
        Some(CreateKind::Dir),
    )];
    s.caps.drop = vec![33, 32, 25, 16, 17]; // mac_admin mac_override sys_time sys_module sys_rawio
    s.sysctls = vec![("net.ipv4.ip_forward".into(), "1".into())];
    s.proc_writes = vec![("oom_score_adj".into(), "10".into())];
    s.prlimits = vec![Prlimit {
        resource: libc::RLIMIT_NOFILE,
        soft: Some(1024),
        hard: None,
    }];
    s.personality = Some(Personality::Linux32);
    s.no_new_privs = true;
    s
}

fn entry(
    src: &str,
    target: &str,
    fstype: &str,
    opts: &[&str],
    create: Option<CreateKind>,
) -> MountEntry {
    MountEntry {
        source: src.into(),
        target: target.into(),
        fstype: fstype.into(),
        options: opts.iter().map(|o| o.to_string()).collect(),
        create,
        optional: false,
        relative: false,
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

fn ctx(console: bool, ttys: usize) -> ChildContext {
    let (sync_read, _w) = pipe();
    let (_r, err_write) = pipe();
    ChildContext {
        sync_read,
        err_write,
        console: console.then(|| pipe().0),
        ttys: (0..ttys).map(|_| pipe().0).collect(),
        affinity: None,
    }
}

fn fake() -> RecordingSyscall {
    RecordingSyscall::new().file("/proc/self/mountinfo", HOST_MOUNTINFO)
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn mount_of(calls: &[Call], target: &str, fstype: Option<&str>) -> Option<usize> {
    calls.iter().position(|c| match c {
        Call::Mount {
            target: t,
            fstype: f,
            flags,
            ..
        } => {
            t == Path::new(target) && f.as_deref() == fstype && !flags.contains(MsFlags::MS_REMOUNT)
        }
        _ => false,
    })
}

fn remount_of(calls: &[Call], target: &str) -> Option<(usize, MsFlags)> {
    calls.iter().enumerate().find_map(|(i, c)| match c {
        Call::Mount {
            target: t, flags, ..
        } if t == Path::new(target) && flags.contains(MsFlags::MS_REMOUNT) => Some((i, *flags)),
        _ => None,
    })
}

fn bind_of(calls: &[Call], target: &str) -> Option<(usize, Option<PathBuf>)> {
    calls.iter().enumerate().find_map(|(i, c)| match c {
        Call::Mount {
            source,
            target: t,
            flags,
            ..
        } if t == Path::new(target)
            && flags.contains(MsFlags::MS_BIND)
            && !flags.contains(MsFlags::MS_REMOUNT) =>
        {
            Some((i, source.clone()))
        }
        _ => None,
    })
}

fn pos(calls: &[Call], want: &Call) -> usize {
    calls
        .iter()
        .position(|c| c == want)
        .unwrap_or_else(|| panic!("no {want} in:\n{}", dump(calls)))
}

fn dump(calls: &[Call]) -> String {
    calls.iter().map(|c| format!("  {c}\n")).collect()
}

fn run_full(sys: &RecordingSyscall, spec: &StartSpec, ctx: &ChildContext) -> ChildError {
    match run_with(sys, spec, ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

#[test]
fn clone_flags_leave_out_net_when_sharing_the_host_network() {
    let mut s = spec();
    let f = clone_flags(&s);
    for ns in [
        CloneFlags::CLONE_NEWNS,
        CloneFlags::CLONE_NEWPID,
        CloneFlags::CLONE_NEWUTS,
        CloneFlags::CLONE_NEWIPC,
        CloneFlags::CLONE_NEWNET,
    ] {
        assert!(f.contains(ns), "{ns:?} missing");
    }
    assert!(!f.contains(CloneFlags::CLONE_NEWCGROUP));
    s.share_host_net = true;
    assert!(!clone_flags(&s).contains(CloneFlags::CLONE_NEWNET));
}

#[test]
fn full_start_sequence() {
    let sys = fake();
    let s = full_spec();
    let c = ctx(true, 2);
    let err = run_full(&sys, &s, &c);
    let calls = sys.calls();
    let d = dump(&calls);

    // Step 1-2: die with the monitor, close what is not ours, then the first mount makes /
    // a recursive slave before anything is mounted. The release (sync byte) comes after the
    // early setup, and the cgroup namespace right after it.
    assert_eq!(calls[0], Call::SetPdeathsigKill, "{d}");
    let mut keep = vec![c.sync_read.as_raw_fd(), c.err_write.as_raw_fd()];
    keep.extend(c.console.iter().chain(&c.ttys).map(|f| f.as_raw_fd()));
    assert_eq!(calls[1], Call::CloseFdsExcept(keep), "{d}");
    let release = pos(&calls, &Call::ReadRelease(c.sync_read.as_raw_fd()));
    let cgroupns = pos(&calls, &Call::Unshare(CloneFlags::CLONE_NEWCGROUP));
    assert_eq!(cgroupns, release + 1, "{d}");
    // Before the release: the rootfs, proc, sys, /dev, ttys, lo and the hostname; after
    // it: cgroups, pivot_root and everything that touches the kernel's view of the
    // container (sysctls, caps, ids).
    let lo = pos(&calls, &Call::LoopbackUp);
    let hostname = pos(&calls, &Call::Sethostname(s.hostname.clone()));
    assert!(lo < release && hostname < release, "{d}");
    let pivot = calls
        .iter()
        .position(|c| matches!(c, Call::PivotRoot { .. }))
        .expect("pivot_root");
    assert!(pivot > cgroupns, "{d}");
    assert_eq!(
        calls[2],
        Call::Mount {
            source: None,
            target: p("/"),
            fstype: None,
            flags: MsFlags::MS_SLAVE | MsFlags::MS_REC,
            data: None
        },
        "{d}"
    );
    assert_eq!(
        calls[3],
        Call::Mount {
            source: Some(p(R)),
            target: p(R),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None
        },
        "{d}"
    );
    // rootfs options other than ro applied to the bind at once
    let (i, f) = remount_of(&calls, R).expect("rootfs nodev remount");
    assert_eq!(i, 4, "{d}");
    assert!(
        f.contains(MsFlags::MS_NODEV) && !f.contains(MsFlags::MS_RDONLY),
        "{d}"
    );

    // proc:mixed: proc, then sysrq-trigger bound ro, /proc/sys bound; /proc/sys made ro
    // only after the sysctl was written (after pivot_root).
    let proc = mount_of(&calls, &format!("{R}/proc"), Some("proc")).expect("proc mount");
    let (sysrq, _) = bind_of(&calls, &format!("{R}/proc/sysrq-trigger")).expect("sysrq bind");
    let (sysrq_ro, f) = remount_of(&calls, &format!("{R}/proc/sysrq-trigger")).unwrap();
    assert!(f.contains(MsFlags::MS_RDONLY));
    let (procsys, _) = bind_of(&calls, &format!("{R}/proc/sys")).expect("/proc/sys bind");
    assert!(proc < sysrq && sysrq < sysrq_ro && proc < procsys, "{d}");
    let (procsysnet, _) = bind_of(&calls, &format!("{R}/proc/sys/net")).expect("net sysctls bind");
    assert!(
        procsys < procsysnet,
        "/proc/sys/net on top of the /proc/sys bind: {d}"
    );
    assert!(
        remount_of(&calls, &format!("{R}/proc/sys/net")).is_none(),
        "{d}"
    );
    let sysctl = pos(
        &calls,
        &Call::WriteFile {
            path: p("/proc/sys/net/ipv4/ip_forward"),
            data: "1".into(),
        },
    );
    let (procsys_ro, f) = remount_of(&calls, "/proc/sys").expect("/proc/sys ro remount");
    assert!(f.contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_NOSUID));
    assert!(sysctl < procsys_ro, "{d}");

    // sys:mixed: sysfs, net bind, cgroups under it, then sysfs made ro
    let sysfs = mount_of(&calls, &format!("{R}/sys"), Some("sysfs")).expect("sysfs");
    let (net, _) = bind_of(&calls, &format!("{R}/sys/devices/virtual/net")).unwrap();
    let (sys_ro, f) = remount_of(&calls, &format!("{R}/sys")).unwrap();
    assert!(f.contains(MsFlags::MS_RDONLY));
    let cg_tmpfs = mount_of(&calls, &format!("{R}/sys/fs/cgroup"), Some("tmpfs")).unwrap();
    assert!(sysfs < net && net < sys_ro && cg_tmpfs < sys_ro, "{d}");

    // cgroup:mixed: every host hierarchy, in the container's cgroup namespace
    for (dir, opts) in [
        ("cpu", "cpu"),
        ("memory", "memory"),
        ("systemd", "name=systemd"),
    ] {
        let target = format!("{R}/sys/fs/cgroup/{dir}");
        assert!(
            calls.contains(&Call::Mkdir {
                path: p(&target),
                mode: 0o755
            }),
            "{d}"
        );
        let i = mount_of(&calls, &target, Some("cgroup")).unwrap_or_else(|| panic!("{dir}\n{d}"));
        let Call::Mount { data, flags, .. } = &calls[i] else {
            unreachable!()
        };
        assert_eq!(data.as_deref(), Some(opts));
        assert!(
            !flags.contains(MsFlags::MS_RDONLY),
            "own cgroup writable in mixed mode"
        );
        assert!(i > cgroupns, "after unshare(CLONE_NEWCGROUP)");
    }
    assert!(mount_of(
        &calls,
        &format!("{R}/sys/fs/cgroup/unified"),
        Some("cgroup2")
    )
    .is_some());
    let (_, f) = remount_of(&calls, &format!("{R}/sys/fs/cgroup")).expect("cgroup tmpfs ro");
    assert!(f.contains(MsFlags::MS_RDONLY));

    // autodev tmpfs before the mount entries, nodes after them
    let devtmpfs = mount_of(&calls, &format!("{R}/dev"), Some("tmpfs")).expect("dev tmpfs");
    let Call::Mount { data, .. } = &calls[devtmpfs] else {
        unreachable!()
    };
    assert_eq!(data.as_deref(), Some("size=500000,mode=755"));
    // create=dir made the target, then bind, then ro remount of the bind
    let mk = pos(
        &calls,
        &Call::Mkdir {
            path: p(&format!("{R}/srv/data")),
            mode: 0o755,
        },
    );
    let (b, src) = bind_of(&calls, &format!("{R}/srv/data")).expect("entry bind");
    assert_eq!(src, Some(p("/srv/data")));
    let (b_ro, f) = remount_of(&calls, &format!("{R}/srv/data")).unwrap();
    assert!(f.contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND));
    assert!(devtmpfs < mk && mk < b && b < b_ro, "{d}");
    for (name, major, minor) in DEVICES {
        let i = pos(
            &calls,
            &Call::Mknod {
                path: p(&format!("{R}/dev/{name}")),
                kind: NodeKind::Char,
                mode: 0o666,
                major: *major,
                minor: *minor,
            },
        );
        assert!(i > b_ro, "{d}");
    }
    for (name, target) in LINKS {
        pos(
            &calls,
            &Call::Symlink {
                target: p(target),
                link: p(&format!("{R}/dev/{name}")),
            },
        );
    }
    // devpts: a private instance with the pty limit
    let pts = mount_of(&calls, &format!("{R}/dev/pts"), Some("devpts")).expect("devpts");
    let Call::Mount { data, .. } = &calls[pts] else {
        unreachable!()
    };
    let data = data.as_deref().unwrap();
    assert!(data.split(',').any(|o| o == "newinstance"), "{data}");
    assert!(data.split(',').any(|o| o == "ptmxmode=0666"), "{data}");
    assert!(data.split(',').any(|o| o == "max=1024"), "{data}");

    // console and ttys under /dev/lxc, /dev/console and /dev/ttyN symlinks
    let console_fd = c.console.as_ref().unwrap().as_raw_fd();
    pos(
        &calls,
        &Call::CreateFile {
            path: p(&format!("{R}/dev/lxc/console")),
            mode: 0o600,
        },
    );
    let (_, src) = bind_of(&calls, &format!("{R}/dev/lxc/console")).expect("console bind");
    assert_eq!(
        src,
        Some(p(&format!("/dev/pts/fd{console_fd}"))),
        "bound by the pty's path"
    );
    pos(
        &calls,
        &Call::Symlink {
            target: p("lxc/console"),
            link: p(&format!("{R}/dev/console")),
        },
    );
    for (i, t) in c.ttys.iter().enumerate() {
        let n = i + 1;
        let (_, src) = bind_of(&calls, &format!("{R}/dev/lxc/tty{n}")).expect("tty bind");
        assert_eq!(src, Some(p(&format!("/dev/pts/fd{}", t.as_raw_fd()))));
        pos(
            &calls,
            &Call::Symlink {
                target: p(&format!("lxc/tty{n}")),
                link: p(&format!("{R}/dev/tty{n}")),
            },
        );
    }

    // pivot_root trick
    let chroot = pos(&calls, &Call::Chdir(p(R)));
    let pivot = pos(
        &calls,
        &Call::PivotRoot {
            new_root: p("."),
            put_old: p("."),
        },
    );
    let umount = pos(
        &calls,
        &Call::Umount2 {
            target: p("."),
            flags: MntFlags::MNT_DETACH,
        },
    );
    let cd = pos(&calls, &Call::Chdir(p("/")));
    assert!(
        chroot + 1 == pivot && pivot + 1 == umount && umount + 1 == cd,
        "{d}"
    );
    assert!(pts < chroot && procsys_ro > cd, "{d}");

    // hostname before the release; after the pivot: sysctl, proc, prlimit, personality
    let host = pos(&calls, &Call::Sethostname("web1".into()));
    assert!(host < release, "{d}");
    let oom = pos(
        &calls,
        &Call::WriteFile {
            path: p("/proc/self/oom_score_adj"),
            data: "10".into(),
        },
    );
    let rl = pos(
        &calls,
        &Call::Setrlimit {
            resource: libc::RLIMIT_NOFILE,
            soft: 1024,
            hard: u64::MAX,
        },
    );
    let pers = pos(&calls, &Call::Personality(Personality::Linux32));
    assert!(cd < sysctl && sysctl < oom && oom < rl && rl < pers, "{d}");

    // ro rootfs: the very last mount, read-only and keeping nodev
    let last_mount = calls
        .iter()
        .rposition(|c| matches!(c, Call::Mount { .. }))
        .unwrap();
    assert_eq!(
        calls[last_mount],
        Call::Mount {
            source: None,
            target: p("/"),
            fstype: None,
            flags: MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
            data: None
        },
        "{d}"
    );
    assert!(last_mount > procsys_ro);

    // console, caps, ids, nnp, cwd, then exec
    let setsid = pos(&calls, &Call::Setsid);
    let ctty = pos(&calls, &Call::SetControllingTty(console_fd));
    for t in 0..3 {
        assert!(
            pos(
                &calls,
                &Call::Dup2 {
                    fd: console_fd,
                    target: t
                }
            ) > ctty
        );
    }
    assert!(last_mount < setsid && setsid < ctty, "{d}");
    let mut dropped: Vec<u32> = calls
        .iter()
        .filter_map(|c| match c {
            Call::CapBsetDrop(n) => Some(*n),
            _ => None,
        })
        .collect();
    dropped.sort();
    assert_eq!(dropped, vec![16, 17, 25, 32, 33]);
    let clear = calls
        .iter()
        .position(|c| matches!(c, Call::CapClearInheritableAmbient(v) if v.len() == 5))
        .expect("inheritable/ambient cleared");
    let groups = pos(&calls, &Call::Setgroups(vec![]));
    let gid = pos(&calls, &Call::Setgid(0));
    let uid = pos(&calls, &Call::Setuid(0));
    let nnp = pos(&calls, &Call::SetNoNewPrivs);
    let cwd = calls
        .iter()
        .rposition(|c| *c == Call::Chdir(p("/")))
        .unwrap();
    let cloexec = pos(&calls, &Call::CloexecFrom(3));
    let exec = calls.len() - 1;
    assert!(
        clear < groups && groups < gid && gid < uid && uid < nnp && nnp < cwd,
        "{d}"
    );
    assert!(cwd < cloexec && cloexec < exec, "{d}");
    assert_eq!(
        calls[exec],
        Call::Execve {
            path: "/sbin/init".into(),
            argv: vec!["/sbin/init".into()],
            env: vec!["container=lxc".into()],
        }
    );
    // the fake's execve fails with ENOENT: the message the monitor relays
    assert_eq!(
        err.to_string(),
        "exec /sbin/init: No such file or directory (ENOENT)"
    );
}

#[test]
fn monitor_gone_before_release_does_nothing() {
    let sys = fake().sync_eof();
    let c = ctx(true, 0);
    let err = run_full(&sys, &full_spec(), &c);
    assert!(matches!(err, ChildError::MonitorGone), "{err}");
    // The early setup ran (in the child's own mount namespace, gone with it); nothing after
    // the failed release did.
    let calls = sys.calls();
    assert_eq!(
        calls.last(),
        Some(&Call::ReadRelease(c.sync_read.as_raw_fd())),
        "{}",
        dump(&calls)
    );
}

#[test]
fn failing_mount_is_reported_with_its_target_and_nothing_after_it_runs() {
    let target = format!("{R}/proc");
    let t2 = target.clone();
    let sys = fake().fail_when(
        move |c| matches!(c, Call::Mount { target, fstype: Some(f), .. } if f == "proc" && target == Path::new(&t2)),
        Errno::EPERM,
    );
    let mut s = spec();
    s.mount_auto.proc = Some(ProcMode::Rw);
    let err = run_full(&sys, &s, &ctx(false, 0));
    assert_eq!(
        err.to_string(),
        format!("mount proc (proc) on {target}: Operation not permitted (EPERM)")
    );
    let calls = sys.calls();
    assert!(
        matches!(calls.last(), Some(Call::Mount { .. })),
        "{}",
        dump(&calls)
    );
    assert!(!calls.iter().any(|c| matches!(c, Call::PivotRoot { .. })));
}

#[test]
fn optional_entry_failure_is_ignored_and_a_required_one_names_its_target() {
    let fails = |c: &Call| matches!(c, Call::Mount { source: Some(s), .. } if s == Path::new("/nonexistent"));
    let mut s = spec();
    let mut e = entry("/nonexistent", "mnt/opt", "none", &["bind"], None);
    e.optional = true;
    s.mounts = vec![
        e.clone(),
        entry("tmpfs", "tmp", "tmpfs", &["size=1m", "nosuid"], None),
    ];
    let sys = fake().fail_when(fails, Errno::ENOENT);
    let err = run_full(&sys, &s, &ctx(false, 0));
    assert!(
        matches!(err, ChildError::Exec { .. }),
        "optional failure must not stop: {err}"
    );
    let calls = sys.calls();
    let i = mount_of(&calls, &format!("{R}/tmp"), Some("tmpfs")).expect("next entry mounted");
    let Call::Mount {
        flags,
        data,
        source,
        ..
    } = &calls[i]
    else {
        unreachable!()
    };
    assert_eq!(
        (*flags, data.as_deref()),
        (MsFlags::MS_NOSUID, Some("size=1m"))
    );
    assert_eq!(source.as_deref(), Some(Path::new("tmpfs")));

    e.optional = false;
    s.mounts = vec![e];
    let sys = fake().fail_when(fails, Errno::ENOENT);
    let err = run_full(&sys, &s, &ctx(false, 0));
    assert_eq!(
        err.to_string(),
        format!("mount /nonexistent (bind) on {R}/mnt/opt: No such file or directory (ENOENT)")
    );
}

#[test]
fn create_file_makes_parents_and_the_file() {
    let sys = fake();
    let e = entry(
        "/etc/resolv.conf",
        "etc/net/resolv.conf",
        "none",
        &["bind", "create=file"],
        Some(CreateKind::File),
    );
    mount_entry(&sys, Path::new(R), &e).unwrap();
    let calls = sys.calls();
    let d = dump(&calls);
    let a = pos(
        &calls,
        &Call::Mkdir {
            path: p(&format!("{R}/etc")),
            mode: 0o755,
        },
    );
    let b = pos(
        &calls,
        &Call::Mkdir {
            path: p(&format!("{R}/etc/net")),
            mode: 0o755,
        },
    );
    let f = pos(
        &calls,
        &Call::CreateFile {
            path: p(&format!("{R}/etc/net/resolv.conf")),
            mode: 0o644,
        },
    );
    let (m, _) = bind_of(&calls, &format!("{R}/etc/net/resolv.conf")).unwrap();
    assert!(a < b && b < f && f < m, "{d}");
    // "create=file" is an lxrs option the builder strips; if left in, it is fs data and a
    // bind ignores data: no remount for it.
    assert!(
        remount_of(&calls, &format!("{R}/etc/net/resolv.conf")).is_none(),
        "{d}"
    );
}

#[test]
fn escaping_targets_are_refused_or_kept_inside_the_rootfs() {
    // '..' in a configured target: refused, even for optional entries, nothing mounted.
    let sys = fake();
    let mut e = entry(
        "/srv",
        "../../../etc",
        "none",
        &["bind"],
        Some(CreateKind::Dir),
    );
    e.optional = true;
    let err = mount_entry(&sys, Path::new(R), &e).unwrap_err();
    assert!(matches!(err, ChildError::BadTarget { .. }), "{err}");
    assert!(err.to_string().contains("../../../etc"), "{err}");
    assert!(sys.calls().is_empty(), "{}", dump(&sys.calls()));

    // Absolute and climbing symlinks in the rootfs resolve inside it.
    let sys = fake()
        .symlink_at(format!("{R}/var/run"), "/run")
        .symlink_at(format!("{R}/run/escape"), "../../../../host-etc")
        .symlink_at(format!("{R}/mnt"), "/etc/..//media/./x");
    let root = Path::new(R);
    assert_eq!(
        resolve_in_root(&sys, root, "var/run/lock").unwrap(),
        p(&format!("{R}/run/lock"))
    );
    assert_eq!(
        resolve_in_root(&sys, root, "/var/run/escape/shadow").unwrap(),
        p(&format!("{R}/host-etc/shadow"))
    );
    assert_eq!(
        resolve_in_root(&sys, root, "mnt/y").unwrap(),
        p(&format!("{R}/media/x/y"))
    );
    let e = entry(
        "tmpfs",
        "var/run/escape",
        "tmpfs",
        &[],
        Some(CreateKind::Dir),
    );
    mount_entry(&sys, root, &e).unwrap();
    for c in sys.calls() {
        let path = match &c {
            Call::Mkdir { path, .. } => path.clone(),
            Call::Mount { target, .. } => target.clone(),
            other => panic!("unexpected {other}"),
        };
        assert!(path.starts_with(R), "{c} outside the rootfs");
    }
    assert!(mount_of(&sys.calls(), &format!("{R}/host-etc"), Some("tmpfs")).is_some());

    // Symlink loops end with an error.
    let sys = fake()
        .symlink_at(format!("{R}/a"), "b")
        .symlink_at(format!("{R}/b"), "/a");
    let err = resolve_in_root(&sys, root, "a/c").unwrap_err();
    assert!(matches!(err, ChildError::SymlinkLoop { .. }), "{err}");
}

#[test]
fn relative_source_is_resolved_in_the_rootfs() {
    let sys = fake().symlink_at(format!("{R}/data"), "/srv/real");
    let mut e = entry("data/sub", "mnt", "none", &["rbind", "rslave"], None);
    e.relative = true;
    mount_entry(&sys, Path::new(R), &e).unwrap();
    let calls = sys.calls();
    assert_eq!(
        calls[0],
        Call::Mount {
            source: Some(p(&format!("{R}/srv/real/sub"))),
            target: p(&format!("{R}/mnt")),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None
        }
    );
    assert_eq!(
        calls[1],
        Call::Mount {
            source: None,
            target: p(&format!("{R}/mnt")),
            fstype: None,
            flags: MsFlags::MS_SLAVE | MsFlags::MS_REC,
            data: None
        }
    );
}

#[test]
fn mount_options_split_into_flags_propagation_and_data() {
    let o = parse_mount_options(&[
        "bind,ro", "nosuid", "nodev", "size=10m", "mode=755", "rslave", "defaults", "nofail",
    ]);
    assert_eq!(
        o.flags,
        MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
    );
    assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
    assert_eq!(o.data_string().as_deref(), Some("size=10m,mode=755"));
    let o = parse_mount_options(&["ro", "rw", "rbind", "noexec", "exec", "private"]);
    assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    assert_eq!(o.propagation, MsFlags::MS_PRIVATE);
    assert_eq!(o.data_string(), None);
}

#[test]
fn host_cgroup_hierarchies_are_read_from_mountinfo() {
    let (v1, v2) = cgroup_hierarchies(HOST_MOUNTINFO);
    let got: Vec<(&str, &str)> = v1
        .iter()
        .map(|h| (h.dir.as_str(), h.options.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cpu", "cpu"),
            ("memory", "memory"),
            ("systemd", "name=systemd")
        ]
    );
    assert_eq!(v2.as_deref(), Some("/sys/fs/cgroup/unified"));
    let comounted = "50 1 0:40 / /cg/x rw - cgroup cgroup rw,cpu,cpuacct\n51 1 0:40 / /cg/y rw - cgroup cgroup rw,cpu,cpuacct\n";
    let (v1, v2) = cgroup_hierarchies(comounted);
    assert_eq!(
        v1,
        vec![CgroupHierarchy {
            dir: "cpu,cpuacct".into(),
            options: "cpu,cpuacct".into()
        }]
    );
    assert_eq!(v2, None);
}

#[test]
fn cgroup_ro_and_cgroup2_modes() {
    let sys = fake();
    mount_auto(
        &sys,
        Path::new(R),
        &MountAuto {
            cgroup: Some(CgroupMountMode::Ro),
            ..Default::default()
        },
        true,
        HOST_MOUNTINFO,
    )
    .unwrap();
    let calls = sys.calls();
    for dir in ["cpu", "memory", "systemd"] {
        let i = mount_of(&calls, &format!("{R}/sys/fs/cgroup/{dir}"), Some("cgroup")).unwrap();
        let Call::Mount { flags, .. } = &calls[i] else {
            unreachable!()
        };
        assert!(
            flags.contains(MsFlags::MS_RDONLY),
            "{dir} must be read-only"
        );
    }
    let sys = fake();
    mount_auto(
        &sys,
        Path::new(R),
        &MountAuto {
            cgroup: Some(CgroupMountMode::Cgroup2),
            ..Default::default()
        },
        true,
        HOST_MOUNTINFO,
    )
    .unwrap();
    let calls = sys.calls();
    assert!(
        mount_of(&calls, &format!("{R}/sys/fs/cgroup"), Some("cgroup2")).is_some(),
        "{}",
        dump(&calls)
    );
    assert!(!calls.iter().any(
        |c| matches!(c, Call::Mount { fstype: Some(f), .. } if f == "cgroup" || f == "tmpfs")
    ));
}

#[test]
fn keep_list_drops_everything_else_and_non_root_init_resets_pdeathsig() {
    let mut s = spec();
    s.caps.keep = Some(vec![0, 21]);
    s.init.uid = 1000;
    s.init.gid = 1000;
    s.init.groups = vec![5, 100];
    s.init.cwd = "/home/u".into();
    let sys = fake().last_cap(40);
    run_full(&sys, &s, &ctx(true, 0));
    let calls = sys.calls();
    let dropped: Vec<u32> = calls
        .iter()
        .filter_map(|c| match c {
            Call::CapBsetDrop(n) => Some(*n),
            _ => None,
        })
        .collect();
    let want: Vec<u32> = (1..=40).filter(|c| *c != 21).collect();
    assert_eq!(dropped, want);
    let uid = pos(&calls, &Call::Setuid(1000));
    assert!(pos(&calls, &Call::Setgroups(vec![5, 100])) < uid);
    let again = calls
        .iter()
        .rposition(|c| *c == Call::SetPdeathsigKill)
        .unwrap();
    assert!(again > uid, "pdeathsig set again after the uid change");
    assert!(pos(&calls, &Call::Chdir(p("/home/u"))) > uid);
    assert!(!calls.contains(&Call::SetNoNewPrivs));
    assert_eq!(
        capabilities_to_drop(
            &CapsSpec {
                drop: vec![3, 99, 3],
                keep: None
            },
            40
        ),
        vec![3]
    );
}

#[test]
fn no_console_means_dev_null_stdio_and_no_tty_dir_binds_directly() {
    let sys = fake();
    let mut s = spec();
    s.autodev = true;
    run_full(&sys, &s, &ctx(false, 1));
    let calls = sys.calls();
    assert!(bind_of(&calls, &format!("{R}/dev/console")).is_none());
    let c = ctx(false, 1);
    let _ = c;
    assert!(
        bind_of(&calls, &format!("{R}/dev/tty1")).is_some(),
        "{}",
        dump(&calls)
    );
    let open = pos(&calls, &Call::OpenRdwr(p("/dev/null")));
    let cd = pos(&calls, &Call::Chdir(p("/")));
    assert!(open > cd, "container's /dev/null, after pivot_root");
    for t in 0..3 {
        pos(&calls, &Call::Dup2 { fd: 99, target: t });
    }
    assert!(!calls
        .iter()
        .any(|c| matches!(c, Call::SetControllingTty(_))));
}

#[test]
fn mknod_denied_falls_back_to_binding_host_nodes() {
    let sys = fake().fail_when(|c| matches!(c, Call::Mknod { .. }), Errno::EPERM);
    let mut s = spec();
    s.autodev = true;
    run_full(&sys, &s, &ctx(true, 0));
    let calls = sys.calls();
    for (name, _, _) in DEVICES {
        let t = format!("{R}/dev/{name}");
        let (b, src) = bind_of(&calls, &t).unwrap_or_else(|| panic!("{name}\n{}", dump(&calls)));
        assert_eq!(src, Some(p(&format!("/dev/{name}"))));
        assert!(
            pos(
                &calls,
                &Call::CreateFile {
                    path: p(&t),
                    mode: 0o666
                }
            ) < b
        );
    }
    // umask restored after the nodes
    let masks: Vec<u32> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Umask(m) => Some(*m),
            _ => None,
        })
        .collect();
    assert_eq!(masks, vec![0, 0o022]);
}

#[test]
fn static_dev_gets_devpts_and_a_ptmx() {
    let sys = fake().fail_when(
        |c| matches!(c, Call::Mount { target, flags, .. } if target.ends_with("dev/ptmx") && flags.contains(MsFlags::MS_BIND)),
        Errno::ENOENT,
    );
    let s = spec(); // autodev off
    run_full(&sys, &s, &ctx(true, 0));
    let calls = sys.calls();
    assert!(mount_of(&calls, &format!("{R}/dev"), Some("tmpfs")).is_none());
    assert!(!calls.iter().any(|c| matches!(c, Call::Mknod { .. })));
    assert!(mount_of(&calls, &format!("{R}/dev/pts"), Some("devpts")).is_some());
    pos(
        &calls,
        &Call::Symlink {
            target: p("pts/ptmx"),
            link: p(&format!("{R}/dev/ptmx")),
        },
    );
    assert!(bind_of(&calls, &format!("{R}/dev/console")).is_some());
}

#[test]
fn bad_sysctl_and_proc_keys_are_rejected_before_writing() {
    for key in ["../../etc/passwd", "net..ipv4", "kernel/x", ""] {
        assert!(
            matches!(sysctl_path(key), Err(ChildError::Invalid { .. })),
            "{key}"
        );
    }
    assert_eq!(
        sysctl_path("kernel.shmmax").unwrap(),
        p("/proc/sys/kernel/shmmax")
    );
    assert!(proc_self_path("../1/oom_score_adj").is_err());
    assert_eq!(
        proc_self_path("oom_score_adj").unwrap(),
        p("/proc/self/oom_score_adj")
    );
}

#[test]
fn init_without_slash_is_searched_in_the_env_path() {
    let sys = fake();
    let init = InitSpec {
        argv: vec!["sh".into(), "-c".into(), "true".into()],
        uid: 0,
        gid: 0,
        groups: vec![],
        cwd: "/".into(),
        env: vec![("PATH".into(), "/bin:/usr/bin".into())],
    };
    let err = match exec_init(&sys, &init) {
        Ok(n) => match n {},
        Err(e) => e,
    };
    let paths: Vec<String> = sys
        .calls()
        .iter()
        .filter_map(|c| match c {
            Call::Execve { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, vec!["/bin/sh", "/usr/bin/sh"]);
    assert_eq!(
        err.to_string(),
        "exec sh: No such file or directory (ENOENT)"
    );
}

#[test]
fn sharing_the_host_network_keeps_its_net_sysctls_read_only() {
    let sys = fake();
    let auto = MountAuto {
        proc: Some(ProcMode::Mixed),
        ..Default::default()
    };
    mount_auto(&sys, Path::new(R), &auto, false, "").unwrap();
    let calls = sys.calls();
    assert!(bind_of(&calls, &format!("{R}/proc/sys")).is_some());
    assert!(
        bind_of(&calls, &format!("{R}/proc/sys/net")).is_none(),
        "{}",
        dump(&calls)
    );
}

#[test]
fn targets_spelled_with_the_rootfs_path_are_inside_the_rootfs() {
    let sys = fake();
    let e = entry(
        "/lib",
        format!("{R}/lib").trim_start_matches('/'),
        "none",
        &["ro", "bind"],
        None,
    );
    mount_entry(&sys, Path::new(R), &e).unwrap();
    assert!(
        bind_of(&sys.calls(), &format!("{R}/lib")).is_some(),
        "{}",
        dump(&sys.calls())
    );
}

#[test]
fn a_pty_path_naming_another_device_is_refused() {
    let sys = fake().different_files();
    let mut s = spec();
    s.autodev = true;
    let err = run_full(&sys, &s, &ctx(true, 0));
    assert!(
        matches!(
            err,
            ChildError::Invalid {
                what: "pty descriptor",
                ..
            }
        ),
        "{err}"
    );
    assert!(!sys
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Mount { target, .. } if target.ends_with("dev/console"))));
}

#[test]
fn overlay_rootfs_is_mounted_in_place_of_the_self_bind() {
    let sys = fake();
    let mut s = full_spec();
    s.rootfs.overlay = Some(crate::spec::OverlaySpec {
        lower: "/lower".into(),
        upper: "/ct/delta0".into(),
        work: "/ct/olwork".into(),
    });
    let _ = run_full(&sys, &s, &ctx(true, 2));
    let calls = sys.calls();
    let d = dump(&calls);
    assert_eq!(
        calls[3],
        Call::Mount {
            source: Some(p("overlay")),
            target: p(R),
            fstype: Some("overlay".into()),
            flags: MsFlags::empty(),
            data: Some("lowerdir=/lower,upperdir=/ct/delta0,workdir=/ct/olwork".into())
        },
        "{d}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Mount { source: Some(src), flags, .. }
            if src == Path::new(R) && flags.contains(MsFlags::MS_BIND))),
        "no self-bind of the rootfs with an overlay: {d}"
    );
}

#[test]
fn the_monitors_affinity_comes_back_after_the_release_before_the_joins() {
    let joins = vec![p("/sys/fs/cgroup/cpuset/lxrs.payload.c1/tasks")];
    let sys = fake().release_joins(joins.clone());
    let mut c = ctx(false, 0);
    let mut mask = nix::sched::CpuSet::new();
    mask.set(0).unwrap();
    mask.set(2).unwrap();
    c.affinity = Some(mask);
    run_full(&sys, &full_spec(), &c);
    let calls = sys.calls();
    let d = dump(&calls);
    let release = pos(&calls, &Call::ReadRelease(c.sync_read.as_raw_fd()));
    // Not before the release: the monitor's nudge may come after anything earlier.
    assert_eq!(calls[release + 1], Call::SetAffinity(vec![0, 2]), "{d}");
    assert_eq!(
        calls[release + 2],
        Call::WriteFile {
            path: joins[0].clone(),
            data: "0".into(),
        },
        "{d}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Call::SetAffinity(_)))
            .count(),
        1,
        "{d}"
    );
}

#[test]
fn the_child_joins_its_cgroups_itself_between_release_and_cgroup_namespace() {
    let joins = vec![
        p("/sys/fs/cgroup/memory/lxrs.payload.c1/tasks"),
        p("/sys/fs/cgroup/cpu/lxrs.payload.c1/tasks"),
    ];
    let sys = fake().release_joins(joins.clone());
    let c = ctx(false, 0);
    run_full(&sys, &full_spec(), &c);
    let calls = sys.calls();
    let d = dump(&calls);
    let release = pos(&calls, &Call::ReadRelease(c.sync_read.as_raw_fd()));
    let write = |path: &PathBuf| Call::WriteFile {
        path: path.clone(),
        data: "0".into(),
    };
    // In the order given, right after the release, before the cgroup namespace is made.
    assert_eq!(calls[release + 1], write(&joins[0]), "{d}");
    assert_eq!(calls[release + 2], write(&joins[1]), "{d}");
    assert_eq!(
        calls[release + 3],
        Call::Unshare(CloneFlags::CLONE_NEWCGROUP),
        "{d}"
    );
}

#[test]
fn a_failed_cgroup_join_names_the_file_and_stops_the_start() {
    let file = p("/sys/fs/cgroup/memory/lxrs.payload.c1/tasks");
    let f2 = file.clone();
    let sys = fake().release_joins(vec![file.clone()]).fail_when(
        move |c| matches!(c, Call::WriteFile { path, .. } if *path == f2),
        Errno::EACCES,
    );
    let c = ctx(false, 0);
    let err = run_full(&sys, &full_spec(), &c).to_string();
    assert!(
        err.contains("join the cgroup") && err.contains(&file.display().to_string()),
        "{err}"
    );
    let calls = sys.calls();
    assert!(
        matches!(calls.last(), Some(Call::WriteFile { path, .. }) if *path == file),
        "{}",
        dump(&calls)
    );
}

#[test]
fn release_messages_round_trip_through_a_pipe() {
    use std::io::Write;
    let joins = vec![p("/sys/fs/cgroup/a b/tasks"), p("/x/tasks")];
    for list in [Vec::new(), joins] {
        let (r, w) = pipe();
        std::fs::File::from(w)
            .write_all(&release_message(&list))
            .unwrap();
        assert_eq!(read_release_from(r.as_raw_fd()), Ok(Some(list)));
    }
    // EOF first: the monitor is gone.
    let (r, w) = pipe();
    drop(w);
    assert_eq!(read_release_from(r.as_raw_fd()), Ok(None));
    // A cut message or a wrong first byte is a protocol error, not a release.
    let msg = release_message(&[p("/x/tasks")]);
    for bad in [&msg[..3], &msg[..msg.len() - 1], b"\x07\0\0\0\0".as_slice()] {
        let (r, w) = pipe();
        std::fs::File::from(w).write_all(bad).unwrap();
        assert_eq!(
            read_release_from(r.as_raw_fd()),
            Err(Errno::EPROTO),
            "{bad:?}"
        );
    }
}
