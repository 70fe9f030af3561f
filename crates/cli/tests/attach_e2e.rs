//! `lxrs attach` end to end, as root, against "containers" made without lxrs: a process tree
//! from util-linux `unshare` (new pid, mount, uts, ipc and net namespaces) whose pid 1 sets a
//! hostname, hides a host directory under a tmpfs and sleeps. `lxrs attach --pid PID` (hidden,
//! for tests and debugging) targets it directly.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A running target; killed, reaped and cleaned up on drop.
struct Target {
    unshare: Child,
    /// Host pid of the target's pid 1 (the sleep).
    pid: i32,
    hostname: String,
    /// Host directory with a file the target cannot see (a tmpfs covers it in its mount ns).
    hidden_dir: PathBuf,
    cgroup: Option<PathBuf>,
}

#[derive(Default)]
struct TargetOpts {
    drop_sys_time: bool,
    cgroup: bool,
}

impl Target {
    fn start(o: TargetOpts) -> Target {
        let hostname = unique("attach-test");
        let hidden_dir = std::env::temp_dir().join(unique("lxrs-attach-hidden"));
        std::fs::create_dir_all(&hidden_dir).unwrap();
        std::fs::write(hidden_dir.join("host-only"), "host\n").unwrap();
        let script = format!(
            "hostname {hostname} && mount -t tmpfs attach-test {} && exec sleep 1000",
            hidden_dir.display()
        );
        let mut cmd = if o.drop_sys_time {
            let mut c = Command::new("setpriv");
            c.args(["--bounding-set", "-sys_time", "unshare"]);
            c
        } else {
            Command::new("unshare")
        };
        cmd.args(["--fork", "--pid", "--mount-proc", "--uts", "--ipc", "--net"])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let unshare = cmd.spawn().expect("spawn unshare");
        let mut t = Target {
            pid: 0,
            unshare,
            hostname,
            hidden_dir,
            cgroup: None,
        };
        // The inner process is the unshare process's only child; wait until it runs `sleep`.
        let deadline = Instant::now() + Duration::from_secs(10);
        let upid = t.unshare.id();
        loop {
            let kids = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(p) = kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" {
                    t.pid = p;
                    break;
                }
            }
            if let Ok(Some(st)) = t.unshare.try_wait() {
                let mut err = String::new();
                let _ = t.unshare.stderr.take().unwrap().read_to_string(&mut err);
                panic!("target died during set-up: {st}: {err}");
            }
            assert!(Instant::now() < deadline, "target did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        if o.cgroup {
            let cg = Path::new("/sys/fs/cgroup/pids").join(unique("lxrs-attach-test"));
            std::fs::create_dir(&cg).expect("create test cgroup");
            t.cgroup = Some(cg.clone());
            std::fs::write(cg.join("cgroup.procs"), t.pid.to_string()).expect("move target");
        }
        t
    }

    fn attach(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lxrs"));
        c.arg("attach").arg("--pid").arg(self.pid.to_string());
        c
    }

    fn pidns(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{}/ns/pid", self.pid))
            .unwrap()
            .ino()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // Kill the target's pid 1 and let `unshare` (its parent) reap it and exit; kill
        // `unshare` too only if it does not.
        if self.pid > 0 {
            // SAFETY: kill(2) of the process we started (through unshare), valid signal.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.unshare.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        if let Some(cg) = &self.cgroup {
            for _ in 0..200 {
                if std::fs::remove_dir(cg).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.hidden_dir);
    }
}

fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run lxrs attach")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn check_ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn hostname_is_the_targets() {
    let t = Target::start(TargetOpts::default());
    let mut c = t.attach();
    c.args(["--", "hostname"]);
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), format!("{}\n", t.hostname));
}

#[test]
fn exit_statuses_propagate() {
    let t = Target::start(TargetOpts::default());
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("kill -9 $$", 128 + 9),
    ] {
        let mut c = t.attach();
        c.args(["--", "sh", "-c", script]);
        let o = run(c);
        assert_eq!(o.status.code(), Some(want), "{script}: {:?}", o);
    }
    // A command that does not exist: 127, with a message; a missing target: 1.
    let mut c = t.attach();
    c.args(["--", "/nonexistent/command"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/command"));
}

#[test]
fn missing_target_fails_with_a_clear_message() {
    let o = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_lxrs"));
        c.args(["attach", "--pid", "999999999", "--", "true"]);
        c
    });
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn script_on_stdin_runs_in_the_login_shell() {
    let t = Target::start(TargetOpts::default());
    let mut c = t.attach();
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo hi; hostname; exit 3\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(stdout(&o), format!("hi\n{}\n", t.hostname));
}

