//! Shared helpers of the cgroup integration tests: a throw-away lxcpath and run directory,
//! busybox containers made by `lxrs create -t busybox -f CONFIG` whose init is a probe script,
//! the real `lxrs` binary run with `LXRS_CGROUP_DRIVER`, and cleanup that leaves no container,
//! monitor or cgroup behind (checked).
#![allow(dead_code)]

use lxrs_cgroup::{Cgroup, CgroupMounts, Driver, Kind};
use lxrs_runtime::cgroups::{CgroupRecord, StatsReader};
use lxrs_runtime::paths::RunDir;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The init of every test container: bumps `/count` every ~20 ms and answers probes: the test
/// writes a path to `/probe`, init tries to open it for reading and writes `OPENED` or the
/// shell's error to `/probe.out`.
pub const PROBE_SCRIPT: &str = r#"
i=0
while :; do
  i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count
  if [ -e /probe ]; then
    p=$(cat /probe); rm -f /probe
    if ( exec 3<"$p" ) 2>/probe.err; then echo OPENED > /probe.tmp; else cat /probe.err > /probe.tmp; fi
    mv /probe.tmp /probe.out
  fi
  sleep 0.02
done
"#;

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the cgroup tests start real containers and must run as root"
    );
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary lxcpath + run directory for one driver. On drop: kill what runs, let `lxrs ls`
/// clean up, and check nothing is left under any cgroup root.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub lxcpath: PathBuf,
    pub rundir: PathBuf,
    pub driver: &'static str,
    names: std::cell::RefCell<Vec<String>>,
}

impl Env {
    pub fn new(driver: &'static str) -> Env {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("lxrs-cg-")
            .tempdir()
            .unwrap();
        let lxcpath = dir.path().join("lxc");
        std::fs::create_dir_all(&lxcpath).unwrap();
        Env {
            lxcpath: std::fs::canonicalize(&lxcpath).unwrap(),
            rundir: dir.path().join("run"),
            dir,
            driver,
            names: Default::default(),
        }
    }

    pub fn driver(&self) -> Driver {
        self.driver.parse().unwrap()
    }

    /// A container name unique across processes and tests (cgroup names are host-wide).
    pub fn name(&self, base: &str) -> String {
        let n = format!("{base}-{}-{}", self.driver, std::process::id());
        self.names.borrow_mut().push(n.clone());
        n
    }

    /// `lxrs -P <lxcpath> ARGS` with this env's run directory and cgroup driver.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lxrs"));
        c.arg("-P")
            .arg(&self.lxcpath)
            .args(args)
            .env("LXRS_RUNDIR", &self.rundir)
            .env("LXRS_CGROUP_DRIVER", self.driver)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run lxrs")
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lxrs {args:?} failed ({:?}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// `lxrs create -t busybox -n NAME -f CONFIG` (CONFIG = `lxc.net.0.type = empty`, the
    /// probe script as init, plus `extra`), then `lxrs start -d`. Returns the init pid.
    pub fn start(&self, name: &str, extra: &str) -> i32 {
        let config = self.dir.path().join(format!("{name}.conf"));
        std::fs::write(
            &config,
            format!("lxc.net.0.type = empty\nlxc.init.cmd = /bin/sh /lxrs-cgroup-test.sh\n{extra}"),
        )
        .unwrap();
        self.ok(&[
            "create",
            "-t",
            "busybox",
            "-n",
            name,
            "-f",
            config.to_str().unwrap(),
        ]);
        let root = self.lxcpath.join(name).join("rootfs");
        std::fs::write(root.join("lxrs-cgroup-test.sh"), PROBE_SCRIPT).unwrap();
        self.ok(&["start", "-n", name, "-d"]);
        let init = self.init_pid(name).expect("running after start -d");
        self.wait_for("the probe script to count", 20, || self.count(init) > 0);
        init
    }

    pub fn init_pid(&self, name: &str) -> Option<i32> {
        lxrs_runtime::lifecycle::query(&self.lxcpath, name)
            .ok()
            .flatten()
            .and_then(|i| i.init_pid)
    }

    pub fn state(&self, name: &str) -> String {
        match lxrs_runtime::lifecycle::query(&self.lxcpath, name) {
            Ok(Some(i)) => i.state.to_string(),
            _ => "STOPPED".to_string(),
        }
    }

    pub fn monitor_pid(&self, name: &str) -> Option<i32> {
        lxrs_runtime::lifecycle::query(&self.lxcpath, name)
            .ok()
            .flatten()
            .and_then(|i| i.monitor_pid)
    }

    /// The probe script's counter (0 before it first wrote it).
    pub fn count(&self, init: i32) -> u64 {
        std::fs::read_to_string(format!("/proc/{init}/root/count"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Ask init to open `path` (inside the container); `OPENED` or the shell's error.
    pub fn probe(&self, init: i32, path: &str) -> String {
        let root = PathBuf::from(format!("/proc/{init}/root"));
        let _ = std::fs::remove_file(root.join("probe.out"));
        std::fs::write(root.join("probe.req"), path).unwrap();
        std::fs::rename(root.join("probe.req"), root.join("probe")).unwrap();
        let out = root.join("probe.out");
        self.wait_for(&format!("the probe of {path}"), 20, || out.exists());
        let answer = std::fs::read_to_string(&out).unwrap().trim().to_string();
        std::fs::remove_file(&out).unwrap();
        answer
    }

    /// The container's payload cgroup as recorded by its monitor.
    pub fn payload(&self, name: &str) -> CgroupRecord {
        StatsReader::payload_record(&RunDir::new(&self.rundir), &self.lxcpath, name)
            .expect("a payload cgroup recorded in the state record")
    }

    /// cgroups named after `name` under any root, on either driver.
    pub fn leftover_cgroups(name: &str) -> Vec<String> {
        let mounts = CgroupMounts::host().unwrap();
        let mut out = Vec::new();
        for d in [Driver::V1, Driver::V2] {
            if !mounts.supports(d) {
                continue;
            }
            for k in [Kind::Payload, Kind::Monitor] {
                for n in Cgroup::leftovers(&mounts, d, k, name).unwrap() {
                    out.push(format!("{d}:{n}"));
                }
            }
        }
        out
    }

    /// Poll until `f` holds (bounded).
    pub fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn monitors(&self) -> Vec<i32> {
        let prefix = format!("[lxrs monitor] {} ", self.lxcpath.display());
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                if c.starts_with(prefix.as_bytes()) {
                    out.push(pid);
                }
            }
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in self.names.borrow().iter() {
            let _ = self.run(&["unfreeze", "-n", name]);
            let _ = self.run(&["stop", "-n", name, "-k"]);
        }
        for pid in self.monitors() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.monitors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // `ls` cleans up after dead monitors.
        let _ = self.run(&["ls"]);
        for name in self.names.borrow().iter() {
            let _ = self.run(&["destroy", "-n", name, "-f"]);
        }
        if !std::thread::panicking() {
            for name in self.names.borrow().iter() {
                let left = Env::leftover_cgroups(name);
                assert!(left.is_empty(), "cgroups left behind: {left:?}");
            }
        }
    }
}
