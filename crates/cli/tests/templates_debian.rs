//! Root integration test of the built-in `debian` template: debootstrap from deb.debian.org
//! into a fresh cache (minutes), a second create copied from the cache (seconds), systemd boots
//! in the container, attach reads /etc/os-release, a clean stop shuts it down.
//!
//! `LXRS_BIN` may name the binary to test (default: this package's `lxrs`).

mod lifecycle_common;
mod template_common;

use lifecycle_common::text;
use std::time::{Duration, Instant};
use template_common::T;

/// Wait (bounded) until systemd in `name` answers `systemctl` (any state), for tests that
/// want a booted system.
fn wait_systemd_up(t: &T, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let o = t.run(&["attach", "-n", name, "--", "systemctl", "is-system-running"]);
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
    let t = T::new();
    let (env, cache) = (&t.env, &t.cache);
    let o = t
        .cmd(&["create", "-n", "d", "-t", "debian"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("run lxrs");
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
    let t = T::new();
    let (env, cache) = (&t.env, &t.cache);
    let cfg = env.dir.path().join("nonet.conf");
    std::fs::write(&cfg, "lxc.net.0.type = empty\n").unwrap();
    let cfg = cfg.to_str().unwrap();

    let t0 = Instant::now();
    t.ok(&["create", "-n", "deb1", "-f", cfg, "-t", "debian"]);
    let first = t0.elapsed();
    assert!(cache
        .join("debian/bookworm/amd64/default/rootfs/etc/debian_version")
        .is_file());
    let t1 = Instant::now();
    t.ok(&[
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
    ]);
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

    t.ok(&["start", "-n", "deb2", "-d"]);
    let osr = t.ok(&["attach", "-n", "deb2", "--", "cat", "/etc/os-release"]);
    assert!(
        osr.contains("ID=debian") && osr.contains("bookworm"),
        "{osr}"
    );
    // systemd is PID 1 and gets far enough to report a state
    let comm = t.ok(&["attach", "-n", "deb2", "--", "cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "systemd");
    // systemctl talks to PID 1 over /run/systemd/private: retry until systemd answers
    let deadline = Instant::now() + Duration::from_secs(90);
    let state = loop {
        let o = t.run(&[
            "attach",
            "-n",
            "deb2",
            "--",
            "systemctl",
            "is-system-running",
        ]);
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
    let failed = t.run(&[
        "attach",
        "-n",
        "deb2",
        "--",
        "systemctl",
        "--failed",
        "--no-legend",
        "--plain",
    ]);
    let failed = format!("{}{}", text(&failed.stdout), text(&failed.stderr));
    eprintln!("systemctl is-system-running: {state}; failed units: {failed}");
    assert!(
        state == "running" || state == "degraded",
        "systemd state {state}; failed: {failed}"
    );
    // a clean stop: SIGRTMIN+3 makes systemd shut down
    let stopping = Instant::now();
    t.ok(&["stop", "-n", "deb2", "-t", "60", "--nokill"]);
    eprintln!("clean stop took {:?}", stopping.elapsed());
    let info = t.ok(&["info", "-n", "deb2"]);
    assert!(info.contains("STOPPED"), "{info}");

    // -B overlay: the cache is the lower layer, made in constant time, boots the same way
    let t2 = Instant::now();
    t.ok(&[
        "create", "-n", "deb3", "-f", cfg, "-t", "debian", "-B", "overlay",
    ]);
    eprintln!("debian create -B overlay: {:?}", t2.elapsed());
    let conf = std::fs::read_to_string(env.lxcpath.join("deb3/config")).unwrap();
    let lower = cache.join("debian/bookworm/amd64/default/rootfs");
    assert!(
        conf.contains(&format!("lxc.rootfs.path = overlay:{}:", lower.display())),
        "{conf}"
    );
    t.ok(&["start", "-n", "deb3", "-d"]);
    assert_eq!(
        t.ok(&["attach", "-n", "deb3", "--", "hostname"]).trim(),
        "deb3"
    );
    t.ok(&["attach", "-n", "deb3", "--", "touch", "/only-in-deb3"]);
    wait_systemd_up(&t, "deb3");
    t.ok(&["stop", "-n", "deb3", "-t", "60", "--nokill"]);
    assert!(env.lxcpath.join("deb3/delta0/only-in-deb3").exists());
    // A clean stop at once after start -d: PID 1 of a namespace drops a signal it neither
    // catches nor blocks, so the monitor holds SIGRTMIN+3 back until systemd takes it
    // (blocked for its signalfd) instead of losing it (--nokill: a lost one fails this).
    for _ in 0..2 {
        t.ok(&["start", "-n", "deb3", "-d"]);
        t.ok(&["stop", "-n", "deb3", "-t", "60", "--nokill"]);
    }
    assert!(!lower.join("only-in-deb3").exists());
    // the cache cannot be flushed from under it
    let o = t.run(&[
        "create",
        "-n",
        "deb4",
        "-f",
        cfg,
        "-t",
        "debian",
        "--",
        "--flush-cache",
    ]);
    assert!(
        !o.status.success() && text(&o.stderr).contains("overlay lower layer"),
        "{}",
        text(&o.stderr)
    );
    assert!(!env.lxcpath.join("deb4").exists());
    t.ok(&["destroy", "-n", "deb3"]);
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
    let t = T::new();
    let (env, cache) = (&t.env, &t.cache);
    let cfg = env.dir.path().join("nonet.conf");
    std::fs::write(&cfg, "lxc.net.0.type = empty\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let t0 = Instant::now();
    t.ok(&[
        "create", "-n", "d32", "-f", cfg, "-t", "debian", "--", "--arch", "i386",
    ]);
    eprintln!(
        "debian i386 create (debootstrap into the cache): {:?}",
        t0.elapsed()
    );
    let entry = cache.join("debian/bookworm/i386/default");
    assert!(entry.join("rootfs/etc/debian_version").is_file());
    assert!(!cache.join("debian/bookworm/i386/default.partial").exists());
    let conf = std::fs::read_to_string(env.lxcpath.join("d32/config")).unwrap();
    assert!(conf.contains("lxc.arch = i686\n"), "{conf}");
    t.ok(&["start", "-n", "d32", "-d"]);
    let m = t.ok(&["attach", "-n", "d32", "--", "uname", "-m"]);
    assert_eq!(m.trim(), "i686", "uname -m in the container");
    let a = t.ok(&["attach", "-n", "d32", "--", "dpkg", "--print-architecture"]);
    assert_eq!(
        a.trim(),
        "i386",
        "dpkg --print-architecture in the container"
    );
    // PID 1 is the 32-bit systemd: its ELF class byte (offset 4) is 1 (ELFCLASS32)
    let exe = t.ok(&[
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
    ]);
    assert_eq!(exe.trim(), "1", "PID 1 is a 32-bit ELF");
    wait_systemd_up(&t, "d32");
    t.ok(&["stop", "-n", "d32", "-t", "60", "--nokill"]);
    let info = t.ok(&["info", "-n", "d32"]);
    assert!(info.contains("STOPPED"), "{info}");
    t.ok(&["destroy", "-n", "d32"]);
    assert!(!env.lxcpath.join("d32").exists());
}
