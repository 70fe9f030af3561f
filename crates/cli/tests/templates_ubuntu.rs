//! Root integration tests of the built-in `ubuntu` template that need no Ubuntu mirror (none is
//! reachable from the test machines): a mirror that serves nothing fails the create with an
//! error naming the mirror, leaving no container and no cache entry; a missing keyring is
//! refused before anything is created. What a real bootstrap produces is covered by the unit
//! tests of `lxrs_templates::ubuntu` (command line, post-install files on a temp rootfs).
//!
//! `LXRS_BIN` may name the binary to test (default: this package's `lxrs`).

mod lifecycle_common;
mod template_common;

use lifecycle_common::text;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use template_common::{http_server, Reply, T};

/// Debian's name of the host architecture (the template's default `--arch`).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        a => a,
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with 404 and records the paths.
fn empty_mirror() -> (u16, Arc<Mutex<Vec<String>>>) {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h2 = hits.clone();
    let port = http_server(move |path| {
        h2.lock().unwrap().push(path.to_string());
        Reply::not_found()
    });
    (port, hits)
}

/// Every path under `dir` (relative), sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            v.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn unreachable_mirror_fails_naming_it_and_leaves_nothing() {
    let t = T::new();
    let (env, cache) = (&t.env, &t.cache);
    let (port, hits) = empty_mirror();
    let mirror = format!("http://127.0.0.1:{port}/ubuntu");
    let o = t.run(&[
        "create",
        "-n",
        "u1",
        "-t",
        "ubuntu",
        "--",
        "--mirror",
        &mirror,
        "--no-check-gpg",
    ]);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "create succeeded: {}", text(&o.stdout));
    assert!(
        err.contains(&format!("debootstrap noble {} from {mirror}", host_arch())),
        "the error names the release and mirror: {err}"
    );
    // debootstrap really asked the mirror for noble's Release file
    let got = hits.lock().unwrap().clone();
    assert!(
        got.iter().any(|p| p.starts_with("/ubuntu/dists/noble/")),
        "requests: {got:?}"
    );
    assert!(!env.lxcpath.join("u1").exists(), "no half container");
    let entry = cache.join(format!("ubuntu/noble/{}/default+nogpg", host_arch()));
    let left: Vec<String> = tree(cache)
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(
        !entry.exists()
            && left
                .iter()
                .all(|p| !p.contains("partial") && !p.contains("rootfs")),
        "no half cache: {left:?}"
    );

    // a closed port: the same clear failure
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mirror = format!("http://127.0.0.1:{closed}/ubuntu");
    let o = t.run(&[
        "create",
        "-n",
        "u2",
        "-t",
        "ubuntu",
        "--",
        "--release",
        "jammy",
        "--mirror",
        &mirror,
        "--no-check-gpg",
    ]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!("debootstrap jammy {} from {mirror}", host_arch())),
        "{err}"
    );
    assert!(!env.lxcpath.join("u2").exists());
    assert!(!cache
        .join(format!("ubuntu/jammy/{}/default+nogpg", host_arch()))
        .exists());
}

#[test]
fn missing_keyring_is_refused_before_anything_is_created() {
    let t = T::new();
    let (env, cache) = (&t.env, &t.cache);
    let o = t.run(&[
        "create",
        "-n",
        "u3",
        "-t",
        "ubuntu",
        "--",
        "--keyring",
        "/nonexistent/ubuntu-archive-keyring.gpg",
    ]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("no archive keyring /nonexistent/ubuntu-archive-keyring.gpg"),
        "{err}"
    );
    assert!(!env.lxcpath.join("u3").exists());
    assert!(
        !cache.exists(),
        "nothing may be created before the keyring check"
    );
    // i386 has no Ubuntu base system after bionic: refused up front too
    assert_eq!(host_arch(), "amd64", "the i386 case needs an amd64 host");
    let o = t.run(&[
        "create",
        "-n",
        "u4",
        "-t",
        "ubuntu",
        "--",
        "--arch",
        "i386",
        "--no-check-gpg",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no i386 base system after bionic"),
        "{}",
        text(&o.stderr)
    );
    assert!(!env.lxcpath.join("u4").exists() && !cache.exists());
}
