//! Root integration tests against the real kernel, on both drivers (v1: every mounted v1
//! hierarchy; v2: the cgroup2 mount). Every cgroup and process is removed by Drop guards,
//! names are unique per process and test (pid + counter), so runs are parallel-safe and
//! re-runnable.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lxrs_cgroup::*;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "test{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn mounts(driver: Driver) -> CgroupMounts {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (real cgroups)"
    );
    let m = CgroupMounts::host().unwrap();
    assert!(m.supports(driver), "host has no {driver} cgroups: {m:?}");
    m
}

/// Removes the cgroup when dropped (also on test failure).
struct CgGuard(Cgroup);

impl Drop for CgGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove(DEFAULT_REMOVE_TIMEOUT) {
            eprintln!("cleanup of {}: {e}", self.0.name());
        }
    }
}

impl std::ops::Deref for CgGuard {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

impl std::ops::DerefMut for CgGuard {
    fn deref_mut(&mut self) -> &mut Cgroup {
        &mut self.0
    }
}

fn create(driver: Driver, tag: &str) -> CgGuard {
    let m = mounts(driver);
    CgGuard(Cgroup::create(&m, driver, Kind::Payload, &unique(tag)).unwrap())
}

/// Kills and reaps the child when dropped. It may be in a frozen cgroup (a frozen v1 task does
/// not die of SIGKILL until thawed), so the cgroup is thawed first; the wait is bounded.
struct ChildGuard(Child, Vec<PathBuf>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        for dir in &self.1 {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!("child {} did not die", self.0.id());
    }
}

/// Spawn `sh -c SCRIPT sh ARGS...` that first waits for a line on stdin, place it in `cg`
/// before it runs anything else, then release it.
fn spawn_in(cg: &Cgroup, script: &str, args: &[&str]) -> ChildGuard {
    let mut child = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        cg.paths(),
    );
    cg.add_pid(child.0.id() as i32).unwrap();
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    child
}

