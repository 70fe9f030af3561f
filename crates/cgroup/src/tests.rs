//! Unit tests on a fake cgroup tree in a temp dir (no root needed).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::*;

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mounts: CgroupMounts,
}

/// v1 hierarchies cpu, cpuacct, cpuset, memory, devices, freezer, pids, name=systemd and a
/// cgroup2 tree `unified`, as on the hybrid test host.
fn fake() -> Fake {
    // tmpfs when there is one: the collision tests make a thousand directories
    let tmp = tempfile::Builder::new()
        .prefix("lxrs-cgroup-test")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let root = tmp.path().to_path_buf();
    let ctls = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "systemd",
    ];
    let mut text = String::new();
    for (i, c) in ctls.iter().enumerate() {
        fs::create_dir(root.join(c)).unwrap();
        let opt = if *c == "systemd" {
            "name=systemd".to_string()
        } else {
            c.to_string()
        };
        text += &format!(
            "{} 31 0:{} / {}/{c} rw - cgroup cgroup rw,{opt}\n",
            32 + i,
            29 + i,
            root.display()
        );
    }
    fs::create_dir(root.join("unified")).unwrap();
    text += &format!(
        "41 31 0:38 / {}/unified rw - cgroup2 cgroup2 rw\n",
        root.display()
    );
    let mounts = CgroupMounts::parse_mountinfo(&text, Path::new("fake-mountinfo")).unwrap();
    Fake {
        _tmp: tmp,
        root,
        mounts,
    }
}

fn put(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn fake_layout_is_hybrid() {
    let f = fake();
    assert_eq!(f.mounts.layout(), Some(Layout::Hybrid));
    assert_eq!(f.mounts.v1.len(), 8);
}

#[test]
fn names_and_collisions_v1() {
    let f = fake();
    let a = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "web").unwrap();
    assert_eq!(a.name(), "lxrs.payload.web");
    assert_eq!(a.paths().len(), 8);
    assert!(f.root.join("memory/lxrs.payload.web").is_dir());
    assert!(f.root.join("systemd/lxrs.payload.web").is_dir());
    assert!(!f.root.join("unified/lxrs.payload.web").exists());
    // taken in only one hierarchy: the next name is used everywhere, nothing half-made remains
    fs::create_dir(f.root.join("pids/lxrs.payload.web-1")).unwrap();
    let b = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "web").unwrap();
    assert_eq!(b.name(), "lxrs.payload.web-2");
    assert!(!f.root.join("cpu/lxrs.payload.web-1").exists());
    let m = Cgroup::create(&f.mounts, Driver::V1, Kind::Monitor, "web").unwrap();
    assert_eq!(m.name(), "lxrs.monitor.web");
    // the plain name, tried first, taken in a later hierarchy only: undone, the next one used
    fs::create_dir(f.root.join("pids/lxrs.payload.api")).unwrap();
    let c = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "api").unwrap();
    assert_eq!(c.name(), "lxrs.payload.api-1");
    assert!(!f.root.join("cpu/lxrs.payload.api").exists());
    c.remove(Duration::from_millis(100)).unwrap();
    fs::remove_dir(f.root.join("pids/lxrs.payload.api")).unwrap();
    // leftovers of `web`: not `web-x` nor `web-01`, nor another container's monitor
    fs::create_dir(f.root.join("cpu/lxrs.payload.web-x")).unwrap();
    fs::create_dir(f.root.join("cpu/lxrs.payload.web-01")).unwrap();
    fs::create_dir(f.root.join("cpu/lxrs.payload.webby")).unwrap();
    assert_eq!(
        Cgroup::leftovers(&f.mounts, Driver::V1, Kind::Payload, "web").unwrap(),
        vec![
            "lxrs.payload.web",
            "lxrs.payload.web-1",
            "lxrs.payload.web-2"
        ]
    );
    // open by the recorded name, remove
    let again = Cgroup::open_existing(&f.mounts, Driver::V1, b.name()).unwrap();
    assert_eq!(again.paths(), b.paths());
    again.remove(Duration::from_millis(100)).unwrap();
    assert!(!f.root.join("cpu/lxrs.payload.web-2").exists());
    let e = Cgroup::open_existing(&f.mounts, Driver::V1, "lxrs.payload.web-2").unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    a.remove(Duration::from_millis(100)).unwrap();
    m.remove(Duration::from_millis(100)).unwrap();
}

