//! Shared helpers of the lifecycle integration tests: a throw-away lxcpath and run directory
//! with a hand-made busybox rootfs, the real `lxrs` binary, and cleanup that leaves nothing.
#![allow(dead_code)]

use lxrs_runtime::host::DefaultHostSetup;
use lxrs_runtime::lifecycle::{self, Info};
use lxrs_runtime::paths::RunDir;
use lxrs_runtime::spec::*;
use lxrs_runtime::state::State;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the lifecycle tests start real containers and must run as root"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} (busybox-static) is needed for the test rootfs: apt-get install busybox-static"
    );
}

/// A temporary lxcpath + run directory; kills every monitor of this lxcpath on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub lxcpath: PathBuf,
    pub rundir: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("lxrs-lc-")
            .tempdir()
            .unwrap();
        let lxcpath = dir.path().join("lxc");
        let rundir = dir.path().join("run");
        std::fs::create_dir_all(&lxcpath).unwrap();
        Env {
            lxcpath: std::fs::canonicalize(&lxcpath).unwrap(),
            rundir,
            dir,
        }
    }

    /// `lxrs -P <lxcpath> ARGS` with the run directory of this env.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lxrs"));
        c.arg("-P")
            .arg(&self.lxcpath)
            .args(args)
            .env("LXRS_RUNDIR", &self.rundir);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self
            .cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run lxrs");
        out
    }

    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.lxcpath.join(name).join("rootfs")
    }

    /// Create `<lxcpath>/<name>/rootfs` with busybox, an inittab and a spec file; returns the
    /// spec path (for `start --spec-json`).
    pub fn container(&self, name: &str, inittab: &str, argv: &[&str]) -> PathBuf {
        let root = self.rootfs(name);
        for d in [
            "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var/log",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "echo", "cat", "sleep", "reboot", "poweroff", "halt", "ls", "touch", "mount",
            "ps", "kill", "true", "hostname",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::os::unix::fs::symlink("/bin/busybox", root.join("sbin/init")).unwrap();
        std::fs::write(root.join("etc/inittab"), inittab).unwrap();
        std::fs::write(self.lxcpath.join(name).join("config"), "# test container\n").unwrap();
        let spec = spec(&self.lxcpath, name, argv);
        let p = self.lxcpath.join(name).join("spec.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        p
    }

    pub fn info(&self, name: &str) -> Info {
        lifecycle::info_in(
            &RunDir::new(&self.rundir),
            &self.lxcpath,
            name,
            &mut DefaultHostSetup,
        )
    }

    pub fn state(&self, name: &str) -> State {
        self.info(name).state
    }

    /// Poll until `f` holds (bounded).
    pub fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn record_path(&self, name: &str) -> PathBuf {
        RunDir::new(&self.rundir).record_path(&self.lxcpath, name)
    }

    pub fn monitor_title(&self, name: &str) -> String {
        format!("[lxrs monitor] {} {name}", self.lxcpath.display())
    }

    /// Pids of processes whose command line is this container's monitor title.
    pub fn monitors(&self, name: &str) -> Vec<i32> {
        let title = self.monitor_title(name);
        procs_with_cmdline(|c| c == format!("{title}\0").as_bytes())
    }

    fn all_monitors(&self) -> Vec<i32> {
        let prefix = format!("[lxrs monitor] {} ", self.lxcpath.display());
        procs_with_cmdline(|c| c.starts_with(prefix.as_bytes()))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Killing a monitor kills its container (init has PDEATHSIG); then the records go.
        for pid in self.all_monitors() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.all_monitors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(rd) = std::fs::read_dir(&self.lxcpath) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let _ = self.info(&name);
            }
        }
    }
}

pub fn procs_with_cmdline(pred: impl Fn(&[u8]) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if pred(&c) {
                out.push(pid);
            }
        }
    }
    out
}

pub fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// A resolved start spec for a busybox container.
pub fn spec(lxcpath: &Path, name: &str, argv: &[&str]) -> StartSpec {
    let mut s = StartSpec::new(name, lxcpath);
    s.init.argv = argv.iter().map(|s| s.to_string()).collect();
    s.init.env.push(("PATH".into(), "/bin:/sbin".into()));
    s.init.env.push(("TERM".into(), "linux".into()));
    s.mount_auto = MountAuto {
        proc: Some(ProcMode::Mixed),
        sys: Some(SysMode::Mixed),
        cgroup: None,
    };
    s.tty.count = 2;
    // busybox init: SIGUSR1 halts, SIGTERM reboots (LXC's busybox template).
    s.signals.halt = libc::SIGUSR1;
    s.signals.reboot = libc::SIGTERM;
    s.log.level = "warn".into();
    s
}

/// A busybox inittab printing `marker` at boot, a shell on the console, and LXC-like
/// halt/reboot handling.
pub fn inittab(marker: &str) -> String {
    format!(
        "::sysinit:/bin/echo {marker}\n::respawn:-/bin/sh\n::ctrlaltdel:/bin/reboot\n::shutdown:/bin/echo lxrs-shutdown\n"
    )
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A process on a new pseudo-terminal (its controlling terminal).
pub struct PtyChild {
    pub child: std::process::Child,
    pub master: OwnedFd,
    pub seen: Vec<u8>,
}

impl PtyChild {
    pub fn spawn(mut cmd: Command) -> PtyChild {
        let pty = nix::pty::openpty(None, None).unwrap();
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            // SAFETY: fcntl on descriptors we own; other tests' children must not inherit them.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: setsid and ioctl are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        PtyChild {
            child,
            master: pty.master,
            seen: Vec::new(),
        }
    }

    /// Read until `marker` appears in the output (all output so far is kept in `seen`).
    pub fn expect(&mut self, marker: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut f = std::fs::File::from(self.master.try_clone().unwrap());
        let mut buf = [0u8; 4096];
        while !text(&self.seen).contains(marker) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {marker:?}; output so far:\n{}",
                text(&self.seen)
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
            if rc <= 0 {
                continue;
            }
            match f.read(&mut buf) {
                Ok(0) | Err(_) => panic!(
                    "pty closed before {marker:?}; output:\n{}",
                    text(&self.seen)
                ),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
            }
        }
    }

    pub fn send(&self, data: &[u8]) {
        nix::unistd::write(&self.master, data).unwrap();
    }

    /// Wait for exit (bounded), draining the pty meanwhile; returns the exit code.
    pub fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Collect the rest of the output.
                loop {
                    let mut p = libc::pollfd {
                        fd: self.master.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    if unsafe { libc::poll(&mut p, 1, 50) } <= 0 {
                        break;
                    }
                    match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                        Ok(n) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit; output:\n{}",
                text(&self.seen)
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut p, 1, 20) } > 0 {
                if let Ok(n) = nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                    self.seen.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