#[test]
fn stdout_and_stderr_stay_apart() {
    let t = Target::start(TargetOpts::default());
    let mut c = t.attach();
    c.args(["--", "sh", "-c", "echo out; echo err >&2; echo out2"]);
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), "out\nout2\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
}

#[test]
fn hundred_attaches_leave_no_process_or_descriptor_behind() {
    let t = Target::start(TargetOpts::default());
    let ns = t.pidns();
    for i in 0..100 {
        let mut c = t.attach();
        c.args(["--", "true"]);
        let o = run(c);
        assert!(o.status.success(), "attach {i}: {o:?}");
    }
    // Only the target's pid 1 is left in its pid namespace (no zombie, no straggler).
    use std::os::unix::fs::MetadataExt;
    let mut in_ns = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        if let Ok(m) = std::fs::metadata(format!("/proc/{name}/ns/pid")) {
            if m.ino() == ns {
                let st = std::fs::read_to_string(format!("/proc/{name}/stat")).unwrap_or_default();
                in_ns.push((name, st));
            }
        }
    }
    assert_eq!(in_ns.len(), 1, "{in_ns:?}");
    assert_eq!(in_ns[0].0, t.pid.to_string());
    // Host descriptors never reach the command: give lxrs an inheritable fd 9.
    let keep = std::fs::File::open("/etc/hostname").unwrap();
    let raw = keep.as_raw_fd();
    let mut c = t.attach();
    c.args(["--", "ls", "/proc/self/fd"]);
    // SAFETY: dup2 is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 9) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), "0\n1\n2\n3\n");
}

#[test]
fn selected_namespaces_net_and_uts_only() {
    let t = Target::start(TargetOpts::default());
    let hidden = t.hidden_dir.join("host-only");
    let mut c = t.attach();
    c.args(["-s", "NETWORK|UTSNAME", "--", "sh", "-c"]);
    c.arg(format!(
        "hostname; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat {}",
        hidden.display()
    ));
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), format!("{}\nlo\nhost\n", t.hostname));
    // Lower-case spelling; the mount namespace entered by default hides the host file.
    let mut c = t.attach();
    c.args(["-s", "net|uts", "--", "hostname"]);
    assert_eq!(stdout(&run(c)), format!("{}\n", t.hostname));
    let mut c = t.attach();
    c.args(["--", "test", "-e"]).arg(&hidden);
    assert_eq!(run(c).status.code(), Some(1));
}

#[test]
fn remount_proc_shows_the_entered_pid_namespace() {
    let t = Target::start(TargetOpts::default());
    let mut c = t.attach();
    c.args(["-s", "PID", "-R", "--", "cat", "/proc/1/comm"]);
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), "sleep\n");
}

fn capbnd(status: &str) -> u64 {
    let l = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    u64::from_str_radix(l[7..].trim(), 16).unwrap()
}