fn counter(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Wait (bounded) until the counter file exceeds `above`.
fn wait_counter_above(path: &Path, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = counter(path) {
            if v > above {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "counter in {} stuck at {above}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn freeze_thaw(driver: Driver) {
    let cg = create(driver, "freeze");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("counter");
    let file_s = file.to_str().unwrap();
    let _child = spawn_in(
        &cg,
        r#"i=0; while :; do i=$((i+1)); echo $i > "$1.tmp"; mv "$1.tmp" "$1"; done"#,
        &[file_s],
    );
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    wait_counter_above(&file, 0);
    cg.freeze().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Frozen);
    let frozen_at = counter(&file).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        counter(&file).unwrap(),
        frozen_at,
        "counter moved while frozen"
    );
    cg.freeze().unwrap(); // freezing twice is harmless
    assert_eq!(cg.state().unwrap(), FreezerState::Frozen);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(counter(&file).unwrap(), frozen_at);
    cg.thaw().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    wait_counter_above(&file, frozen_at);
    cg.thaw().unwrap(); // thawing a thawed cgroup: nothing to do
}

#[test]
fn v1_freeze_thaw() {
    freeze_thaw(Driver::V1);
}

#[test]
fn v2_freeze_thaw() {
    freeze_thaw(Driver::V2);
}

/// Open `node` read-write from a process inside `cg`: Ok(()) or the shell's error text.
fn open_in(cg: &Cgroup, node: &Path) -> Result<(), String> {
    let mut child = spawn_in(
        cg,
        r#"if exec 3<>"$1"; then echo OPENED; fi"#,
        &[node.to_str().unwrap()],
    );
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.0.wait().unwrap();
    if stdout.contains("OPENED") {
        Ok(())
    } else {
        Err(stderr)
    }
}

fn mknod(dir: &Path, name: &str, major: u64, minor: u64) -> PathBuf {
    let path = dir.join(name);
    nix::sys::stat::mknod(
        &path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
    path
}

fn device_filter(driver: Driver) {
    let mut cg = create(driver, "dev");
    let tmp = tempfile::tempdir().unwrap();
    let tun = mknod(tmp.path(), "tun", 10, 200);
    let null = Path::new("/dev/null");
    // without a filter both open
    open_in(&cg, &tun).unwrap();
    cg.set_devices(&DeviceRules::lxc_default()).unwrap();
    if driver == Driver::V2 {
        assert!(cg.device_prog_fd().is_some());
    }
    let e = open_in(&cg, &tun).unwrap_err();
    assert!(e.contains("Operation not permitted"), "{e}");
    open_in(&cg, null).unwrap();
    // `device add` at runtime
    cg.add_device_rule(DeviceRule::node(true, DeviceType::Char, 10, 200))
        .unwrap();
    open_in(&cg, &tun).unwrap();
    open_in(&cg, null).unwrap();
    // `device del`
    cg.add_device_rule(DeviceRule::parse(false, "c 10:200 rwm").unwrap())
        .unwrap();
    let e = open_in(&cg, &tun).unwrap_err();
    assert!(e.contains("Operation not permitted"), "{e}");
    // and back: the replaced program must not linger
    cg.add_device_rule(DeviceRule::node(true, DeviceType::Char, 10, 200))
        .unwrap();
    open_in(&cg, &tun).unwrap();
    // a reset `deny = a` blocks /dev/null too
    let mut none = DeviceRules::lxc_default();
    none.add_text(false, "a").unwrap();
    cg.set_devices(&none).unwrap();
    let e = open_in(&cg, null).unwrap_err();
    assert!(e.contains("Operation not permitted"), "{e}");
}

#[test]
fn v1_device_filter() {
    device_filter(Driver::V1);
}

#[test]
fn v2_device_filter() {
    device_filter(Driver::V2);
}

#[test]
fn v2_device_filter_replaced_from_another_handle() {
    // A new handle (another process after a monitor restart) holds no program fd: it must
    // find and replace the attached program rather than stack a second one.
    let m = mounts(Driver::V2);
    let mut cg = create(Driver::V2, "devre");
    let tmp = tempfile::tempdir().unwrap();
    let tun = mknod(tmp.path(), "tun", 10, 200);
    cg.set_devices(&DeviceRules::lxc_default()).unwrap();
    assert!(open_in(&cg, &tun).is_err());
    let mut other = Cgroup::open_existing(&m, Driver::V2, cg.name()).unwrap();
    let mut rules = DeviceRules::lxc_default();
    rules.add(DeviceRule::node(true, DeviceType::Char, 10, 200));
    other.set_devices(&rules).unwrap();
    open_in(&cg, &tun).unwrap();
    drop(other); // closes its fd; the attachment stays
    open_in(&cg, &tun).unwrap();
    let e = open_in(&cg, Path::new("/dev/kmsg")).unwrap_err();
    assert!(e.contains("Operation not permitted"), "{e}");
}

#[test]
fn v1_limits_read_back_in_order() {
    let cg = create(Driver::V1, "lim");
    let s = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // memsw must be >= the memory limit, so it only works when written last
    cg.apply_limits(&s(&[
        ("memory.memsw.limit_in_bytes", "128M"),
        ("memory.limit_in_bytes", "64M"),
        ("pids.max", "50"),
    ]))
    .unwrap();
    assert_eq!(cg.get("memory.limit_in_bytes").unwrap(), "67108864");
    assert_eq!(cg.get("memory.memsw.limit_in_bytes").unwrap(), "134217728");
    assert_eq!(cg.get("pids.max").unwrap(), "50");
    let e = cg.set("memory.no_such_file", "1").unwrap_err();
    assert!(matches!(e, Error::NoSuchSetting { .. }), "{e}");
    let e = cg.set("pids.max", "lots").unwrap_err();
    assert!(e.to_string().contains("pids.max = \"lots\""), "{e}");
}

#[test]
fn v2_limits_explain_missing_controllers() {
    let cg = create(Driver::V2, "lim");
    let enabled = std::fs::read_to_string(cg.paths()[0].join("cgroup.controllers")).unwrap();
    if !enabled.split_whitespace().any(|c| c == "memory") {
        let e = cg.set("memory.max", "64M").unwrap_err();
        assert!(matches!(e, Error::ControllerNotEnabled { .. }), "{e}");
        assert!(e.to_string().contains("\"memory.max\""), "{e}");
    } else {
        cg.set("memory.max", "64M").unwrap();
        assert_eq!(cg.get("memory.max").unwrap(), "67108864");
    }
    // a core file works without controllers
    cg.set("cgroup.max.descendants", "5").unwrap();
    assert_eq!(cg.get("cgroup.max.descendants").unwrap(), "5");
}

fn removal(driver: Driver, frozen: bool, nested: bool) {
    let m = mounts(driver);
    let cg = CgGuard(Cgroup::create(&m, driver, Kind::Payload, &unique("rm")).unwrap());
    let guard_paths = cg.paths();
    let mut children = Vec::new();
    children.push(spawn_in(&cg, "sleep 600", &[]));
    if nested {
        // the container made its own cgroup below ours and has a process in it
        let sub_dir = cg.paths()[0].join("inner");
        std::fs::create_dir(&sub_dir).unwrap();
        let child = spawn_in(&cg, "sleep 600", &[]);
        std::fs::write(sub_dir.join("cgroup.procs"), child.0.id().to_string()).unwrap();
        children.push(child);
    }
    // wait until sh has exec'd sleep (it is past `read`)
    std::thread::sleep(Duration::from_millis(50));
    if frozen {
        cg.freeze().unwrap();
    }
    let r = cg.remove(DEFAULT_REMOVE_TIMEOUT);
    let gone = guard_paths.iter().all(|p| !p.exists());
    for mut c in children {
        let status = c.0.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    r.unwrap();
    assert!(gone, "left behind: {guard_paths:?}");
    assert!(Cgroup::open_existing(&m, driver, cg.name()).is_err());
}

#[test]
fn v1_remove_with_processes_inside() {
    removal(Driver::V1, false, false);
}

#[test]
fn v2_remove_with_processes_inside() {
    removal(Driver::V2, false, false);
}

#[test]
fn v1_remove_frozen_and_nested() {
    removal(Driver::V1, true, true);
}

#[test]
fn v2_remove_frozen_and_nested() {
    removal(Driver::V2, true, true);
}

fn leftovers(driver: Driver) {
    let m = mounts(driver);
    let name = unique("left");
    let first = CgGuard(Cgroup::create(&m, driver, Kind::Payload, &name).unwrap());
    let second = CgGuard(Cgroup::create(&m, driver, Kind::Payload, &name).unwrap());
    assert_eq!(second.name(), format!("lxrs.payload.{name}-1"));
    let monitor = CgGuard(Cgroup::create(&m, driver, Kind::Monitor, &name).unwrap());
    assert_eq!(monitor.name(), format!("lxrs.monitor.{name}"));
    // the next command (after a SIGKILLed monitor) finds it by name and removes it; the
    // guard only cleans up should the test fail
    let recorded = second.name().to_string();
    let found = Cgroup::leftovers(&m, driver, Kind::Payload, &name).unwrap();
    assert_eq!(found, vec![first.name().to_string(), recorded.clone()]);
    let again = Cgroup::open_existing(&m, driver, &recorded).unwrap();
    let _child = spawn_in(&again, "sleep 600", &[]);
    again.remove(DEFAULT_REMOVE_TIMEOUT).unwrap();
    assert_eq!(
        Cgroup::leftovers(&m, driver, Kind::Payload, &name).unwrap(),
        vec![first.name().to_string()]
    );
}

#[test]
fn v1_leftovers() {
    leftovers(Driver::V1);
}

#[test]
fn v2_leftovers() {
    leftovers(Driver::V2);
}

fn stats(driver: Driver) {
    let cg = create(driver, "stats");
    let empty = cg.stats().unwrap();
    assert_eq!(empty.processes, Some(0));
    let _a = spawn_in(
        &cg,
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 600",
        &[],
    );
    let _b = spawn_in(&cg, "sleep 600", &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = cg.stats().unwrap();
        if s.cpu_ns.unwrap_or(0) > 0 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(s.processes.unwrap() >= 2, "{s:?}");
    assert!(s.cpu_ns.unwrap() > 0, "{s:?}");
    let dir = &cg.paths()[0];
    match driver {
        Driver::V1 => assert!(s.memory_bytes.unwrap() > 0, "{s:?}"),
        Driver::V2 => assert_eq!(
            s.memory_bytes.is_some(),
            dir.join("memory.current").exists()
        ),
    }
}

#[test]
fn v1_stats() {
    stats(Driver::V1);
}

#[test]
fn v2_stats() {
    stats(Driver::V2);
}

#[test]
fn rejected_program_reports_the_verifier_log() {
    assert!(nix::unistd::geteuid().is_root(), "needs root (bpf)");
    let ok = lxrs_cgroup::devices::bpf::compile(&DeviceRules::lxc_default());
    lxrs_cgroup::devices::load_program(&ok, Path::new("/test")).unwrap();
    // falls off the end: no exit
    let bad = &ok[..ok.len() - 1];
    let e = lxrs_cgroup::devices::load_program(bad, Path::new("/test/cg")).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::BpfLoad { ref log, .. } if !log.is_empty()),
        "{msg}"
    );
    assert!(
        msg.contains("/test/cg") && msg.contains("verifier log"),
        "{msg}"
    );
}
