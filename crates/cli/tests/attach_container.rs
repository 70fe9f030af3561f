//! `lxrs attach -n NAME` against a real lxrs container (busybox rootfs, started with
//! `lxrs start -d`): the init pid comes from the monitor, the config's `lxc.environment` applies,
//! and a stopped container is refused.

mod lifecycle_common;
use lifecycle_common::*;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn attach_by_name_to_a_running_container() {
    let env = Env::new();
    let spec = env.container("at1", &inittab("boot-at1"), &["/sbin/init"]);
    // An empty value resets the list: only KEPT survives.
    std::fs::write(
        env.lxcpath.join("at1/config"),
        "lxc.environment = DROPPED=1\nlxc.environment =\nlxc.environment = KEPT=yes\n",
    )
    .unwrap();
    let out = env.run(&[
        "start",
        "-n",
        "at1",
        "-d",
        "--spec-json",
        spec.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));

    let out = env.run(&["attach", "-n", "at1", "--", "hostname"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "at1\n");

    // The container's root filesystem, its pid namespace, its cgroups.
    let out = env.run(&[
        "attach",
        "-n",
        "at1",
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/inittab; test -e /etc/debian_version && echo HOST; \
         cat /proc/1/cgroup > /tmp/a; cat /proc/self/cgroup > /tmp/b; \
         test \"$(cat /tmp/a)\" = \"$(cat /tmp/b)\" && echo SAME-CGROUPS",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains("boot-at1"), "{o}");
    assert!(!o.contains("HOST"), "{o}");
    assert!(o.contains("SAME-CGROUPS"), "{o}");

    // lxc.environment from the config, after --clear-env.
    let out = env.run(&[
        "attach",
        "-n",
        "at1",
        "--clear-env",
        "--",
        "/bin/busybox",
        "env",
    ]);
    let o = text(&out.stdout);
    assert!(
        o.contains("KEPT=yes\n") && o.contains("container=lxc\n"),
        "{o}"
    );
    assert!(!o.contains("DROPPED"), "{o}");

    // No passwd in this rootfs: the default shell is /bin/sh; a script on stdin runs.
    let mut c = env.cmd(&["attach", "-n", "at1"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(b"echo hi; exit 3\n")
        .unwrap();
    let out = ch.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");

    // On a terminal: the pty comes from the container's own devpts.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut c = env.cmd(&[
        "attach",
        "-n",
        "at1",
        "--",
        "/bin/sh",
        "-c",
        "t=$(/bin/busybox tty) && echo TTY=$t && /bin/busybox stat -c DEV=%d /dev/pts/ptmx $t",
    ]);
    c.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut ch = c.spawn().unwrap();
    drop(c);
    let mut m = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        let mut p = libc::pollfd {
            fd: m.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 50) };
        if p.revents & libc::POLLIN != 0 {
            let mut b = [0u8; 4096];
            if let Ok(n) = m.read(&mut b) {
                seen.extend_from_slice(&b[..n]);
            }
        }
        if let Some(st) = ch.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = ch.kill();
            let _ = ch.wait();
            panic!("attach on a pty hung: {}", text(&seen));
        }
    };
    let mut b = [0u8; 4096];
    let mut p = libc::pollfd {
        fd: m.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    while unsafe { libc::poll(&mut p, 1, 0) } == 1 && p.revents & libc::POLLIN != 0 {
        match m.read(&mut b) {
            Ok(n) if n > 0 => seen.extend_from_slice(&b[..n]),
            _ => break,
        }
    }
    assert!(st.success(), "{}", text(&seen));
    let o = text(&seen);
    assert!(o.contains("TTY=/dev/pts/"), "{o:?}");
    // The terminal and the container's /dev/pts/ptmx are on the same devpts instance.
    let devs: Vec<&str> = o.lines().filter(|l| l.starts_with("DEV=")).collect();
    assert_eq!(devs.len(), 2, "{o:?}");
    assert_eq!(devs[0].trim(), devs[1].trim(), "{o:?}");
    // ... which is the container's own instance, not the host's.
    use std::os::unix::fs::MetadataExt;
    let host = std::fs::metadata("/dev/pts/ptmx").unwrap().dev();
    assert_ne!(devs[0].trim(), format!("DEV={host}"), "{o:?}");

    // Stopped: exit 1 with a clear message.
    let out = env.run(&["stop", "-n", "at1", "-k"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = env.run(&["attach", "-n", "at1", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["attach", "-n", "never-created", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}

/// The attached process lands in the init's cgroups under both drivers (v1: it writes itself
/// into each hierarchy's `tasks`; v2: it is cloned straight into the init's directory).
#[test]
fn attach_joins_the_init_cgroups_with_either_driver() {
    for driver in ["v1", "v2"] {
        let env = Env::new();
        let name = format!("atcg{driver}");
        let spec = env.container(&name, &inittab("boot"), &["/sbin/init"]);
        let out = env
            .cmd(&[
                "start",
                "-n",
                &name,
                "-d",
                "--spec-json",
                spec.to_str().unwrap(),
            ])
            .env("LXRS_CGROUP_DRIVER", driver)
            .output()
            .unwrap();
        assert!(out.status.success(), "{driver}: {}", text(&out.stderr));
        let init = env.info(&name).init_pid.expect("init pid");
        // Host view of the init's cgroups, then the attached process's own, read by the host
        // while it runs.
        let want = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
        let mut c = env.cmd(&["attach", "-n", &name, "--", "/bin/sh", "-c", "read x"]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = loop {
            // The attached `sh` is the only process besides init and the getty/rcS tree whose
            // command line is `/bin/sh -c read x`.
            let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                (cmd == b"/bin/sh\0-c\0read x\0")
                    .then(|| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok())
                    .flatten()
            });
            if let Some(g) = found {
                break g;
            }
            assert!(
                Instant::now() < deadline,
                "{driver}: attached shell not found"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        ch.stdin.take().unwrap().write_all(b"\n").unwrap();
        let st = ch.wait().unwrap();
        assert!(st.success(), "{driver}: attach exited {st}");
        assert_eq!(
            got, want,
            "{driver}: the attached process is not in the init's cgroups"
        );
        assert!(
            want.contains("lxrs.payload."),
            "{driver}: init not in its payload cgroup: {want}"
        );
        assert!(env.run(&["stop", "-n", &name, "-k"]).status.success());
    }
}
