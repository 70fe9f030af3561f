//! Root integration test of the built-in `debian` template: debootstrap from deb.debian.org
//! into a fresh cache (minutes), a second create copied from the cache (seconds), systemd boots
//! in the container, attach reads /etc/os-release, a clean stop shuts it down.
//!
//! `LXRS_BIN` may name the binary to test (default: this package's `lxrs`).

mod lifecycle_common;

use lifecycle_common::{text, Env};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    std::env::var_os("LXRS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lxrs").into())
}

fn run(env: &Env, cache: &std::path::Path, args: &[&str], path: Option<&str>) -> Output {
    let mut c = Command::new(bin());
    c.arg("-P")
        .arg(&env.lxcpath)
        .args(args)
        .env("LXRS_RUNDIR", &env.rundir)
        .env("LXRS_CACHE_DIR", cache);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.stdin(Stdio::null()).output().expect("run lxrs")
}

fn ok(env: &Env, cache: &std::path::Path, args: &[&str]) -> String {
    let o = run(env, cache, args, None);
    assert!(
        o.status.success(),
        "lxrs {args:?} failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Wait (bounded) until systemd in `name` answers `systemctl` (any state), for tests that
/// want a booted system.
fn wait_systemd_up(env: &Env, cache: &std::path::Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let o = run(
            env,
            cache,
            &["attach", "-n", name, "--", "systemctl", "is-system-running"],
            None,
        );
        if !text(&o.stdout).trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "systemd in {name} never answered: {}",
            text(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn missing_debootstrap_is_named_before_anything_is_created() {
    let env = Env::new();
    let cache = env.dir.path().join("cache");
    let o = run(
        &env,
        &cache,
        &["create", "-n", "d", "-t", "debian"],
        Some("/nonexistent"),
    );
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("'debootstrap'") && e.contains("Debian package: debootstrap"),
        "{e}"
    );
    assert!(!env.lxcpath.join("d").exists());
    assert!(
        !cache.exists(),
        "nothing may be created before the tool check"
    );
}

#[test]
fn debian_cache_then_fast_copy_boots_systemd_and_stops_cleanly() {
    let env = Env::new();
    let cache = env.dir.path().join("cache");
    let cfg = env.dir.path().join("nonet.conf");
    std::fs::write(&cfg, "lxc.net.0.type = empty\n").unwrap();
    let cfg = cfg.to_str().unwrap();

    let t0 = Instant::now();
    ok(
        &env,
        &cache,
        &["create", "-n", "deb1", "-f", cfg, "-t", "debian"],
    );
    let first = t0.elapsed();
    assert!(cache
        .join("debian/bookworm/amd64/default/rootfs/etc/debian_version")
        .is_file());
    let t1 = Instant::now();
    ok(
        &env,
        &cache,
        &[
            "create",
            "-n",
            "deb2",
            "-f",
            cfg,
            "-t",
            "debian",
            "--",
            "--password",
            "s3cret",
        ],
    );
    let second = t1.elapsed();
    eprintln!("debian create: first (debootstrap into the cache) {first:?}, second (from the cache) {second:?}");
    let shadow = std::fs::read_to_string(env.lxcpath.join("deb2/rootfs/etc/shadow")).unwrap();
    assert!(
        shadow.starts_with("root:$"),
        "root password set: {}",
        shadow.lines().next().unwrap()
    );
    let conf = std::fs::read_to_string(env.lxcpath.join("deb2/config")).unwrap();
    assert!(conf.contains("lxc.signal.halt = SIGRTMIN+3"), "{conf}");
    assert_eq!(
        std::fs::read_to_string(env.lxcpath.join("deb2/rootfs/etc/hostname")).unwrap(),
        "deb2\n"
    );

    ok(&env, &cache, &["start", "-n", "deb2", "-d"]);
    let osr = ok(
        &env,
        &cache,
        &["attach", "-n", "deb2", "--", "cat", "/etc/os-release"],
    );
    assert!(
        osr.contains("ID=debian") && osr.contains("bookworm"),
        "{osr}"
    );
    // systemd is PID 1 and gets far enough to report a state
    let comm = ok(
        &env,
        &cache,
        &["attach", "-n", "deb2", "--", "cat", "/proc/1/comm"],
    );
    assert_eq!(comm.trim(), "systemd");
    // systemctl talks to PID 1 over /run/systemd/private: retry until systemd answers
    let deadline = Instant::now() + Duration::from_secs(90);
    let state = loop {
        let o = run(
            &env,
            &cache,
            &[
                "attach",
                "-n",
                "deb2",
                "--",
                "systemctl",
                "is-system-running",
            ],
            None,
        );
        let s = text(&o.stdout).trim().to_string();
        let settled = !s.is_empty() && s != "starting" && s != "initializing";
        if settled || Instant::now() > deadline {
            break format!(
                "{s}{}",
                if s.is_empty() {
                    text(&o.stderr)
                } else {
                    String::new()
                }
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let failed = run(
        &env,
        &cache,
        &[
            "attach",
            "-n",
            "deb2",
            "--",
            "systemctl",
            "--failed",
            "--no-legend",
            "--plain",
        ],
        None,
    );
    let failed = format!("{}{}", text(&failed.stdout), text(&failed.stderr));
    eprintln!("systemctl is-system-running: {state}; failed units: {failed}");
    assert!(
        state == "running" || state == "degraded",
        "systemd state {state}; failed: {failed}"
    );
    // a clean stop: SIGRTMIN+3 makes systemd shut down
    let t = Instant::now();
    ok(
        &env,
        &cache,
        &["stop", "-n", "deb2", "-t", "60", "--nokill"],
    );
    eprintln!("clean stop took {:?}", t.elapsed());
    let info = ok(&env, &cache, &["info", "-n", "deb2"]);
    assert!(info.contains("STOPPED"), "{info}");

    // -B overlay: the cache is the lower layer, made in constant time, boots the same way
    let t2 = Instant::now();
    ok(
        &env,
        &cache,
        &[
            "create", "-n", "deb3", "-f", cfg, "-t", "debian", "-B", "overlay",
        ],
    );
    eprintln!("debian create -B overlay: {:?}", t2.elapsed());
    let conf = std::fs::read_to_string(env.lxcpath.join("deb3/config")).unwrap();
    let lower = cache.join("debian/bookworm/amd64/default/rootfs");
    assert!(
        conf.contains(&format!("lxc.rootfs.path = overlay:{}:", lower.display())),
        "{conf}"
    );
    ok(&env, &cache, &["start", "-n", "deb3", "-d"]);
    assert_eq!(
        ok(&env, &cache, &["attach", "-n", "deb3", "--", "hostname"]).trim(),
        "deb3"
    );
    ok(
        &env,
        &cache,
        &["attach", "-n", "deb3", "--", "touch", "/only-in-deb3"],
    );
    wait_systemd_up(&env, &cache, "deb3");
    ok(
        &env,
        &cache,
        &["stop", "-n", "deb3", "-t", "60", "--nokill"],
    );
    assert!(env.lxcpath.join("deb3/delta0/only-in-deb3").exists());
    // A clean stop at once after start -d: PID 1 of a namespace drops a signal it neither
    // catches nor blocks, so the monitor holds SIGRTMIN+3 back until systemd takes it
    // (blocked for its signalfd) instead of losing it (--nokill: a lost one fails this).
    for _ in 0..2 {
        ok(&env, &cache, &["start", "-n", "deb3", "-d"]);
        ok(
            &env,
            &cache,
            &["stop", "-n", "deb3", "-t", "60", "--nokill"],
        );
    }
    assert!(!lower.join("only-in-deb3").exists());
    // the cache cannot be flushed from under it
    let o = run(
        &env,
        &cache,
        &[
            "create",
            "-n",
            "deb4",
            "-f",
            cfg,
            "-t",
            "debian",
            "--",
            "--flush-cache",
        ],
        None,
    );
    assert!(
        !o.status.success() && text(&o.stderr).contains("overlay lower layer"),
        "{}",
        text(&o.stderr)
    );
    assert!(!env.lxcpath.join("deb4").exists());
    ok(&env, &cache, &["destroy", "-n", "deb3"]);
}

/// `--arch i386` on an amd64 host: debootstrap --arch=i386 from Debian's mirror into its own
/// cache entry, `lxc.arch = i686` in the config, and the runtime's personality makes the
/// container 32-bit (uname -m says i686; dpkg says i386). Runs in parallel with the amd64 test:
/// each test has its own cache directory, and the two entries differ by arch anyway.
#[test]
fn debian_i386_on_amd64_is_a_32bit_container() {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "this test builds an i386 container on an x86_64 host"
    );
    let env = Env::new();
    let cache = env.dir.path().join("cache");
    let cfg = env.dir.path().join("nonet.conf");
    std::fs::write(&cfg, "lxc.net.0.type = empty\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let t0 = Instant::now();
    ok(
        &env,
        &cache,
        &[
            "create", "-n", "d32", "-f", cfg, "-t", "debian", "--", "--arch", "i386",
        ],
    );
    eprintln!(
        "debian i386 create (debootstrap into the cache): {:?}",
        t0.elapsed()
    );
    let entry = cache.join("debian/bookworm/i386/default");
    assert!(entry.join("rootfs/etc/debian_version").is_file());
    assert!(!cache.join("debian/bookworm/i386/default.partial").exists());
    let conf = std::fs::read_to_string(env.lxcpath.join("d32/config")).unwrap();
    assert!(conf.contains("lxc.arch = i686\n"), "{conf}");
    ok(&env, &cache, &["start", "-n", "d32", "-d"]);
    let m = ok(&env, &cache, &["attach", "-n", "d32", "--", "uname", "-m"]);
    assert_eq!(m.trim(), "i686", "uname -m in the container");
    let a = ok(
        &env,
        &cache,
        &["attach", "-n", "d32", "--", "dpkg", "--print-architecture"],
    );
    assert_eq!(
        a.trim(),
        "i386",
        "dpkg --print-architecture in the container"
    );
    // PID 1 is the 32-bit systemd: its ELF class byte (offset 4) is 1 (ELFCLASS32)
    let exe = ok(
        &env,
        &cache,
        &[
            "attach",
            "-n",
            "d32",
            "--",
            "od",
            "-An",
            "-tu1",
            "-j4",
            "-N1",
            "/proc/1/exe",
        ],
    );
    assert_eq!(exe.trim(), "1", "PID 1 is a 32-bit ELF");
    wait_systemd_up(&env, &cache, "d32");
    ok(&env, &cache, &["stop", "-n", "d32", "-t", "60", "--nokill"]);
    let info = ok(&env, &cache, &["info", "-n", "d32"]);
    assert!(info.contains("STOPPED"), "{info}");
    ok(&env, &cache, &["destroy", "-n", "d32"]);
    assert!(!env.lxcpath.join("d32").exists());
}