#[test]
fn names_v2_and_exhaustion() {
    let f = fake();
    let u = f.root.join("unified");
    fs::create_dir(u.join("lxrs.payload.db")).unwrap();
    for n in 1..=998 {
        fs::create_dir(u.join(format!("lxrs.payload.db-{n}"))).unwrap();
    }
    let c = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "db").unwrap();
    assert_eq!(c.name(), "lxrs.payload.db-999");
    assert_eq!(c.paths(), vec![u.join("lxrs.payload.db-999")]);
    let e = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "db").unwrap_err();
    assert!(e.to_string().contains("lxrs.payload.db-999"), "{e}");
    assert_eq!(
        Cgroup::leftovers(&f.mounts, Driver::V2, Kind::Payload, "db")
            .unwrap()
            .len(),
        1000
    );
}

#[test]
fn bad_names() {
    let f = fake();
    for n in ["", "a/b", "x\ny"] {
        let e = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, n).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
    }
    assert!(Cgroup::open_existing(&f.mounts, Driver::V1, "..").is_err());
    let none = CgroupMounts::default();
    let e = Cgroup::create(&none, Driver::V2, Kind::Payload, "x").unwrap_err();
    assert!(
        matches!(
            e,
            Error::NoHierarchy {
                driver: Driver::V2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn cpuset_is_initialised_from_the_parent() {
    let tmp = tempfile::tempdir().unwrap();
    put(&tmp.path().join("cpuset.cpus"), "0-3\n");
    put(&tmp.path().join("cpuset.mems"), "0\n");
    let child = tmp.path().join("lxrs.payload.c");
    fs::create_dir(&child).unwrap();
    put(&child.join("cpuset.cpus"), "");
    put(&child.join("cpuset.mems"), "\n");
    V1Cgroup::init_cpuset(&child).unwrap();
    assert_eq!(
        fs::read_to_string(child.join("cpuset.cpus")).unwrap(),
        "0-3"
    );
    assert_eq!(
        fs::read_to_string(child.join("cpuset.mems"))
            .unwrap()
            .trim(),
        "0"
    );
}

#[test]
fn limits_v1_order_and_errors() {
    let f = fake();
    let c = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "lim").unwrap();
    let mem = f.root.join("memory/lxrs.payload.lim");
    put(&mem.join("memory.memsw.limit_in_bytes"), "");
    put(&f.root.join("cpu/lxrs.payload.lim/cpu.shares"), "");
    let s = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // memory.limit_in_bytes is missing: memsw (first in config) must not have been written
    // before the failing key, which proves it is moved last.
    let e = c
        .apply_limits(&s(&[
            ("memory.memsw.limit_in_bytes", "200M"),
            ("cpu.shares", "512"),
            ("memory.limit_in_bytes", "100M"),
        ]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::NoSuchSetting { key, .. } if key == "memory.limit_in_bytes"),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(mem.join("memory.memsw.limit_in_bytes")).unwrap(),
        ""
    );
    assert_eq!(
        fs::read_to_string(f.root.join("cpu/lxrs.payload.lim/cpu.shares")).unwrap(),
        "512"
    );
    put(&mem.join("memory.limit_in_bytes"), "");
    c.apply_limits(&s(&[
        ("memory.memsw.limit_in_bytes", "200M"),
        ("memory.limit_in_bytes", "100M"),
    ]))
    .unwrap();
    assert_eq!(c.get("memory.limit_in_bytes").unwrap(), "100M");
    assert_eq!(
        c.get("lxc.cgroup.memory.memsw.limit_in_bytes").unwrap(),
        "200M"
    );
    let e = c.set("blkio.weight", "100").unwrap_err();
    assert!(matches!(e, Error::ControllerNotMounted { .. }), "{e}");
    assert!(e.to_string().contains("\"blkio.weight\""), "{e}");
    let e = c.set("memory", "1").unwrap_err();
    assert!(matches!(e, Error::InvalidKey { .. }), "{e}");
    for p in c.paths() {
        for f in fs::read_dir(&p).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    c.remove(Duration::from_millis(100)).unwrap();
}

#[test]
fn limits_v2_missing_controller_is_explained() {
    let f = fake();
    let c = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "lim").unwrap();
    let dir = f.root.join("unified/lxrs.payload.lim");
    put(&dir.join("cgroup.controllers"), "\n");
    put(&dir.join("pids.max"), "");
    let e = c.set("memory.max", "100M").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ControllerNotEnabled { .. }), "{msg}");
    assert!(
        msg.contains("\"memory.max\"") && msg.contains("\"memory\" is not enabled"),
        "{msg}"
    );
    c.set("lxc.cgroup2.pids.max", "10").unwrap();
    assert_eq!(c.get("pids.max").unwrap(), "10");
    put(&dir.join("cgroup.controllers"), "memory pids\n");
    let e = c.set("memory.nonsense", "1").unwrap_err();
    assert!(matches!(e, Error::NoSuchSetting { .. }), "{e}");
    let e = c.set("devices.allow", "c 1:3 rwm").unwrap_err();
    assert!(e.to_string().contains("eBPF"), "{e}");
}