#[test]
fn cgroup_and_bounding_set_follow_the_target_unless_elevated() {
    const SYS_TIME: u64 = 1 << 25;
    let ours = capbnd(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert!(
        ours & SYS_TIME != 0,
        "the test needs CAP_SYS_TIME in our bounding set"
    );
    let t = Target::start(TargetOpts {
        drop_sys_time: true,
        cgroup: true,
    });
    let cg_name = t
        .cgroup
        .as_ref()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let pids_line = |o: &Output| -> String {
        stdout(o)
            .lines()
            .find(|l| l.contains(":pids:"))
            .unwrap_or_default()
            .to_string()
    };
    let script = "cat /proc/self/cgroup; cat /proc/self/status";
    let mut c = t.attach();
    c.args(["--", "sh", "-c", script]);
    let o = run(c);
    check_ok(&o);
    assert!(
        pids_line(&o).ends_with(&format!("/{cg_name}")),
        "{}",
        stdout(&o)
    );
    let bnd = capbnd(&stdout(&o));
    assert_eq!(bnd & SYS_TIME, 0, "bounding set not reduced: {bnd:x}");
    assert_eq!(
        bnd,
        capbnd(&std::fs::read_to_string(format!("/proc/{}/status", t.pid)).unwrap())
    );

    for e in ["-e", "--elevated-privileges=CGROUP|CAP"] {
        let mut c = t.attach();
        c.args([e, "--", "sh", "-c", script]);
        let o = run(c);
        check_ok(&o);
        assert!(!pids_line(&o).contains(&cg_name), "{e}: {}", stdout(&o));
        assert_ne!(capbnd(&stdout(&o)) & SYS_TIME, 0, "{e}");
    }
    // Only CAP elevated: in the cgroup, full bounding set.
    let mut c = t.attach();
    c.args(["-e=CAP", "--", "sh", "-c", script]);
    let o = run(c);
    assert!(
        pids_line(&o).ends_with(&format!("/{cg_name}")),
        "{}",
        stdout(&o)
    );
    assert_ne!(capbnd(&stdout(&o)) & SYS_TIME, 0);
}

#[test]
fn environment_rules_and_ids() {
    let t = Target::start(TargetOpts::default());
    let env_of = |args: &[&str]| -> Vec<String> {
        let mut c = t.attach();
        c.env("KEEPME", "yes")
            .env("DROPME", "no")
            .env("PATH", "/usr/bin:/bin");
        c.args(args).args(["--", "env"]);
        let o = run(c);
        check_ok(&o);
        stdout(&o).lines().map(str::to_string).collect()
    };
    let kept = env_of(&["-v", "A=1", "-v", "container=override"]);
    assert!(kept.contains(&"DROPME=no".to_string()), "{kept:?}");
    assert!(kept.contains(&"A=1".to_string()));
    assert!(kept.contains(&"container=override".to_string()));
    let cleared = env_of(&["--clear-env", "--keep-var", "KEEPME", "-v", "B=2"]);
    let mut sorted = cleared.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "B=2",
            "KEEPME=yes",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "container=lxc"
        ],
        "{cleared:?}"
    );
    let mut c = t.attach();
    c.args([
        "-u",
        "1234",
        "-g",
        "4321",
        "--",
        "sh",
        "-c",
        "id -u; id -g; id -G",
    ]);
    let o = run(c);
    check_ok(&o);
    assert_eq!(stdout(&o), "1234\n4321\n4321\n");
}

#[test]
fn forwarded_signal_reaches_the_command() {
    let t = Target::start(TargetOpts::default());
    let mut c = t.attach();
    c.args([
        "--",
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    c.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: kill(2) on our own child with a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(7), "{st:?} signal {:?}", st.signal());
}

/// Run `lxrs attach` on a fresh pty (its slave as stdin, stdout and stderr), feed `input`, and
/// collect everything until it exits.
fn on_pty(t: &Target, args: &[&str], input: &[u8], rows: u16, cols: u16) -> (i32, String) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let master: OwnedFd = pty.master;
    let slave: OwnedFd = pty.slave;
    let probe = slave.try_clone().unwrap();
    let before = nix::sys::termios::tcgetattr(&probe).unwrap();
    let mut c = t.attach();
    c.args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = c.spawn().unwrap();
    drop(c); // closes our copies of the slave
    let mut m = std::fs::File::from(master);
    m.write_all(input).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    let status = loop {
        let mut p = libc::pollfd {
            fd: m.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 50) };
        if p.revents & libc::POLLIN != 0 {
            if let Ok(n) = m.read(&mut buf) {
                out.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "attach on a pty did not finish: {}",
                String::from_utf8_lossy(&out)
            );
        }
    };
    // Whatever is still buffered.
    loop {
        let mut p = libc::pollfd {
            fd: m.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 0) } != 1 || p.revents & libc::POLLIN == 0 {
            break;
        }
        match m.read(&mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    // lxrs put the terminal in raw mode; it must be back as it was.
    let after = nix::sys::termios::tcgetattr(&probe).unwrap();
    assert_eq!(
        after.local_flags, before.local_flags,
        "terminal not restored"
    );
    assert_eq!(
        after.input_flags, before.input_flags,
        "terminal not restored"
    );
    assert_eq!(
        after.output_flags, before.output_flags,
        "terminal not restored"
    );
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn interactive_shell_through_a_pty() {
    let t = Target::start(TargetOpts::default());
    let log = std::env::temp_dir().join(unique("lxrs-attach-ptylog"));
    let (code, out) = on_pty(
        &t,
        &["-L", log.to_str().unwrap()],
        b"echo $((6*7))\nexit\n",
        24,
        80,
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\n42\r\n") || out.contains("42\r\n"),
        "{out:?}"
    );
    assert!(logged.contains("42"), "pty log: {logged:?}");
}

#[test]
fn pty_gets_a_controlling_terminal_and_our_window_size() {
    let t = Target::start(TargetOpts::default());
    let (code, out) = on_pty(
        &t,
        &["--", "sh", "-c", "stty size; test -t 0 && tty; exit 5"],
        b"",
        33,
        99,
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("33 99"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
}
