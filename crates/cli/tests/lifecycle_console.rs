//! Foreground start and `lxrs console` driven through real pseudo-terminals.

mod lifecycle_common;
use lifecycle_common::*;
use lxrs_runtime::state::State;

#[test]
fn foreground_start_shows_boot_and_detaches() {
    let env = Env::new();
    let spec = env.container("fg", &inittab("fg-boot-marker"), &["/sbin/init"]);
    let mut cmd = env.cmd(&["start", "-n", "fg", "--spec-json", spec.to_str().unwrap()]);
    cmd.env("TERM", "dumb");
    let mut p = PtyChild::spawn(cmd);
    // Boot output (replayed from the console ring buffer) and the shell on the console.
    p.expect("fg-boot-marker", 30);
    p.send(b"echo sum-$((40+2))\r");
    p.expect("sum-42", 10);
    // Ctrl-a Ctrl-a sends one Ctrl-a (the shell sees it; not a detach).
    p.send(b"\x01\x01");
    // Ctrl-a q detaches; the container keeps running.
    p.send(b"\x01q");
    assert_eq!(p.wait(10), 0, "{}", text(&p.seen));
    assert!(
        text(&p.seen).contains("detached; container fg still running"),
        "{}",
        text(&p.seen)
    );
    assert_eq!(env.state("fg"), State::Running);

    // `console -t 0`: the banner and the same shell.
    let mut c = PtyChild::spawn(env.cmd(&["console", "-n", "fg", "-t", "0"]));
    c.expect("Connected to tty 0", 10);
    c.expect(
        "Type <Ctrl+a q> to exit the console, <Ctrl+a Ctrl+a> to enter Ctrl+a itself",
        10,
    );
    // A second client on the same tty is refused while the first holds it.
    let busy = env.run(&["console", "-n", "fg", "-t", "0"]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(
        text(&busy.stderr).contains("busy"),
        "{}",
        text(&busy.stderr)
    );
    c.send(b"echo again-$((1+2))\r");
    c.expect("again-3", 10);
    c.send(b"\x01q");
    assert_eq!(c.wait(10), 0);
    // Released: the console can be taken again.
    let mut c2 = PtyChild::spawn(env.cmd(&["console", "-n", "fg", "-t", "0"]));
    c2.expect("Connected to tty 0", 10);
    c2.send(b"\x01q");
    assert_eq!(c2.wait(10), 0);

    assert!(env.run(&["stop", "-n", "fg", "-k"]).status.success());
    assert_eq!(env.state("fg"), State::Stopped);
}

#[test]
fn foreground_start_returns_when_the_container_stops() {
    let env = Env::new();
    // Output of a short-lived init is not lost even though init exits at once.
    let spec = env.container("fx", "", &["/bin/echo", "short-lived-output"]);
    let out = env.run(&["start", "-n", "fx", "--spec-json", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("short-lived-output"),
        "stdout: {}",
        text(&out.stdout)
    );
    assert_eq!(env.state("fx"), State::Stopped);
    let m = env.monitors("fx");
    assert!(
        m.is_empty(),
        "monitor left: {:?}",
        m.iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
}

#[test]
fn console_ttys_and_errors() {
    let env = Env::new();
    // Not running: exit 1.
    env.container(
        "tt",
        "::sysinit:/bin/echo tt-boot-marker\ntty1::respawn:/bin/sh\ntty2::respawn:/bin/sh\n",
        &["/sbin/init"],
    );
    let out = env.run(&["console", "-n", "tt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not running"));

    // The console also goes to lxc.console.logfile.
    let spec = env.lxcpath.join("tt/spec.json");
    let log = env.dir.path().join("tt-console.log");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    v["console"]["logfile"] = serde_json::json!(log);
    std::fs::write(&spec, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(env
        .run(&[
            "start",
            "-n",
            "tt",
            "-d",
            "--spec-json",
            spec.to_str().unwrap()
        ])
        .status
        .success());
    // Nobody was attached at boot: `-t 0` replays the console ring buffer.
    env.wait_for("boot output in the console log", 10, || {
        std::fs::read_to_string(&log)
            .map(|l| l.contains("tt-boot-marker"))
            .unwrap_or(false)
    });
    let mut c0 = PtyChild::spawn(env.cmd(&["console", "-n", "tt", "-t", "0"]));
    c0.expect("Connected to tty 0", 10);
    c0.expect("tt-boot-marker", 10);
    c0.send(b"\x01q");
    assert_eq!(c0.wait(10), 0);
    // No -t: first free tty (1), then 2, then none left.
    let mut t1 = PtyChild::spawn(env.cmd(&["console", "-n", "tt"]));
    t1.expect("Connected to tty 1", 10);
    let mut t2 = PtyChild::spawn(env.cmd(&["console", "-n", "tt", "-e", "^b"]));
    t2.expect("Connected to tty 2", 10);
    t2.expect("<Ctrl+b q>", 10);
    let none = env.run(&["console", "-n", "tt"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("no free tty"),
        "{}",
        text(&none.stderr)
    );
    let out = env.run(&["console", "-n", "tt", "-t", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    // The shell on tty1 works (the tty is /dev/tty1 in the container).
    t1.send(b"echo on-$(tty)\r");
    t1.expect("on-/dev/tty1", 10);
    // With -e b, Ctrl-a is just a byte and Ctrl-b q detaches.
    t2.send(b"\x02q");
    assert_eq!(t2.wait(10), 0);
    // Stopping the container ends an attached console.
    assert!(env.run(&["stop", "-n", "tt", "-k"]).status.success());
    assert_eq!(t1.wait(10), 0);
    assert!(text(&t1.seen).contains("stopped"), "{}", text(&t1.seen));
}
