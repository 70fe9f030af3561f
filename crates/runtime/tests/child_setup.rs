//! Root integration tests of the container side of a start (`lxrs_runtime::child`): a tiny
//! busybox rootfs, a real child in new namespaces, observed from the outside.
//!
//! How the child is created: DEVELOPERS.md forbids forking Rust code out of a process with
//! threads alive, and the libtest harness always has at least two. So each test re-executes
//! this test binary with `LXRS_CHILD_TEST_SPEC=<spec.json>`; a constructor in `.init_array`
//! sees the variable before libtest's `main` (and any thread) exists and plays a minimal,
//! single-threaded monitor: ptys and pipes, `clone(clone_flags(spec))` running
//! `child::run`, the release byte, then it copies the console to its stdout and the error
//! pipe to its stderr and exits with the container's status. The test checks those, and the
//! host's mount table afterwards.

use lxrs_runtime::child::{self, ChildContext};
use lxrs_runtime::spec::*;
use nix::mount::{MntFlags, MsFlags};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SPEC_ENV: &str = "LXRS_CHILD_TEST_SPEC";
/// Helper closes the sync pipe without releasing the child (the monitor "died").
const NO_RELEASE_ENV: &str = "LXRS_CHILD_TEST_NO_RELEASE";

// ---------------------------------------------------------------------------------------
// The helper (mini monitor), run before main in the re-executed test binary.

#[used]
#[link_section = ".init_array"]
static HELPER_CTOR: extern "C" fn() = helper_ctor;

extern "C" fn helper_ctor() {
    let Some(path) = std::env::var_os(SPEC_ENV) else {
        return;
    };
    let code = match std::panic::catch_unwind(|| helper_main(Path::new(&path))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("test helper: {e}");
            2
        }
        Err(_) => 2,
    };
    let _ = std::io::stdout().flush();
    // SAFETY: ends this helper process before libtest's main ever runs; stdout was flushed
    // and stderr is unbuffered.
    unsafe { libc::_exit(code) }
}

fn helper_main(spec_path: &Path) -> Result<i32, String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    let e = |what: &str| {
        let what = what.to_string();
        move |err: nix::Error| format!("{what}: {err}")
    };
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(e("pdeathsig"))?;
    let text = std::fs::read(spec_path).map_err(|err| format!("read spec: {err}"))?;
    let spec: StartSpec = serde_json::from_slice(&text).map_err(|err| format!("spec: {err}"))?;

    let pty = || -> Result<(OwnedFd, OwnedFd), String> {
        let p = nix::pty::openpty(None, None).map_err(e("openpty"))?;
        for fd in [&p.master, &p.slave] {
            nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(fd),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(e("cloexec"))?;
        }
        Ok((p.master, p.slave))
    };
    let console = if spec.console.enabled {
        Some(pty()?)
    } else {
        None
    };
    let mut tty_masters = Vec::new();
    let mut tty_slaves = Vec::new();
    for _ in 0..spec.tty.count {
        let (m, s) = pty()?;
        tty_masters.push(m);
        tty_slaves.push(s);
    }
    let (console_master, console_slave) = match console {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let (sync_read, sync_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(e("pipe"))?;
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(e("pipe"))?;
    let mut ctx = Some(ChildContext {
        sync_read,
        err_write,
        console: console_slave,
        ttys: tty_slaves,
        affinity: None,
    });
    let child_spec = spec.clone();
    let mut stack = vec![0u8; 4 << 20];
    let cb = Box::new(move || -> isize {
        child::run(&child_spec, ctx.take().expect("the child runs once"))
    });
    // SAFETY: this process is single-threaded (we run before main); without CLONE_VM the
    // child gets its own copy of memory and runs `cb` on `stack`, which outlives the call.
    let pid = unsafe {
        nix::sched::clone(
            cb,
            &mut stack,
            child::clone_flags(&spec),
            Some(libc::SIGCHLD),
        )
    }
    .map_err(e("clone"))?;
    // (`cb`, holding our copies of the child's ends, was dropped by clone: closed here.)

    let mut sync = std::fs::File::from(sync_write);
    // Before main, Rust's runtime has not ignored SIGPIPE yet: a child that already exited
    // must give EPIPE here, not kill the helper. (The child was cloned before this.)
    // SAFETY: setting a signal disposition to SIG_IGN involves no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if std::env::var_os(NO_RELEASE_ENV).is_none() {
        match sync.write_all(&lxrs_runtime::child::release_message(&[])) {
            Ok(()) => {}
            // The child gave up in its early setup (before the release), as the monitor
            // sees it too: its reason is on the error pipe.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(err) => return Err(format!("release: {err}")),
        }
    }
    drop(sync);

    let mut err = String::new();
    std::fs::File::from(err_read)
        .read_to_string(&mut err)
        .map_err(|er| format!("read error pipe: {er}"))?;
    let mut out = Vec::new();
    if let Some(m) = console_master {
        let mut m = std::fs::File::from(m);
        let mut buf = [0u8; 4096];
        loop {
            match m.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(er) if er.raw_os_error() == Some(libc::EIO) => break, // slave side closed
                Err(er) if er.kind() == std::io::ErrorKind::Interrupted => {}
                Err(er) => return Err(format!("read console: {er}")),
            }
        }
    }
    drop(tty_masters);
    let status = loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(e("waitpid"))?,
        }
    };
    std::io::stdout()
        .write_all(&out)
        .map_err(|er| er.to_string())?;
    eprint!("{err}");
    Ok(match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => return Err(format!("unexpected wait status {other:?}")),
    })
}

