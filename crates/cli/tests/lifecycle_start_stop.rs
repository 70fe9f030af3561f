//! start -d / stop / stop -k / halt timeout / killed monitor / concurrent starts / bad init /
//! reboot. Root only: real containers from a busybox rootfs.

mod lifecycle_common;
use lifecycle_common::*;
use lxrs_runtime::state::State;
use std::time::Duration;

fn pidfile_pid(p: &std::path::Path) -> i32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[test]
fn start_daemon_then_clean_stop() {
    let env = Env::new();
    let spec = env.container("c1", &inittab("boot-marker-c1"), &["/sbin/init"]);
    let pidfile = env.dir.path().join("c1.pid");
    let out = env.run(&[
        "start",
        "-n",
        "c1",
        "-d",
        "-p",
        pidfile.to_str().unwrap(),
        "--spec-json",
        spec.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "start failed: {}", text(&out.stderr));

    // start -d returned: init runs already.
    let info = env.info("c1");
    assert_eq!(info.state, State::Running);
    let init = info.init_pid.expect("init pid");
    assert!(alive(init));
    let monitor = pidfile_pid(&pidfile);
    assert_eq!(info.monitor_pid, Some(monitor));
    assert_eq!(
        env.monitors("c1"),
        vec![monitor],
        "ps shows exactly one monitor with the LXC-style title"
    );
    let cmdline = std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap();
    assert_eq!(text(&cmdline), format!("{}\0", env.monitor_title("c1")));
    // init is busybox init in its own pid namespace.
    assert_ne!(
        std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap(),
        std::fs::read_link("/proc/self/ns/pid").unwrap()
    );
    assert!(env.record_path("c1").exists());

    // Starting again: already running, one container.
    let again = env.run(&[
        "start",
        "-n",
        "c1",
        "-d",
        "--spec-json",
        spec.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stderr).contains("already running"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(env.monitors("c1").len(), 1);

    // Clean halt (busybox init halts on SIGUSR1).
    let out = env.run(&["stop", "-n", "c1", "-t", "30"]);
    assert!(out.status.success(), "stop failed: {}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("killed"),
        "halted cleanly, not killed: {}",
        text(&out.stderr)
    );
    assert_eq!(env.state("c1"), State::Stopped);
    assert!(!alive(init));
    env.wait_for("the monitor to exit", 5, || !alive(monitor));
    assert!(!env.record_path("c1").exists(), "state record removed");
    assert!(!pidfile.exists(), "pidfile removed with the container");

    // Not running: exit 2.
    let out = env.run(&["stop", "-n", "c1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not running"));
}

#[test]
fn stop_kill_and_halt_timeout() {
    let env = Env::new();
    // An init that ignores the halt signal: only a kill stops it.
    let spec = env.container(
        "k1",
        "",
        &["/bin/sh", "-c", "trap '' USR1; while :; do sleep 1; done"],
    );
    let s = spec.to_str().unwrap();
    assert!(env
        .run(&["start", "-n", "k1", "-d", "--spec-json", s])
        .status
        .success());
    let init = env.info("k1").init_pid.unwrap();
    let out = env.run(&["stop", "-n", "k1", "-k"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.state("k1"), State::Stopped);
    assert!(!alive(init));
    assert!(env.monitors("k1").is_empty());

    // Halt with a 1 s timeout: ignored, so killed after the timeout.
    assert!(env
        .run(&["start", "-n", "k1", "-d", "--spec-json", s])
        .status
        .success());
    let t0 = std::time::Instant::now();
    let out = env.run(&["stop", "-n", "k1", "-t", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert!(
        text(&out.stderr).contains("killed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.state("k1"), State::Stopped);

    // --nokill: timeout is a failure and the container keeps running.
    assert!(env
        .run(&["start", "-n", "k1", "-d", "--spec-json", s])
        .status
        .success());
    let out = env.run(&["stop", "-n", "k1", "-t", "1", "--nokill"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(env.state("k1"), State::Running);
    // Invalid combinations are rejected before anything happens.
    for bad in [&["-k", "-r"][..], &["-k", "-t", "3"], &["--nolock"]] {
        let mut args = vec!["stop", "-n", "k1"];
        args.extend_from_slice(bad);
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out.stderr));
    }
    assert_eq!(env.state("k1"), State::Running);
    assert!(env.run(&["stop", "-n", "k1", "-k"]).status.success());
}

#[test]
fn killed_monitor_is_cleaned_up_by_the_next_command() {
    let env = Env::new();
    let spec = env.container("m1", &inittab("boot-m1"), &["/sbin/init"]);
    assert!(env
        .run(&[
            "start",
            "-n",
            "m1",
            "-d",
            "--spec-json",
            spec.to_str().unwrap()
        ])
        .status
        .success());
    let info = env.info("m1");
    let (init, monitor) = (info.init_pid.unwrap(), info.monitor_pid.unwrap());
    // A record of what the monitor created lives in the run directory.
    let rec = env.record_path("m1");
    assert!(rec.exists());
    // Stand in for a host object the monitor created (the cgroup/network backends record
    // theirs the same way): the leftover cleanup must remove it.
    let leftover = env.dir.path().join("leftover-file");
    std::fs::write(&leftover, b"x").unwrap();
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    // Appended: the real items (the container's cgroups) must be torn down too.
    r["items"]
        .as_array_mut()
        .expect("items")
        .push(serde_json::json!({ "kind": "file", "path": leftover }));
    std::fs::write(&rec, serde_json::to_vec(&r).unwrap()).unwrap();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    env.wait_for("monitor to die", 10, || !alive(monitor));
    // init dies with its monitor (PDEATHSIG), taking the whole pid namespace.
    env.wait_for("init to die with its monitor", 10, || !alive(init));
    assert_eq!(env.state("m1"), State::Stopped);
    assert!(!rec.exists(), "leftover record cleaned");
    assert!(!leftover.exists(), "recorded host object torn down");
    let out = env.run(&["stop", "-n", "m1"]);
    assert_eq!(out.status.code(), Some(2));
    // And it starts again normally.
    assert!(env
        .run(&[
            "start",
            "-n",
            "m1",
            "-d",
            "--spec-json",
            spec.to_str().unwrap()
        ])
        .status
        .success());
    assert!(env.run(&["stop", "-n", "m1", "-k"]).status.success());
}

#[test]
fn concurrent_starts_give_one_container() {
    let env = Env::new();
    let spec = env.container("cc", &inittab("boot-cc"), &["/sbin/init"]);
    let s = spec.to_str().unwrap();
    let kids: Vec<_> = (0..3)
        .map(|_| {
            env.cmd(&["start", "-n", "cc", "-d", "--spec-json", s])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = kids
        .into_iter()
        .map(|k| k.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let already = outs
        .iter()
        .filter(|o| text(&o.stderr).contains("already running"))
        .count();
    assert_eq!(already, 2, "exactly one start wins");
    assert_eq!(env.monitors("cc").len(), 1);
    assert_eq!(env.state("cc"), State::Running);
    assert!(env.run(&["stop", "-n", "cc", "-k"]).status.success());
    assert!(env.monitors("cc").is_empty());
}

#[test]
fn bad_init_fails_naming_it_and_leaves_nothing() {
    let env = Env::new();
    let spec = env.container("bad", "", &["/nonexistent"]);
    let out = env.run(&[
        "start",
        "-n",
        "bad",
        "-d",
        "--spec-json",
        spec.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("/nonexistent"), "error names the init: {err}");
    assert!(env.monitors("bad").is_empty(), "no monitor left");
    assert!(!env.record_path("bad").exists(), "no state record left");
    assert_eq!(env.state("bad"), State::Stopped);
    // Foreground start reports the same way.
    let out = env.run(&["start", "-n", "bad", "--spec-json", spec.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent"));
    assert!(env.monitors("bad").is_empty());
}

#[test]
fn reboot_restarts_under_the_same_monitor() {
    let env = Env::new();
    // Every boot appends a line; the first boot reboots from inside (busybox `reboot` signals
    // init, which calls reboot(2): in a pid namespace the kernel kills init with SIGHUP).
    let tab = "::sysinit:/bin/sh -c 'echo boot >> /boots; if [ ! -e /rebooted ]; then touch /rebooted; reboot; fi'\n::respawn:-/bin/sh\n::ctrlaltdel:/bin/reboot\n";
    let spec = env.container("rb", tab, &["/sbin/init"]);
    let boots = env.rootfs("rb").join("boots");
    assert!(env
        .run(&[
            "start",
            "-n",
            "rb",
            "-d",
            "--spec-json",
            spec.to_str().unwrap()
        ])
        .status
        .success());
    let monitor = env.info("rb").monitor_pid.unwrap();
    env.wait_for("the reboot from inside", 30, || {
        std::fs::read_to_string(&boots)
            .map(|s| s.lines().count() == 2)
            .unwrap_or(false)
            && env.state("rb") == State::Running
    });
    let i1 = env.info("rb");
    assert_eq!(i1.monitor_pid, Some(monitor), "same monitor");
    assert!(alive(i1.init_pid.unwrap()));

    // stop -r: the reboot signal, and back to RUNNING before it returns.
    let out = env.run(&["stop", "-n", "rb", "-r", "-t", "30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let i2 = env.info("rb");
    assert_eq!(i2.state, State::Running);
    assert_eq!(i2.monitor_pid, Some(monitor));
    assert_ne!(i2.init_pid, i1.init_pid, "a new init");
    env.wait_for("the third boot", 30, || {
        std::fs::read_to_string(&boots)
            .map(|s| s.lines().count() == 3)
            .unwrap_or(false)
    });
    assert!(env.run(&["stop", "-n", "rb", "-k"]).status.success());
    env.wait_for("the monitor to exit", 5, || !alive(monitor));
}

#[test]
fn sigterm_to_the_monitor_halts_the_container() {
    let env = Env::new();
    let spec = env.container("st", &inittab("boot-st"), &["/sbin/init"]);
    let s = spec.to_str().unwrap();
    assert!(env
        .run(&["start", "-n", "st", "-d", "--spec-json", s])
        .status
        .success());
    let info = env.info("st");
    let (init, monitor) = (info.init_pid.unwrap(), info.monitor_pid.unwrap());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // busybox init halts on the halt signal (SIGUSR1) well within the kill grace period.
    env.wait_for("the container to halt", 15, || !alive(monitor));
    assert!(!alive(init));
    assert_eq!(env.state("st"), State::Stopped);
    assert!(!env.record_path("st").exists());
}

/// The monitor normally is a fork of `lxrs start` that writes its title over the process's
/// argument strings. When they (and the environment after them) are too short for the title,
/// `start` executes the monitor instead: the title and the container are the same.
#[test]
fn monitor_title_without_room_in_the_arguments() {
    let mut env = Env::new();
    // A long lxcpath makes a long title; `-P .`, a short program name, a relative spec path
    // and an almost empty environment leave little room.
    let long = env.dir.path().join("l".repeat(120));
    std::fs::create_dir_all(&long).unwrap();
    env.lxcpath = std::fs::canonicalize(&long).unwrap();
    env.container("c1", &inittab("boot-marker-c1"), &["/sbin/init"]);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lxrs"), env.lxcpath.join("x")).unwrap();
    let out = std::process::Command::new("env")
        .current_dir(&env.lxcpath)
        .arg("-i")
        .arg(format!("LXRS_RUNDIR={}", env.rundir.display()))
        .args(["./x", "-P", ".", "start", "-n", "c1", "-d"])
        .args(["--spec-json", "c1/spec.json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "start failed: {}", text(&out.stderr));
    let info = env.info("c1");
    assert_eq!(info.state, State::Running);
    let monitor = info.monitor_pid.expect("monitor pid");
    assert_eq!(env.monitors("c1"), vec![monitor]);
    let cmdline = std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap();
    assert_eq!(text(&cmdline), format!("{}\0", env.monitor_title("c1")));
    // It was executed: its environment area is the one exec gave it, which names the
    // start socket (a forked monitor's holds the end of its title instead).
    let environ = std::fs::read(format!("/proc/{monitor}/environ")).unwrap();
    assert!(
        text(&environ).contains("_LXRS_MONITOR_FD="),
        "{}",
        text(&environ)
    );
    let out = env.run(&["stop", "-n", "c1", "-k"]);
    assert!(out.status.success(), "stop failed: {}", text(&out.stderr));
    env.wait_for("the monitor to exit", 5, || !alive(monitor));
    assert_eq!(env.state("c1"), State::Stopped);
}

/// Whatever the caller of `start` ignores or blocks, init starts with every signal at its
/// default and none blocked (the start path resets only what is not at its default, read from
/// `/proc/self/status`).
/// A field of `/proc/PID/status` (`name` with its colon).
fn status_field(pid: &str, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// `Cpus_allowed_list` of a process.
fn cpus_allowed(pid: &str) -> String {
    status_field(pid, "Cpus_allowed_list:")
}

/// `start -d` of `name` from the spec file `spec`.
fn start_detached(env: &Env, name: &str, spec: &std::path::Path) -> std::process::Command {
    env.cmd(&[
        "start",
        "-n",
        name,
        "-d",
        "--spec-json",
        spec.to_str().unwrap(),
    ])
}

/// The starter sends the monitor, and the monitor sends init, to another CPU for their first
/// moments; both must end with the caller's affinity: all of its CPUs, or the one it was
/// restricted to.
#[test]
fn monitor_and_init_keep_the_callers_cpu_affinity() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let spec = env.container("c1", &inittab("boot-marker-c1"), &["/bin/sleep", "1000"]);
    let ours = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let last = (0..nix::sched::CpuSet::count())
        .rfind(|&c| ours.is_set(c).unwrap())
        .unwrap();
    for only in [None, Some(last)] {
        let mut cmd = start_detached(&env, "c1", &spec);
        if let Some(cpu) = only {
            // SAFETY: between fork and exec only sched_setaffinity, async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let mut one = nix::sched::CpuSet::new();
                    one.set(cpu).unwrap();
                    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(out.status.success(), "start failed: {}", text(&out.stderr));
        let want = match only {
            Some(cpu) => cpu.to_string(),
            None => cpus_allowed("self"),
        };
        let info = env.info("c1");
        let init = info.init_pid.expect("init pid").to_string();
        let monitor = env.monitors("c1")[0].to_string();
        assert_eq!(cpus_allowed(&init), want, "init, caller on {only:?}");
        assert_eq!(cpus_allowed(&monitor), want, "monitor, caller on {only:?}");
        let out = env.run(&["stop", "-n", "c1", "-k"]);
        assert!(out.status.success(), "stop failed: {}", text(&out.stderr));
    }
}

#[test]
fn init_starts_with_default_signals_whatever_the_caller_had() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let spec = env.container("c1", &inittab("boot-marker-c1"), &["/bin/sleep", "1000"]);
    let mut cmd = start_detached(&env, "c1", &spec);
    // SAFETY: between fork and exec only async-signal-safe calls (signal, sigprocmask).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(out.status.success(), "start failed: {}", text(&out.stderr));
    let init = env.info("c1").init_pid.expect("init pid");
    let init = init.to_string();
    for mask in ["SigIgn:", "SigBlk:", "SigCgt:"] {
        assert_eq!(status_field(&init, mask), "0000000000000000", "{mask}");
    }
    let out = env.run(&["stop", "-n", "c1", "-k"]);
    assert!(out.status.success(), "stop failed: {}", text(&out.stderr));
}