#[test]
fn freezer_v1_fake_file() {
    let f = fake();
    let c = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "fz").unwrap();
    let state = f.root.join("freezer/lxrs.payload.fz/freezer.state");
    put(&state, "THAWED\n");
    assert_eq!(c.state().unwrap(), FreezerState::Thawed);
    c.freeze().unwrap();
    assert_eq!(c.state().unwrap(), FreezerState::Frozen);
    c.freeze().unwrap();
    c.thaw().unwrap();
    assert_eq!(c.state().unwrap(), FreezerState::Thawed);
    put(&state, "FREEZING\n");
    assert_eq!(c.state().unwrap(), FreezerState::Freezing);
    put(&state, "bogus\n");
    let e = c.state().unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn freezer_v2_fake_files() {
    let f = fake();
    let c = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "fz").unwrap();
    let dir = f.root.join("unified/lxrs.payload.fz");
    let e = c.state().unwrap_err();
    assert!(matches!(e, Error::NoFreezer { .. }), "{e}");
    put(&dir.join("cgroup.freeze"), "0\n");
    put(&dir.join("cgroup.events"), "populated 1\nfrozen 0\n");
    assert_eq!(c.state().unwrap(), FreezerState::Thawed);
    // the kernel never reports `frozen 1`: the freeze times out and is thawed back
    let e = c.freeze_timeout(Duration::from_millis(40)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::FreezeTimeout {
                state: FreezerState::Freezing,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "0"
    );
    // frozen: freezing again is a no-op
    put(&dir.join("cgroup.freeze"), "1\n");
    put(&dir.join("cgroup.events"), "populated 1\nfrozen 1\n");
    assert_eq!(c.state().unwrap(), FreezerState::Frozen);
    c.freeze().unwrap();
}