// ---------------------------------------------------------------------------------------
// Test fixtures.

/// A temp dir holding `rootfs/` (busybox) and `outside/`, made a *shared* mount on the host
/// so that any mount the container let propagate back would show up in the host's table.
struct Fixture {
    _shared: SharedMount,
    dir: tempfile::TempDir,
}

struct SharedMount(PathBuf);

impl Drop for SharedMount {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, MntFlags::MNT_DETACH) {
            eprintln!("cleanup: unmount {}: {e}", self.0.display());
        }
    }
}

fn busybox_applets() -> Vec<String> {
    let out = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("/bin/busybox (apt-get install busybox-static)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

impl Fixture {
    fn new() -> Fixture {
        assert!(nix::unistd::geteuid().is_root(), "these tests need root");
        let dir = tempfile::Builder::new()
            .prefix("lxrs-child-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "mnt", "srv"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in busybox_applets() {
            if a != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
            }
        }
        let p = dir.path();
        nix::mount::mount(Some(p), p, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        let shared = SharedMount(p.to_path_buf());
        nix::mount::mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        Fixture {
            _shared: shared,
            dir,
        }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn spec(&self, script: &str) -> StartSpec {
        let mut s = StartSpec::new("ct", self.dir.path());
        s.config_path = self.dir.path().join("config");
        s.rootfs.path = self.rootfs();
        s.init.argv = vec!["/bin/sh".into(), "-c".into(), script.into()];
        s.init.env.push(("PATH".into(), "/bin".into()));
        s.console.buffer_size = 0;
        s
    }

    /// Start the container through the helper; (console output, error pipe, exit code).
    fn start(&self, spec: &StartSpec, release: bool) -> (String, String, i32) {
        let spec_path = self.dir.path().join("spec.json");
        std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap()).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(SPEC_ENV, &spec_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !release {
            cmd.env(NO_RELEASE_ENV, "1");
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill(); // pdeathsig takes the container with it
                let _ = child.wait();
                panic!("container did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (console, err, out.status.code().unwrap_or(-1))
    }

    /// Mount points at or below the fixture dir in the host's mount table, other than the
    /// fixture's own shared bind.
    fn host_mounts_below(&self) -> Vec<String> {
        let me = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|mp| mp.starts_with(&me) && *mp != me)
            .collect()
    }
}

fn line<'a>(console: &'a str, key: &str) -> &'a str {
    console
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= line in console output:\n{console}"))
}

fn host_capbnd() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = s
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_TIME: u32 = 25;

// ---------------------------------------------------------------------------------------

#[test]
fn init_runs_as_pid_1_in_the_configured_container() {
    let fx = Fixture::new();
    let host_src = fx.dir.path().join("outside");
    std::fs::write(host_src.join("from-host"), "hello from the host\n").unwrap();
    let script = r#"
        echo "host=$(hostname)"
        echo "pid=$$"
        echo "cmdline=$(head -c 10 /proc/1/cmdline | tr '\0' ' ')"
        echo "environ=$(tr '\0' ' ' < /proc/1/environ)"
        echo "dev=$(ls /dev | tr '\n' ' ')"
        echo "lxc=$(ls /dev/lxc | tr '\n' ' ')"
        echo "console=$(readlink /dev/console)"
        echo "ptmx=$(readlink /dev/ptmx)"
        echo "null=$(stat -c '%t:%T %a' /dev/null)"
        echo "capbnd=$(grep CapBnd /proc/self/status | tr -d ' \t' | cut -d: -f2)"
        touch /ro-test 2>/dev/null && echo rootfs=rw || echo rootfs=ro
        echo "scratch=$(grep ' /mnt/scratch ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1)"
        echo "bind=$(cat /srv/data/from-host)"
        touch /srv/data/x 2>/dev/null && echo bindw=rw || echo bindw=ro
        echo "forward=$(cat /proc/sys/net/ipv4/ip_forward)"
        (echo ct > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=rw || echo procsys=ro
        (echo 0 > /proc/sys/net/ipv4/ip_forward) 2>/dev/null && echo procsysnet=rw || echo procsysnet=ro
        (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=rw || echo sysrq=ro
        echo "sysfs=$(awk '$5 == "/sys" { split($6, o, ","); print o[1] }' /proc/self/mountinfo)"
        echo "net=$(ls /sys/class/net | tr '\n' ' ')"
        echo "cgroups=$(ls /sys/fs/cgroup | tr '\n' ' ')"
        echo "cgself=$(grep memory /proc/self/cgroup)"
        echo "pts=$(grep ' /dev/pts ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f3)"
        test -t 0 && echo stdin=tty || echo stdin=notty
        echo "nofile=$(ulimit -n)"
        echo "oom=$(cat /proc/self/oom_score_adj)"
    "#;
    let mut spec = fx.spec(script);
    spec.hostname = "lxrs-ct1".into();
    spec.rootfs.readonly = true;
    spec.rootfs.options = vec!["ro".into()];
    spec.mount_auto = MountAuto {
        proc: Some(ProcMode::Mixed),
        sys: Some(SysMode::Mixed),
        cgroup: Some(CgroupMountMode::Mixed),
    };
    spec.tty = TtySpec {
        count: 2,
        dir: Some("lxc".into()),
        pty_max: 64,
    };
    spec.caps.drop = vec![CAP_SYS_MODULE, CAP_SYS_TIME];
    spec.sysctls = vec![("net.ipv4.ip_forward".into(), "1".into())];
    spec.proc_writes = vec![("oom_score_adj".into(), "100".into())];
    spec.prlimits = vec![Prlimit {
        resource: libc::RLIMIT_NOFILE,
        soft: Some(512),
        hard: Some(1024),
    }];
    spec.mounts = vec![
        MountEntry {
            source: "tmpfs".into(),
            target: "mnt/scratch".into(),
            fstype: "tmpfs".into(),
            options: vec!["size=1m".into()],
            create: Some(CreateKind::Dir),
            optional: false,
            relative: false,
        },
        MountEntry {
            source: host_src.to_string_lossy().into(),
            target: "srv/data".into(),
            fstype: "none".into(),
            options: vec!["bind".into(), "ro".into()],
            create: Some(CreateKind::Dir),
            optional: false,
            relative: false,
        },
        MountEntry {
            source: "/does/not/exist".into(),
            target: "mnt/optional".into(),
            fstype: "none".into(),
            options: vec!["bind".into()],
            create: None,
            optional: true,
            relative: false,
        },
    ];

    let (console, err, code) = fx.start(&spec, true);
    assert_eq!((code, err.as_str()), (0, ""), "console:\n{console}");
    assert_eq!(line(&console, "host"), "lxrs-ct1");
    assert_eq!(line(&console, "pid"), "1");
    assert_eq!(line(&console, "cmdline"), "/bin/sh -c");
    assert_eq!(
        line(&console, "environ").trim_end(),
        "container=lxc PATH=/bin"
    );
    assert_eq!(
        line(&console, "dev").trim_end(),
        "console fd full lxc mqueue null ptmx pts random shm stderr stdin stdout tty tty1 tty2 urandom zero"
    );
    assert_eq!(line(&console, "lxc").trim_end(), "console tty1 tty2");
    assert_eq!(line(&console, "console"), "lxc/console");
    assert_eq!(line(&console, "ptmx"), "pts/ptmx");
    assert_eq!(line(&console, "null"), "1:3 666");
    let want = host_capbnd() & !(1 << CAP_SYS_MODULE) & !(1 << CAP_SYS_TIME);
    assert_eq!(line(&console, "capbnd"), format!("{want:016x}"));
    assert_eq!(line(&console, "rootfs"), "ro");
    assert_eq!(line(&console, "scratch"), "tmpfs");
    assert_eq!(line(&console, "bind"), "hello from the host");
    assert_eq!(line(&console, "bindw"), "ro");
    assert_eq!(
        line(&console, "forward"),
        "1",
        "sysctl applied in the container's netns"
    );
    assert_eq!(line(&console, "procsys"), "ro");
    assert_eq!(
        line(&console, "procsysnet"),
        "rw",
        "own netns: net sysctls stay writable"
    );
    assert_eq!(line(&console, "sysrq"), "ro");
    assert_eq!(line(&console, "sysfs"), "ro");
    assert_eq!(
        line(&console, "net").trim_end(),
        "lo",
        "sysfs shows the container's netns"
    );
    let cgroups = line(&console, "cgroups");
    for h in ["memory", "unified"] {
        assert!(
            cgroups.split(' ').any(|c| c == h),
            "{h} not in /sys/fs/cgroup: {cgroups}"
        );
    }
    assert!(
        line(&console, "cgself").ends_with(":/"),
        "cgroup namespace root"
    );
    let pts = line(&console, "pts");
    assert!(
        pts.contains("ptmxmode=666") && pts.contains("max=64"),
        "{pts}"
    );
    assert_eq!(line(&console, "stdin"), "tty");
    assert_eq!(line(&console, "nofile"), "512");
    assert_eq!(line(&console, "oom"), "100");

    assert_eq!(
        fx.host_mounts_below(),
        Vec::<String>::new(),
        "mounts leaked to the host"
    );
    assert!(!fx.rootfs().join("ro-test").exists());
    assert!(!host_src.join("x").exists());
}

#[test]
fn missing_init_is_reported_on_the_error_pipe() {
    let fx = Fixture::new();
    let mut spec = fx.spec("");
    spec.init.argv = vec!["/sbin/init".into()];
    spec.mount_auto.proc = Some(ProcMode::Mixed);
    let (console, err, code) = fx.start(&spec, true);
    assert_eq!(err, "exec /sbin/init: No such file or directory (ENOENT)");
    assert_eq!(code, 1);
    assert_eq!(console, "");
    assert_eq!(fx.host_mounts_below(), Vec::<String>::new());
}

#[test]
fn a_failing_mount_entry_names_its_target() {
    let fx = Fixture::new();
    let mut spec = fx.spec("echo should-not-run");
    spec.mounts = vec![MountEntry {
        source: "/does/not/exist".into(),
        target: "mnt".into(),
        fstype: "none".into(),
        options: vec!["bind".into()],
        create: None,
        optional: false,
        relative: false,
    }];
    let (console, err, code) = fx.start(&spec, true);
    let want = format!(
        "mount /does/not/exist (bind) on {}/mnt: No such file or directory (ENOENT)",
        fx.rootfs().display()
    );
    assert_eq!((err.as_str(), code), (want.as_str(), 1));
    assert!(!console.contains("should-not-run"));
    assert_eq!(fx.host_mounts_below(), Vec::<String>::new());
}

#[test]
fn a_symlink_in_the_rootfs_cannot_point_a_mount_at_the_host() {
    let fx = Fixture::new();
    let outside = fx.dir.path().join("outside");
    // An absolute symlink to a host path: the kernel would follow it out of the rootfs.
    std::os::unix::fs::symlink(&outside, fx.rootfs().join("evil")).unwrap();
    let mut spec = fx.spec(
        r#"echo marker > /evil/marker && echo "fs=$(grep " $(readlink /evil) " /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1)""#,
    );
    spec.mount_auto.proc = Some(ProcMode::Rw);
    spec.mounts = vec![MountEntry {
        source: "tmpfs".into(),
        target: "evil".into(),
        fstype: "tmpfs".into(),
        options: vec![],
        create: Some(CreateKind::Dir),
        optional: false,
        relative: false,
    }];
    let (console, err, code) = fx.start(&spec, true);
    assert_eq!((code, err.as_str()), (0, ""), "console:\n{console}");
    assert_eq!(
        line(&console, "fs"),
        "tmpfs",
        "mounted inside the container"
    );
    assert!(
        !outside.join("marker").exists(),
        "the host directory was written to"
    );
    assert!(fx
        .rootfs()
        .join(outside.strip_prefix("/").unwrap())
        .is_dir());
    assert_eq!(fx.host_mounts_below(), Vec::<String>::new());
}

#[test]
fn without_a_release_from_the_monitor_nothing_happens() {
    let fx = Fixture::new();
    let mut spec = fx.spec("echo ran");
    spec.mounts = vec![MountEntry {
        source: "tmpfs".into(),
        target: "mnt".into(),
        fstype: "tmpfs".into(),
        options: vec![],
        create: None,
        optional: false,
        relative: false,
    }];
    let (console, err, code) = fx.start(&spec, false);
    assert_eq!(
        (console.as_str(), err.as_str(), code),
        ("", "", 1),
        "exits silently"
    );
    assert_eq!(fx.host_mounts_below(), Vec::<String>::new());
}

#[test]
fn unprivileged_init_gets_its_ids_caps_personality_and_cwd() {
    let fx = Fixture::new();
    let script = r#"
        echo "ids=$(id -u) $(id -g) $(id -G)"
        echo "capbnd=$(grep CapBnd /proc/self/status | tr -d ' \t' | cut -d: -f2)"
        echo "capeff=$(grep CapEff /proc/self/status | tr -d ' \t' | cut -d: -f2)"
        echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d ' \t' | cut -d: -f2)"
        echo "arch=$(uname -m)"
        echo "cwd=$(pwd)"
    "#;
    let mut spec = fx.spec(script);
    spec.mount_auto.proc = Some(ProcMode::Rw);
    spec.init.uid = 1000;
    spec.init.gid = 1001;
    spec.init.groups = vec![5, 100];
    spec.init.cwd = "/tmp".into();
    const CAP_NET_BIND_SERVICE: u32 = 10;
    spec.caps.keep = Some(vec![CAP_NET_BIND_SERVICE]);
    spec.no_new_privs = true;
    spec.personality = Some(Personality::Linux32);
    let (console, err, code) = fx.start(&spec, true);
    assert_eq!((code, err.as_str()), (0, ""), "console:\n{console}");
    // id -G lists the primary gid first, then the supplementary groups
    assert_eq!(line(&console, "ids"), "1000 1001 1001 5 100");
    assert_eq!(
        line(&console, "capbnd"),
        format!("{:016x}", 1u64 << CAP_NET_BIND_SERVICE)
    );
    assert_eq!(line(&console, "capeff"), "0000000000000000");
    assert_eq!(line(&console, "nnp"), "1");
    assert_eq!(line(&console, "arch"), "i686");
    assert_eq!(line(&console, "cwd"), "/tmp");
    assert_eq!(fx.host_mounts_below(), Vec::<String>::new());
}
