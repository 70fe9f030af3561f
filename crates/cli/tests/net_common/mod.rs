//! Shared helpers of the network integration tests. Each test owns a network namespace that
//! plays "the host" (bridges, the phys device, `lxrs net up` all live there: the machine's own
//! links are never touched), a temporary lxcpath and run directory, and runs the real `lxrs`
//! binary inside that namespace. The guard's Drop stops everything, runs the leftover cleanup,
//! unmounts any netns pin, stops the host network service and drops the namespace.
#![allow(dead_code)]

use lxrs_netns::{LinkOpts, NetNs, Netlink, NsRef, VethSpec};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the network tests create namespaces, links and containers and must run as root"
    );
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A test environment: host namespace + lxcpath + run directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub lxcpath: PathBuf,
    pub rundir: PathBuf,
    pub host: NetNs,
    /// `lxrs net` config files used (for `net down` on drop).
    pub net_configs: Vec<PathBuf>,
}

impl Env {
    pub fn new() -> Env {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("lxrs-net-")
            .tempdir()
            .unwrap();
        let lxcpath = dir.path().join("lxc");
        std::fs::create_dir_all(&lxcpath).unwrap();
        let host = NetNs::create().expect("create the test's host network namespace");
        let env = Env {
            lxcpath: std::fs::canonicalize(&lxcpath).unwrap(),
            rundir: dir.path().join("run"),
            dir,
            host,
            net_configs: Vec::new(),
        };
        env.nl().set_up("lo").unwrap();
        env
    }

    /// A netlink socket in the test's host namespace.
    pub fn nl(&self) -> Netlink {
        Netlink::in_ns(self.host.as_fd()).unwrap()
    }

    /// A bridge in the host namespace, up, with optional addresses.
    pub fn bridge(&self, name: &str, mtu: Option<u32>, addrs: &[(&str, u8)]) {
        let mut nl = self.nl();
        nl.create_bridge(name, &LinkOpts::default()).unwrap();
        if let Some(m) = mtu {
            // Set after creation, so the kernel keeps it as the user's choice (a bridge's MTU
            // otherwise follows its ports and falls back to 1500 when the last one goes).
            nl.set_mtu(name, m).unwrap();
        }
        for (a, p) in addrs {
            nl.add_address(name, a.parse().unwrap(), *p).unwrap();
        }
        nl.set_up(name).unwrap();
    }

    /// A veth pair `a` <-> `b`, both in the host namespace, both up.
    pub fn veth_pair(&self, a: &str, b: &str, mtu: Option<u32>) {
        let mut nl = self.nl();
        nl.create_veth(&VethSpec {
            name: a,
            opts: LinkOpts {
                mtu,
                up: true,
                ..Default::default()
            },
            peer_name: b,
            peer: LinkOpts {
                mtu,
                ..Default::default()
            },
        })
        .unwrap();
        nl.set_up(b).unwrap();
    }

    /// Names of the links in the host namespace.
    pub fn host_links(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .nl()
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        v.sort();
        v
    }

    /// `lxrs -P <lxcpath> ARGS`, run inside the host namespace with this env's run directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lxrs"));
        c.arg("-P")
            .arg(&self.lxcpath)
            .args(args)
            .env("LXRS_RUNDIR", &self.rundir);
        self.enter_host(&mut c);
        c
    }

    /// Make `c` run in the test's host network namespace.
    pub fn enter_host(&self, c: &mut Command) {
        let fd = self.host.as_fd().as_raw_fd();
        // SAFETY: setns is async-signal-safe; the fd stays open in the forked child until exec.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run lxrs")
    }

    /// `run`, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lxrs {args:?} failed ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `lxrs create -t busybox -n NAME -f <config>` with `config` as the network part.
    pub fn create(&self, name: &str, config: &str) {
        let f = self.dir.path().join(format!("{name}.conf"));
        std::fs::write(&f, config).unwrap();
        self.ok(&[
            "create",
            "-t",
            "busybox",
            "-n",
            name,
            "-f",
            f.to_str().unwrap(),
        ]);
    }

    pub fn start(&self, name: &str) -> Output {
        self.run(&["start", "-n", name, "-d"])
    }

    /// The init pid of a running container (`lxrs info -p`).
    pub fn init_pid(&self, name: &str) -> i32 {
        let out = self.ok(&["info", "-n", name, "-p"]);
        out.split_whitespace()
            .last()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in `lxrs info -p`: {out:?}"))
    }

    pub fn state(&self, name: &str) -> String {
        self.ok(&["info", "-n", name, "-s"])
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_string()
    }

    pub fn monitor_title(&self, name: &str) -> String {
        format!("[lxrs monitor] {} {name}", self.lxcpath.display())
    }

    pub fn monitors(&self, name: &str) -> Vec<i32> {
        let title = format!("{}\0", self.monitor_title(name));
        procs_with_cmdline(|c| c == title.as_bytes())
    }

    fn all_monitors(&self) -> Vec<i32> {
        let prefix = format!("[lxrs monitor] {} ", self.lxcpath.display());
        procs_with_cmdline(|c| c.starts_with(prefix.as_bytes()))
    }

    /// Mount points below this env's directory (netns pins).
    pub fn mounts(&self) -> Vec<String> {
        let dir = self.dir.path().to_string_lossy().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect()
    }

    /// Poll until `f` holds (bounded).
    pub fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `argv` inside a running container (`lxrs attach` when this build has it, else
    /// nsenter into all of init's namespaces).
    pub fn exec_in(&self, name: &str, argv: &[&str]) -> Output {
        let mut a = vec!["attach", "-n", name, "--"];
        a.extend_from_slice(argv);
        let out = self.run(&a);
        if !text(&out.stderr).contains("unrecognized subcommand") {
            return out;
        }
        let pid = self.init_pid(name).to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-m", "-u", "-i", "-n", "-p", "-r", "-w"])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// A `lxrs net` config file in this env (its run dir inside the env).
    pub fn net_config(&mut self, extra: &str) -> PathBuf {
        let f = self.dir.path().join("lxrs-net.conf");
        let run = self.dir.path().join("net");
        std::fs::write(&f, format!("run_dir = {}\n{extra}", run.display())).unwrap();
        self.net_configs.push(f.clone());
        f
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Stop what runs (teardown through the monitors), then kill any monitor left and let
        // `lxrs ls` clean up after it, in the host namespace.
        let names: Vec<String> = std::fs::read_dir(&self.lxcpath)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for n in &names {
            if !self.monitors(n).is_empty() {
                let _ = self.run(&["stop", "-n", n, "-k"]);
            }
        }
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
        let _ = self.run(&["ls"]);
        for cfg in self.net_configs.clone() {
            let _ = self.run(&["net", "down", "--config", cfg.to_str().unwrap()]);
        }
        // Guards in case a step above failed: dnsmasq by pid file, pins by mount point.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("net/dnsmasq.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for m in self.mounts() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
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
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// A netlink socket in a running container's namespace (read-only checks from the test).
pub fn ct_nl(init_pid: i32) -> Netlink {
    Netlink::for_pid(init_pid as u32).unwrap()
}

/// `NsRef` helper kept for tests that move links themselves.
pub fn ns_ref(ns: &NetNs) -> NsRef<'_> {
    NsRef::Fd(ns.as_fd())
}

/// Whether a path is a mount point (netns pin).
pub fn is_mounted(p: &Path) -> bool {
    let p = p.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&p))
}