#[test]
fn stats_from_files() {
    let f = fake();
    let c = Cgroup::create(&f.mounts, Driver::V1, Kind::Payload, "st").unwrap();
    let r = |p: &str| f.root.join(p).join("lxrs.payload.st");
    put(&r("memory").join("memory.usage_in_bytes"), "1048576\n");
    put(
        &r("memory").join("memory.memsw.usage_in_bytes"),
        "1572864\n",
    );
    put(&r("cpuacct").join("cpuacct.usage"), "987654321\n");
    put(&r("pids").join("pids.current"), "3\n");
    let s = c.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            memory_bytes: Some(1048576),
            swap_bytes: Some(524288),
            cpu_ns: Some(987654321),
            processes: Some(3)
        }
    );
    // no memsw: swap from memory.stat; no pids controller: count cgroup.procs
    fs::remove_file(r("memory").join("memory.memsw.usage_in_bytes")).unwrap();
    put(
        &r("memory").join("memory.stat"),
        "cache 0\nrss 4096\nswap 8192\n",
    );
    fs::remove_file(r("pids").join("pids.current")).unwrap();
    put(&r("cpu").join("cgroup.procs"), "10\n11\n");
    let s = c.stats().unwrap();
    assert_eq!(s.swap_bytes, Some(8192));
    assert_eq!(s.processes, Some(2));

    let c2 = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "st").unwrap();
    let d = f.root.join("unified/lxrs.payload.st");
    put(
        &d.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    );
    put(&d.join("cgroup.procs"), "42\n");
    let s = c2.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            memory_bytes: None,
            swap_bytes: None,
            cpu_ns: Some(1_500_000),
            processes: Some(1)
        }
    );
    put(&d.join("memory.current"), "4096\n");
    put(&d.join("memory.swap.current"), "0\n");
    put(&d.join("pids.current"), "5\n");
    let s = c2.stats().unwrap();
    assert_eq!(
        (s.memory_bytes, s.swap_bytes, s.processes),
        (Some(4096), Some(0), Some(5))
    );
}

#[test]
fn v2_device_update_needs_the_installed_list() {
    let f = fake();
    let mut c = Cgroup::create(&f.mounts, Driver::V2, Kind::Payload, "dv").unwrap();
    let e = c
        .add_device_rule(DeviceRule::node(true, DeviceType::Char, 10, 200))
        .unwrap_err();
    assert!(e.to_string().contains("c 10:200 rwm"), "{e}");
    assert!(c.device_prog_fd().is_none());
}

#[test]
fn removal_kills_others_and_moves_the_caller_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join("lxrs.monitor.m");
    let inner = dir.join("inner");
    fs::create_dir_all(&inner).unwrap();
    put(&root.join("cgroup.procs"), "");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let me = std::process::id() as i32;
    put(&dir.join("cgroup.procs"), &format!("{me}\n"));
    put(&inner.join("cgroup.procs"), &format!("{}\n", sleeper.id()));
    let r = crate::cgroup::kill_all(root, &dir, me);
    let status = sleeper.wait().unwrap();
    r.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert_eq!(
        fs::read_to_string(root.join("cgroup.procs")).unwrap(),
        me.to_string()
    );
}

#[test]
fn shared_cgroup_is_made_once_and_removed_only_when_unused() {
    let f = fake();
    Cgroup::shared(&f.mounts, Driver::V1, "lxrs.monitor").unwrap();
    // Again: an existing one is fine.
    let cg = Cgroup::shared(&f.mounts, Driver::V1, "lxrs.monitor").unwrap();
    assert_eq!(cg.name(), "lxrs.monitor");
    let procs = f.root.join("memory/lxrs.monitor/cgroup.procs");
    put(&procs, "42\n");
    let wait = Duration::from_millis(5);
    // Another monitor inside: kept.
    assert!(!Cgroup::remove_shared_if_unused(&f.mounts, "lxrs.monitor", None, wait).unwrap());
    // Only the exiting one, which does not leave within the wait: kept.
    assert!(!Cgroup::remove_shared_if_unused(&f.mounts, "lxrs.monitor", Some(42), wait).unwrap());
    assert!(f.root.join("cpu/lxrs.monitor").is_dir());
    // Empty: gone from every hierarchy (the v2 driver's tree had none).
    fs::remove_file(&procs).unwrap();
    assert!(Cgroup::remove_shared_if_unused(&f.mounts, "lxrs.monitor", Some(42), wait).unwrap());
    for c in ["cpu", "memory", "systemd", "unified"] {
        assert!(!f.root.join(c).join("lxrs.monitor").exists(), "{c}");
    }
    // Nothing there: nothing to do.
    assert!(Cgroup::remove_shared_if_unused(&f.mounts, "lxrs.monitor", None, wait).unwrap());
}
