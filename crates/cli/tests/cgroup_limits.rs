//! cgroup settings from the config read back from the container's cgroup, and nothing left
//! under any cgroup root after a stop or after the monitor is SIGKILLed (followed by `lxrs ls`).
//! Both drivers; root only.

mod cgroup_common;
use cgroup_common::*;

/// `lxc.cgroup.*` (v1) and `lxc.cgroup2.*` (v2) in one config: the other driver's keys are
/// ignored with a warning, as LXC does. On this hybrid host the cgroup2 tree has no
/// controllers, so the v2 setting is a core file.
const LIMITS: &str = "lxc.cgroup.memory.limit_in_bytes = 67108864\n\
                      lxc.cgroup.pids.max = 321\n\
                      lxc.cgroup2.cgroup.max.descendants = 7\n";

fn limits_case(driver: &'static str) {
    let env = Env::new(driver);
    let name = env.name("cglim");
    let init = env.start(&name, LIMITS);
    let rec = env.payload(&name);
    assert_eq!(rec.driver, driver);
    assert!(
        rec.name.starts_with(&format!("lxrs.payload.{name}")),
        "{}",
        rec.name
    );
    let read = |file: &str| -> String {
        let p = rec
            .paths
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {file} in {:?}", rec.paths));
        std::fs::read_to_string(p).unwrap().trim().to_string()
    };
    // init itself sits in the payload cgroup, in every hierarchy (on v1 it moves itself in,
    // one `tasks` file per hierarchy).
    for d in &rec.paths {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|l| l == init.to_string()),
            "init {init} not in {}: {procs:?}",
            d.display()
        );
    }
    match driver {
        "v1" => {
            assert_eq!(read("memory.limit_in_bytes"), "67108864");
            assert_eq!(read("pids.max"), "321");
        }
        _ => assert_eq!(read("cgroup.max.descendants"), "7"),
    }
    // The monitor moves into the shared monitor cgroup once the container runs (after `start`
    // has returned, off the start path).
    let monitor = env.monitor_pid(&name).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let cg = std::fs::read_to_string(format!("/proc/{monitor}/cgroup")).unwrap();
        // The v1 driver uses the v1 hierarchies (and leaves the controller-less unified
        // one alone), the v2 driver the unified one only.
        let placed = cg
            .lines()
            .filter(|l| (driver == "v1") != l.starts_with("0::"))
            .all(|l| l.ends_with("/lxrs.monitor"));
        if placed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{cg}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    env.ok(&["stop", "-n", &name, "-k"]);
    let left = Env::leftover_cgroups(&name);
    assert!(left.is_empty(), "after stop: {left:?}");

    // A bad setting fails the start with the key named, and leaves nothing.
    let bad = env.name("cgbad");
    let config = env.dir.path().join("bad.conf");
    let key = match driver {
        "v1" => "lxc.cgroup.memory.no_such_file",
        _ => "lxc.cgroup2.cgroup.no_such_file",
    };
    std::fs::write(&config, format!("lxc.net.0.type = empty\n{key} = 1\n")).unwrap();
    env.ok(&[
        "create",
        "-t",
        "busybox",
        "-n",
        &bad,
        "-f",
        config.to_str().unwrap(),
    ]);
    let out = env.run(&["start", "-n", &bad, "-d"]);
    assert!(!out.status.success());
    let short = key
        .trim_start_matches("lxc.cgroup2.")
        .trim_start_matches("lxc.cgroup.");
    assert!(text(&out.stderr).contains(short), "{}", text(&out.stderr));
    assert_eq!(env.state(&bad), "STOPPED");
    assert!(
        Env::leftover_cgroups(&bad).is_empty(),
        "{:?}",
        Env::leftover_cgroups(&bad)
    );
}

fn killed_monitor_case(driver: &'static str) {
    let env = Env::new(driver);
    let name = env.name("cgkill");
    let init = env.start(&name, "");
    env.ok(&["freeze", "-n", &name]);
    let monitor = env.monitor_pid(&name).unwrap();
    assert!(!Env::leftover_cgroups(&name).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    env.wait_for("the monitor to die", 10, || {
        std::fs::read_to_string(format!("/proc/{monitor}/stat"))
            .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(true)
    });
    // The next command notices the dead monitor and cleans up: the (frozen) container is
    // killed and both cgroups are removed.
    let out = env.ok(&["ls"]);
    assert!(text(&out.stdout).contains(&name), "{}", text(&out.stdout));
    assert_eq!(env.state(&name), "STOPPED");
    let left = Env::leftover_cgroups(&name);
    assert!(left.is_empty(), "after a killed monitor and ls: {left:?}");
    let gone = std::fs::read_to_string(format!("/proc/{init}/stat"))
        .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(true);
    assert!(gone, "init {init} survived");
}

#[test]
fn limits_read_back_and_cleanup_v1() {
    limits_case("v1");
}

#[test]
fn limits_read_back_and_cleanup_v2() {
    limits_case("v2");
}

#[test]
fn killed_monitor_leaves_no_cgroup_v1() {
    killed_monitor_case("v1");
}

#[test]
fn killed_monitor_leaves_no_cgroup_v2() {
    killed_monitor_case("v2");
}
