//! `lxrs freeze` / `lxrs unfreeze` on both cgroup drivers (reference §2.6, §10.3): a process
//! counting inside a frozen container does not advance until thawed; freezing twice and
//! unfreezing a running container are harmless; `stop -k` kills a frozen container; a stopped
//! container gets exit 1 and "Failed to freeze". Root only.

mod cgroup_common;
use cgroup_common::*;
use std::time::Duration;

/// The kernel's own view of the payload cgroup's freezer.
fn kernel_frozen(env: &Env, name: &str) -> bool {
    let rec = env.payload(name);
    match env.driver {
        "v1" => rec.paths.iter().any(|p| {
            std::fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        }),
        _ => std::fs::read_to_string(rec.paths[0].join("cgroup.events"))
            .unwrap()
            .lines()
            .any(|l| l == "frozen 1"),
    }
}

fn freeze_case(driver: &'static str) {
    let env = Env::new(driver);
    let name = env.name("cgfz");
    let init = env.start(&name, "");
    assert_eq!(env.state(&name), "RUNNING");

    // Unfreezing a running container: nothing to do, success.
    env.ok(&["unfreeze", "-n", &name]);
    assert_eq!(env.state(&name), "RUNNING");

    env.ok(&["freeze", "-n", &name]);
    assert_eq!(env.state(&name), "FROZEN");
    assert!(
        kernel_frozen(&env, &name),
        "the kernel reports the cgroup frozen"
    );
    let frozen_at = env.count(init);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        env.count(init),
        frozen_at,
        "the counter must not advance while frozen"
    );

    // Freezing again: a no-op success; still frozen, still not counting.
    let out = env.ok(&["freeze", "-n", &name]);
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    assert_eq!(env.state(&name), "FROZEN");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.count(init), frozen_at);

    env.ok(&["unfreeze", "-n", &name]);
    assert_eq!(env.state(&name), "RUNNING");
    assert!(!kernel_frozen(&env, &name));
    env.wait_for("the counter to advance after unfreeze", 10, || {
        env.count(init) > frozen_at + 2
    });

    // stop -k on a frozen container: it is thawed so it dies, and everything goes.
    env.ok(&["freeze", "-n", &name]);
    assert_eq!(env.state(&name), "FROZEN");
    env.ok(&["stop", "-n", &name, "-k"]);
    assert_eq!(env.state(&name), "STOPPED");
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
            s.is_empty() || s[s.rfind(')').unwrap() + 2..].starts_with('Z')
        }
    );
    assert!(
        Env::leftover_cgroups(&name).is_empty(),
        "{:?}",
        Env::leftover_cgroups(&name)
    );

    // Not running: exit 1 with LXC's wording.
    for (cmd, verb) in [
        ("freeze", "Failed to freeze"),
        ("unfreeze", "Failed to unfreeze"),
    ] {
        let out = env.run(&[cmd, "-n", &name]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(verb) && err.contains("not running"), "{err}");
    }
}

#[test]
fn freeze_and_unfreeze_v1() {
    freeze_case("v1");
}

#[test]
fn freeze_and_unfreeze_v2() {
    freeze_case("v2");
}
