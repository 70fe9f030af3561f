//! Root integration tests of create, destroy, ls, info and autostart, driving the real `lxrs`
//! binary against the real kernel. Each test has its own lxcpath and run directory.

mod lifecycle_common;

use lifecycle_common::{text, Env};
use std::path::Path;
use std::time::{Duration, Instant};

/// A config without network (networking has its own tests).
fn nonet(env: &Env) -> String {
    let p = env.dir.path().join("nonet.conf");
    std::fs::write(
        &p,
        "lxc.net.0.type = empty\nlxc.cap.drop = sys_module sys_time\n",
    )
    .unwrap();
    p.display().to_string()
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    assert!(
        out.status.success(),
        "lxrs {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn fails(env: &Env, args: &[&str]) -> (i32, String) {
    let out = env.run(args);
    assert!(
        !out.status.success(),
        "lxrs {args:?} unexpectedly succeeded: {}",
        text(&out.stdout)
    );
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

fn entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn create_writes_config_and_rootfs_and_refuses_bad_input_leaving_nothing() {
    let env = Env::new();
    let cfg = nonet(&env);
    ok(
        &env,
        &[
            "create", "-t", "busybox", "-n", "c1", "-f", &cfg, "--", "--ttys", "2",
        ],
    );
    let config = std::fs::read_to_string(env.lxcpath.join("c1/config")).unwrap();
    assert!(
        config.starts_with("# Template used to create this container: busybox (built-in)\n"),
        "{config}"
    );
    assert!(
        config.contains("# Parameters passed to the template: --ttys 2\n"),
        "{config}"
    );
    assert!(config.contains("lxc.net.0.type = empty\n"));
    assert!(config.contains(&format!(
        "lxc.rootfs.path = dir:{}\n",
        env.lxcpath.join("c1/rootfs").display()
    )));
    assert!(config.contains("lxc.tty.max = 2\n"));
    assert!(env.lxcpath.join("c1/rootfs/sbin/init").exists());
    assert!(!env.lxcpath.join("c1/partial").exists());
    let ok_check = env.run(&[
        "config",
        "check",
        &env.lxcpath.join("c1/config").display().to_string(),
    ]);
    assert!(ok_check.status.success(), "{}", text(&ok_check.stdout));

    let (_, e) = fails(&env, &["create", "-t", "busybox", "-n", "c1", "-f", &cfg]);
    assert!(e.contains("already exists"), "{e}");
    for bad in ["a/b", "..", "--x", "a b"] {
        let (_, e) = fails(
            &env,
            &[
                "create",
                "-t",
                "busybox",
                &format!("--name={bad}"),
                "-f",
                &cfg,
            ],
        );
        assert!(e.contains("container name"), "{bad}: {e}");
    }
    let (_, e) = fails(
        &env,
        &["create", "-t", "no-such-template", "-n", "c2", "-f", &cfg],
    );
    assert!(e.contains("template 'no-such-template' not found"), "{e}");
    // A template that fails half-way leaves no container.
    let script = env.dir.path().join("lxc-broken");
    std::fs::write(&script, "#!/bin/sh\nmkdir -p \"${3#--rootfs=}/etc\"; echo half > \"${3#--rootfs=}/etc/x\"; exit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_, e) = fails(
        &env,
        &[
            "create",
            "-t",
            &script.display().to_string(),
            "-n",
            "c3",
            "-f",
            &cfg,
        ],
    );
    assert!(e.contains("failed"), "{e}");
    // A bad initial config is refused before anything is made.
    let bad = env.dir.path().join("bad.conf");
    std::fs::write(&bad, "lxc.utsnme = x\n").unwrap();
    let (_, e) = fails(
        &env,
        &[
            "create",
            "-t",
            "busybox",
            "-n",
            "c4",
            "-f",
            &bad.display().to_string(),
        ],
    );
    assert!(
        e.contains("lxc.uts.name"),
        "the error suggests the right key: {e}"
    );
    assert_eq!(entries(&env.lxcpath), ["c1"]);

    ok(&env, &["destroy", "-n", "c1"]);
    assert!(entries(&env.lxcpath).is_empty());
    let (_, e) = fails(&env, &["destroy", "-n", "c1"]);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn whole_cycle_create_start_ls_info_attach_stop_destroy() {
    let env = Env::new();
    let cfg = nonet(&env);
    ok(&env, &["create", "-t", "busybox", "-n", "cyc1", "-f", &cfg]);
    ok(&env, &["start", "-n", "cyc1", "-d"]);
    let ls = ok(&env, &["ls", "--fancy"]);
    assert!(
        ls.lines()
            .nth(2)
            .unwrap()
            .starts_with("cyc1  RUNNING  -     -     NO"),
        "{ls}"
    );
    let info = ok(&env, &["info", "-n", "cyc1"]);
    assert!(info.contains("State:          RUNNING"), "{info}");
    let pid: i32 = info.lines().find(|l| l.starts_with("PID:")).unwrap()[4..]
        .trim()
        .parse()
        .unwrap();
    assert!(lifecycle_common::alive(pid));
    assert_eq!(
        ok(&env, &["info", "-n", "cyc1", "-p"]).trim(),
        format!("PID:            {pid}")
    );
    assert_eq!(
        ok(&env, &["attach", "-n", "cyc1", "--", "hostname"]).trim(),
        "cyc1"
    );
    // destroy of a running container is refused without -f
    let (_, e) = fails(&env, &["destroy", "-n", "cyc1"]);
    assert!(e.contains("RUNNING") && e.contains("-f"), "{e}");
    assert!(env.lxcpath.join("cyc1/config").exists());
    // a clean halt: busybox init gets SIGUSR1 (lxc.signal.halt from the template)
    ok(&env, &["stop", "-n", "cyc1", "-t", "20"]);
    assert!(!lifecycle_common::alive(pid));
    assert!(ok(&env, &["ls", "--fancy"]).contains("cyc1  STOPPED"));
    ok(&env, &["start", "-n", "cyc1", "-d"]);
    ok(&env, &["destroy", "-n", "cyc1", "-f"]);
    assert!(entries(&env.lxcpath).is_empty());
    assert!(env.monitors("cyc1").is_empty());
}

#[test]
fn ls_filters_and_formats() {
    let env = Env::new();
    let cfg = nonet(&env);
    for n in ["web1", "web2", "db1"] {
        ok(&env, &["create", "-t", "busybox", "-n", n, "-f", &cfg]);
    }
    ok(
        &env,
        &["config", "set", "-n", "web1", "lxc.group", "web, prod"],
    );
    ok(
        &env,
        &["config", "set", "-n", "web1", "lxc.start.auto", "1"],
    );
    ok(&env, &["config", "set", "-n", "web2", "lxc.group", "web"]);
    ok(&env, &["start", "-n", "web2", "-d"]);
    // not a terminal: one name per line, sorted
    assert_eq!(ok(&env, &["ls"]), "db1\nweb1\nweb2\n");
    assert_eq!(ok(&env, &["ls", "--running"]), "web2\n");
    assert_eq!(ok(&env, &["ls", "--stopped"]), "db1\nweb1\n");
    assert_eq!(ok(&env, &["ls", "--active"]), "web2\n");
    assert_eq!(ok(&env, &["ls", "^web"]), "web1\nweb2\n");
    assert_eq!(ok(&env, &["ls", "-g", "web,prod"]), "web1\n");
    assert_eq!(ok(&env, &["ls", "-g", "web"]), "web1\nweb2\n");
    let t = ok(&env, &["ls", "-F", "name,autostart,groups,state"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "NAME  AUTOSTART        GROUPS     STATE    ");
    assert_eq!(lines[1], "-".repeat(41));
    assert_eq!(lines[3], "web1  YES (web, prod)  web, prod  STOPPED  ");
    let js: serde_json::Value =
        serde_json::from_str(&ok(&env, &["ls", "--format", "json"])).unwrap();
    assert_eq!(js[2]["name"], "web2");
    assert_eq!(js[2]["state"], "RUNNING");
    assert!(js[2]["pid"].as_i64().unwrap() > 1);
    assert_eq!(js[1]["groups"], serde_json::json!(["web", "prod"]));
    let (_, e) = fails(&env, &["ls", "-F", "name,bogus"]);
    assert!(e.contains("bogus"), "{e}");
    ok(&env, &["stop", "-n", "web2", "-k"]);
}

/// A broken config does not hide the other containers, and says what is wrong, once, on
/// stderr (the default logging: warnings and errors, set up on the first one).
#[test]
fn ls_warns_once_about_a_broken_config_and_lists_it() {
    let env = Env::new();
    let bad = env.lxcpath.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("config"), "lxc.bogus.key = 1\n").unwrap();
    let out = env
        .cmd(&["ls", "--fancy"])
        .env_remove("LXRS_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("bad ") && l.contains("STOPPED")),
        "{listing}"
    );
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    let config = bad.join("config");
    assert!(
        warnings[0].contains(&format!("{}:1", config.display()))
            && warnings[0].contains("lxc.bogus.key"),
        "{err}"
    );
}

fn start_time(env: &Env, name: &str) -> Option<u64> {
    let pid = env.info(name).init_pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

#[test]
fn autostart_walkthrough() {
    let env = Env::new();
    let cfg = nonet(&env);
    for n in ["p1", "p2", "p3"] {
        ok(&env, &["create", "-t", "busybox", "-n", n, "-f", &cfg]);
    }
    let set = |n: &str, k: &str, v: &str| ok(&env, &["config", "set", "-n", n, k, v]);
    set("p1", "lxc.start.auto", "1");
    set("p1", "lxc.group", "ubuntu");
    set("p2", "lxc.start.auto", "1");
    set("p2", "lxc.start.delay", "5");
    set("p2", "lxc.start.order", "100");
    set("p3", "lxc.start.auto", "0");

    assert_eq!(ok(&env, &["autostart", "-L"]), "p2 5\n");
    assert!(env.monitors("p2").is_empty(), "-L does nothing");
    assert_eq!(ok(&env, &["autostart", "-a", "-L"]), "p2 5\np1 0\n");
    assert_eq!(ok(&env, &["autostart", "-a", "-s", "-L"]), "p1\np2\n");
    assert_eq!(ok(&env, &["autostart", "-a", "-k", "-L"]), "p1\np2\n");
    assert_eq!(
        ok(&env, &["autostart", "-a", "-A", "-L"]),
        "p2 5\np1 0\np3 0\n"
    );
    // boot: the onboot group first, then the containers without a group
    assert_eq!(ok(&env, &["autostart", "--boot", "-L"]), "p2 5\n");
    set("p1", "lxc.group", "onboot, ubuntu");
    assert_eq!(ok(&env, &["autostart", "--boot", "-L"]), "p1 0\np2 5\n");
    assert_eq!(ok(&env, &["autostart", "-g", "ubuntu", "-L"]), "p1 0\n");
    set("p1", "lxc.group", "ubuntu");

    let t = Instant::now();
    ok(&env, &["autostart", "-a"]);
    assert!(
        t.elapsed() >= Duration::from_secs(5),
        "p2's delay is waited before p1"
    );
    assert_eq!(env.state("p1").as_str(), "RUNNING");
    assert_eq!(env.state("p2").as_str(), "RUNNING");
    assert_eq!(
        env.state("p3").as_str(),
        "STOPPED",
        "auto 0 is never touched"
    );
    let (s1, s2) = (
        start_time(&env, "p1").unwrap(),
        start_time(&env, "p2").unwrap(),
    );
    let hz = 100; // USER_HZ
    assert!(
        s1 >= s2 + 5 * hz - hz / 2,
        "p2 started first and p1 at least 5 s later ({s2} then {s1})"
    );

    // reboot group ubuntu: p1 gets a new init, p2 keeps its own
    let (p1_init, p2_init) = (
        env.info("p1").init_pid.unwrap(),
        env.info("p2").init_pid.unwrap(),
    );
    ok(&env, &["autostart", "-r", "-g", "ubuntu"]);
    env.wait_for("p1 rebooted", 20, || {
        env.info("p1").init_pid.is_some_and(|p| p != p1_init)
            && env.state("p1").as_str() == "RUNNING"
    });
    assert_eq!(env.info("p2").init_pid, Some(p2_init));

    // kill everything: both stop
    ok(&env, &["autostart", "-a", "-k"]);
    assert_eq!(env.state("p1").as_str(), "STOPPED");
    assert_eq!(env.state("p2").as_str(), "STOPPED");
    assert_eq!(env.state("p3").as_str(), "STOPPED");

    // exit statuses: p2 can't start (its rootfs is gone) → 1 when all fail, 2 when some do
    std::fs::rename(
        env.lxcpath.join("p2/rootfs"),
        env.lxcpath.join("p2/rootfs.away"),
    )
    .unwrap();
    let out = env.run(&["autostart"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = env.run(&["autostart", "-a"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(env.state("p1").as_str(), "RUNNING");
    std::fs::rename(
        env.lxcpath.join("p2/rootfs.away"),
        env.lxcpath.join("p2/rootfs"),
    )
    .unwrap();
    ok(&env, &["autostart", "-a", "-s", "-t", "10"]);
    assert_eq!(env.state("p1").as_str(), "STOPPED");
    assert_eq!(ok(&env, &["autostart", "-a"]).len(), 0);
    ok(&env, &["autostart", "-a", "-k"]);
}

#[test]
fn lxc_busybox_template_script_runs_under_lxrs() {
    let script = "/usr/share/lxc/templates/lxc-busybox";
    assert!(
        Path::new(script).exists(),
        "Debian's lxc package provides {script} (cargo xtask test installs it)"
    );
    let env = Env::new();
    let cfg = nonet(&env);
    ok(&env, &["create", "-t", script, "-n", "lxcbb", "-f", &cfg]);
    let config = std::fs::read_to_string(env.lxcpath.join("lxcbb/config")).unwrap();
    assert!(
        config.starts_with(&format!(
            "# Template used to create this container: {script}\n"
        )),
        "{config}"
    );
    assert!(
        config.contains("lxc.uts.name = \"lxcbb\""),
        "the script appended its lines: {config}"
    );
    ok(&env, &["start", "-n", "lxcbb", "-d"]);
    assert_eq!(
        ok(&env, &["attach", "-n", "lxcbb", "--", "hostname"]).trim(),
        "lxcbb"
    );
    ok(&env, &["stop", "-n", "lxcbb", "-k"]);
    ok(&env, &["destroy", "-n", "lxcbb"]);
}

#[test]
fn config_edits_wait_for_the_container_lock() {
    let env = Env::new();
    let cfg = nonet(&env);
    ok(&env, &["create", "-t", "busybox", "-n", "lk1", "-f", &cfg]);
    // The lock start, stop and destroy take; a holder keeps it for a while.
    let lock = env
        .rundir
        .join("lock")
        .join(env.lxcpath.strip_prefix("/").unwrap())
        .join("lk1");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let ready = env.dir.path().join("holder-ready");
    let mut holder = std::process::Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .arg("-c")
        .arg(format!("touch {}; sleep 1", ready.display()))
        .spawn()
        .unwrap();
    while !ready.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(
        &env,
        &["config", "set", "-n", "lk1", "lxc.start.delay", "7"],
    );
    assert!(
        holder.try_wait().unwrap().is_some(),
        "config set returned while another command held the lock"
    );
    assert_eq!(
        ok(&env, &["config", "get", "-n", "lk1", "lxc.start.delay"]),
        "7\n"
    );
    ok(&env, &["destroy", "-n", "lk1"]);
}
