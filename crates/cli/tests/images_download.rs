//! Root integration tests of images: `lxrs publish` makes a simplestreams tree, a test HTTP
//! server on 127.0.0.1 serves it, `lxrs create -t download` verifies, caches and unpacks it.
//! Corrupted, mis-hashed, truncated and malicious images are refused leaving nothing behind.
//!
//! `LXRS_BIN` may name the binary to test (default: this package's `lxrs`).

mod lifecycle_common;
mod template_common;

use sha2_free::sha256_hex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// SHA-256 via the host's sha256sum (keeps the test free of extra dev-dependencies).
mod sha2_free {
    pub fn sha256_hex(p: &std::path::Path) -> String {
        let o = std::process::Command::new("sha256sum")
            .arg(p)
            .output()
            .expect("sha256sum");
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }
}

use template_common::{http_server, Reply, T};

impl T {
    /// `lxrs publish -n src` as busybox/1.36 into `<tmp>/tree`, with `extra` options; its
    /// output.
    fn publish_src(&self, extra: &[&str]) -> String {
        let tree = self.path("tree");
        let mut args = vec![
            "publish",
            "-n",
            "src",
            "--dir",
            tree.to_str().unwrap(),
            "--dist",
            "busybox",
            "--release",
            "1.36",
        ];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// A busybox container `src` published as busybox/1.36 into `<tmp>/tree`.
    fn published_tree(&self) -> PathBuf {
        let cfg = self.nonet();
        self.ok(&["create", "-t", "busybox", "-n", "src", "-f", &cfg]);
        let out = self.publish_src(&[]);
        assert!(out.contains("Published busybox:1.36:"), "{out}");
        self.path("tree")
    }
}

/// A minimal static HTTP/1.1 server on 127.0.0.1; `truncate` names a path suffix whose body is
/// cut in half (while Content-Length announces the whole file).
struct Server {
    port: u16,
    truncate: Arc<Mutex<Option<String>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let truncate = Arc::new(Mutex::new(None::<String>));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (root, t2, h2) = (root.to_path_buf(), truncate.clone(), hits.clone());
        let port = http_server(move |path| {
            h2.lock().unwrap().push(path.to_string());
            match std::fs::read(root.join(path.trim_start_matches('/'))) {
                Ok(mut body) => {
                    let length = body.len();
                    let cut = t2
                        .lock()
                        .unwrap()
                        .as_ref()
                        .is_some_and(|t| path.ends_with(t.as_str()));
                    if cut {
                        body.truncate(length / 2);
                    }
                    Reply {
                        status: 200,
                        length,
                        body,
                    }
                }
                Err(_) => Reply::not_found(),
            }
        });
        Server {
            port,
            truncate,
            hits,
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Every file under `dir` with its content hash (what "the cache is unchanged" means).
fn tree_state(dir: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if md.is_dir() {
                stack.push(p);
                v.push((rel, "dir".into()));
            } else if md.is_file() {
                v.push((rel, sha256_hex(&p)));
            } else {
                v.push((rel, "other".into()));
            }
        }
    }
    v.sort();
    v
}

fn image_dir(tree: &Path) -> PathBuf {
    let d = tree.join("images/busybox/1.36/amd64/default");
    std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
}

#[test]
fn publish_serve_download_start_attach_and_reuse_cache() {
    let t = T::new();
    let tree = t.published_tree();
    for f in [
        "streams/v1/index.json",
        "streams/v1/images.json",
        "meta/1.0/index-system",
    ] {
        assert!(tree.join(f).is_file(), "{f} missing");
    }
    let idx = std::fs::read_to_string(tree.join("meta/1.0/index-system")).unwrap();
    assert!(idx.starts_with("busybox;1.36;amd64;default;"), "{idx}");

    // a running container is not published
    t.ok(&["start", "-n", "src", "-d"]);
    let e = t.fails(&["publish", "-n", "src", "--dir", tree.to_str().unwrap()]);
    assert!(e.contains("stop it before publishing"), "{e}");
    t.ok(&["stop", "-n", "src", "-k"]);

    let srv = Server::start(&tree);
    let url = srv.url();
    let list = t.ok(&["create", "-t", "download", "--", "--server", &url, "--list"]);
    assert!(
        list.contains("DIST") && list.contains("busybox          1.36        amd64  default"),
        "{list}"
    );
    assert!(!t.env.lxcpath.join("--list").exists());

    let cfg = t.nonet();
    t.ok(&[
        "create", "-n", "d1", "-f", &cfg, "-t", "download", "--", "--server", &url, "-d",
        "busybox", "-r", "1.36",
    ]);
    let conf = std::fs::read_to_string(t.env.lxcpath.join("d1/config")).unwrap();
    assert!(
        conf.contains("# Distribution configuration") && conf.contains("lxc.uts.name = d1"),
        "{conf}"
    );
    assert!(t
        .cache
        .join("download/busybox/1.36/amd64/default/rootfs.tar.xz")
        .is_file());
    t.ok(&["start", "-n", "d1", "-d"]);
    let host = t.ok(&["attach", "-n", "d1", "--", "hostname"]);
    assert_eq!(host.trim(), "d1");
    t.ok(&["stop", "-n", "d1", "-k"]);

    // the second create is served from the cache: the server sees no file download
    let before = srv.hits.lock().unwrap().len();
    t.ok(&[
        "create", "-n", "d2", "-f", &cfg, "-t", "download", "--", "--server", &url, "-d",
        "busybox", "-r", "1.36",
    ]);
    let hits: Vec<String> = srv.hits.lock().unwrap()[before..].to_vec();
    assert!(hits.is_empty(), "cached image fetched again: {hits:?}");
    assert!(t.env.lxcpath.join("d2/rootfs/bin/busybox").exists());

    // an LXC-style server (CSV index + SHA256SUMS, no simplestreams) works too
    std::fs::remove_dir_all(tree.join("streams")).unwrap();
    let list = t.ok(&["create", "-t", "download", "--", "--server", &url, "--list"]);
    assert!(list.contains("busybox          1.36"), "{list}");
    t.ok(&[
        "create",
        "-n",
        "d3",
        "-f",
        &cfg,
        "-t",
        "download",
        "--",
        "--server",
        &url,
        "-d",
        "busybox",
        "-r",
        "1.36",
        "--flush-cache",
    ]);
    assert!(t.env.lxcpath.join("d3/rootfs/bin/busybox").exists());
    // without SHA256SUMS the image is refused
    std::fs::remove_file(image_dir(&tree).join("SHA256SUMS")).unwrap();
    let e = t.fails(&[
        "create",
        "-n",
        "d4",
        "-f",
        &cfg,
        "-t",
        "download",
        "--",
        "--server",
        &url,
        "-d",
        "busybox",
        "-r",
        "1.36",
        "--flush-cache",
    ]);
    assert!(e.contains("no SHA-256 is published"), "{e}");
    assert!(!t.env.lxcpath.join("d4").exists());
}

/// After the cached image expires, the server's index is read again: an unchanged build is not
/// downloaded again (the cached rootfs tarball stays, byte for byte and mtime), a new build is.
#[test]
fn expired_cache_downloads_again_only_a_new_build() {
    let t = T::new();
    let cfg = t.nonet();
    t.ok(&["create", "-t", "busybox", "-n", "src", "-f", &cfg]);
    let tree = t.path("tree");
    let publish = || {
        let out = t.publish_src(&["--expiry-days", "0"]);
        out.split(" build ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no build id in: {out}"))
            .to_string()
    };
    let build1 = publish();
    let srv = Server::start(&tree);
    let url = srv.url();
    let create = |name: &str| {
        t.ok(&[
            "create", "-n", name, "-f", &cfg, "-t", "download", "--", "--server", &url, "-d",
            "busybox", "-r", "1.36",
        ])
    };
    let rootfs_gets = || {
        srv.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with("/rootfs.tar.xz"))
            .count()
    };
    let index_gets = || {
        srv.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with("streams/v1/index.json"))
            .count()
    };
    let entry = t.cache.join("download/busybox/1.36/amd64/default");
    let cached_build = || {
        std::fs::read_to_string(entry.join("build_id"))
            .unwrap()
            .trim()
            .to_string()
    };
    create("d1");
    assert_eq!(rootfs_gets(), 1);
    assert_eq!(cached_build(), build1);
    // wait (bounded) until the image's expiry (publish time + 0 days) is in the past
    let expiry: u64 = std::fs::read_to_string(entry.join("meta/expiry"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.env.wait_for("the cached image to expire", 5, || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > expiry
    });
    let tarball = entry.join("rootfs.tar.xz");
    let (sum, mtime) = (
        sha256_hex(&tarball),
        std::fs::metadata(&tarball).unwrap().modified().unwrap(),
    );
    // expired, same build on the server: the index is read, the rootfs is not fetched
    let idx = index_gets();
    create("d2");
    assert!(
        index_gets() > idx,
        "the expired entry was not checked against the server"
    );
    assert_eq!(rootfs_gets(), 1, "an unchanged build was downloaded again");
    assert_eq!(sha256_hex(&tarball), sum);
    assert_eq!(
        std::fs::metadata(&tarball).unwrap().modified().unwrap(),
        mtime
    );
    assert!(t.env.lxcpath.join("d2/rootfs/bin/busybox").exists());
    // a new build on the server: downloaded, and the cache now holds it
    let build2 = publish();
    assert_ne!(build1, build2);
    create("d3");
    assert_eq!(rootfs_gets(), 2, "the new build was not downloaded");
    assert_eq!(cached_build(), build2);
    assert!(t.env.lxcpath.join("d3/rootfs/bin/busybox").exists());
}

#[test]
fn corrupted_mishashed_and_truncated_downloads_are_refused_leaving_nothing() {
    let t = T::new();
    let tree = t.published_tree();
    let srv = Server::start(&tree);
    let url = srv.url();
    let cfg = t.nonet();
    let create = |name: &str| {
        t.fails(&[
            "create",
            "-n",
            name,
            "-f",
            &cfg,
            "-t",
            "download",
            "--",
            "--server",
            &url,
            "-d",
            "busybox",
            "-r",
            "1.36",
            "--flush-cache",
        ])
    };
    // a good cache first: every failure below must leave it exactly as it is
    t.ok(&[
        "create", "-n", "good", "-f", &cfg, "-t", "download", "--", "--server", &url, "-d",
        "busybox", "-r", "1.36",
    ]);
    let cache_before = tree_state(&t.cache);
    assert!(cache_before
        .iter()
        .any(|(p, _)| p.ends_with("rootfs.tar.xz")));
    let rootfs = image_dir(&tree).join("rootfs.tar.xz");
    let pristine = std::fs::read(&rootfs).unwrap();

    // 1. a corrupted file (same size, one byte flipped)
    let mut bad = pristine.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&rootfs, &bad).unwrap();
    let e = create("c1");
    assert!(
        e.contains("SHA-256 mismatch") && e.contains("rootfs.tar.xz"),
        "{e}"
    );
    std::fs::write(&rootfs, &pristine).unwrap();

    // 2. an index with a wrong SHA-256
    let images = tree.join("streams/v1/images.json");
    let json = std::fs::read_to_string(&images).unwrap();
    let real = sha256_hex(&rootfs);
    std::fs::write(&images, json.replace(&real, &"0".repeat(64))).unwrap();
    let e = create("c2");
    assert!(
        e.contains("SHA-256 mismatch") && e.contains(&"0".repeat(64)),
        "{e}"
    );
    std::fs::write(&images, &json).unwrap();

    // 3. a download cut short by the server
    *srv.truncate.lock().unwrap() = Some("rootfs.tar.xz".into());
    let e = create("c3");
    assert!(
        e.contains("rootfs.tar.xz") && (e.contains("truncated") || e.contains("wrong size")),
        "{e}"
    );
    *srv.truncate.lock().unwrap() = None;

    // 4. a file shorter than the index says (truncated on the server's disk)
    std::fs::write(&rootfs, &pristine[..pristine.len() - 100]).unwrap();
    let e = create("c4");
    assert!(
        e.contains("wrong size") || e.contains("SHA-256 mismatch"),
        "{e}"
    );
    std::fs::write(&rootfs, &pristine).unwrap();

    for n in ["c1", "c2", "c3", "c4"] {
        assert!(
            !t.env.lxcpath.join(n).exists(),
            "{n}: a refused create left its directory"
        );
    }
    assert_eq!(
        tree_state(&t.cache),
        cache_before,
        "a refused download changed the cache"
    );
    // and the good image still works afterwards
    t.ok(&[
        "create",
        "-n",
        "again",
        "-f",
        &cfg,
        "-t",
        "download",
        "--",
        "--server",
        &url,
        "-d",
        "busybox",
        "-r",
        "1.36",
        "--flush-cache",
    ]);
}

/// Build a raw tar with names that `tar::Builder` would refuse, xz it.
fn evil_rootfs(outside: &Path) -> Vec<u8> {
    fn hdr(path: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }
    let mut b = tar::Builder::new(Vec::new());
    b.append(&hdr("./bin", tar::EntryType::Directory, 0, None), &[][..])
        .unwrap();
    b.append(
        &hdr(
            "./esc",
            tar::EntryType::Symlink,
            0,
            Some(outside.to_str().unwrap()),
        ),
        &[][..],
    )
    .unwrap();
    b.append(
        &hdr("./esc/victim", tar::EntryType::Regular, 5, None),
        &b"pwned"[..],
    )
    .unwrap();
    let tar = b.into_inner().unwrap();
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(&tar).unwrap();
    e.finish().unwrap()
}

#[test]
fn malicious_image_with_escapes_is_refused_and_nothing_outside_changes() {
    let t = T::new();
    let tree = t.published_tree();
    let outside = t.env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "original").unwrap();
    // the server is honest about hashes; the image itself is hostile
    let rootfs = image_dir(&tree).join("rootfs.tar.xz");
    let old = sha256_hex(&rootfs);
    let old_size = std::fs::metadata(&rootfs).unwrap().len();
    std::fs::write(&rootfs, evil_rootfs(&outside)).unwrap();
    let new = sha256_hex(&rootfs);
    let new_size = std::fs::metadata(&rootfs).unwrap().len();
    let images = tree.join("streams/v1/images.json");
    let json = std::fs::read_to_string(&images)
        .unwrap()
        .replace(&old, &new)
        .replace(
            &format!("\"size\": {old_size}"),
            &format!("\"size\": {new_size}"),
        );
    std::fs::write(&images, json).unwrap();
    let srv = Server::start(&tree);
    let cfg = t.nonet();
    let e = t.fails(&[
        "create",
        "-n",
        "evil",
        "-f",
        &cfg,
        "-t",
        "download",
        "--",
        "--server",
        &srv.url(),
        "-d",
        "busybox",
        "-r",
        "1.36",
    ]);
    assert!(e.contains("refused") && e.contains("esc/victim"), "{e}");
    assert!(!t.env.lxcpath.join("evil").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "original"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn templates_lists_builtins_and_create_help_shows_template_help() {
    let t = T::new();
    let out = t.ok(&["templates"]);
    assert!(
        out.contains("busybox") && out.contains("download") && out.contains("built-in"),
        "{out}"
    );
    let h = t.ok(&["create", "-t", "download", "-h"]);
    assert!(h.contains("--flush-cache") && h.contains("SHA-256"), "{h}");
}

#[test]
fn copy_makes_an_independent_startable_clone_and_refuses_running_sources() {
    let t = T::new();
    let cfg = t.nonet();
    t.ok(&["create", "-t", "busybox", "-n", "orig", "-f", &cfg]);
    std::fs::write(t.env.lxcpath.join("orig/rootfs/etc/marker"), "x").unwrap();
    t.ok(&["start", "-n", "orig", "-d"]);
    let e = t.fails(&["copy", "-n", "orig", "-N", "clone"]);
    assert!(e.contains("stop it before copying"), "{e}");
    assert!(!t.env.lxcpath.join("clone").exists());
    t.ok(&["stop", "-n", "orig", "-k"]);
    t.ok(&["copy", "-n", "orig", "-N", "clone"]);
    let conf = std::fs::read_to_string(t.env.lxcpath.join("clone/config")).unwrap();
    let clone_root = t.env.lxcpath.join("clone/rootfs");
    assert!(
        conf.contains(&format!("lxc.rootfs.path = dir:{}", clone_root.display())),
        "{conf}"
    );
    assert!(conf.contains("lxc.uts.name = clone"), "{conf}");
    assert!(!conf.contains("/orig/"), "{conf}");
    // same content, separate files (a write in the clone does not reach the original)
    std::fs::write(clone_root.join("etc/marker"), "changed").unwrap();
    assert_eq!(
        std::fs::read_to_string(t.env.lxcpath.join("orig/rootfs/etc/marker")).unwrap(),
        "x"
    );
    t.ok(&["start", "-n", "clone", "-d"]);
    assert_eq!(
        t.ok(&["attach", "-n", "clone", "--", "hostname"]).trim(),
        "clone"
    );
    t.ok(&["stop", "-n", "clone", "-k"]);
    let e = t.fails(&["copy", "-n", "orig", "-N", "clone"]);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn copy_snapshot_is_an_overlay_clone_that_starts_and_pins_its_origin() {
    let t = T::new();
    let cfg = t.nonet();
    t.ok(&["create", "-t", "busybox", "-n", "orig", "-f", &cfg]);
    t.ok(&["copy", "-n", "orig", "-N", "snap", "-s"]);
    let snap = t.env.lxcpath.join("snap");
    let orig_root = t.env.lxcpath.join("orig/rootfs");
    let conf = std::fs::read_to_string(snap.join("config")).unwrap();
    let want = format!(
        "lxc.rootfs.path = overlay:{}:{}",
        orig_root.display(),
        snap.join("delta0").display()
    );
    assert!(conf.contains(&want), "{want}\n{conf}");
    assert_eq!(
        std::fs::read_dir(snap.join("rootfs")).unwrap().count(),
        0,
        "the mount point stays empty"
    );
    t.ok(&["start", "-n", "snap", "-d"]);
    assert_eq!(
        t.ok(&["attach", "-n", "snap", "--", "hostname"]).trim(),
        "snap"
    );
    t.ok(&[
        "attach",
        "-n",
        "snap",
        "--",
        "/bin/sh",
        "-c",
        "echo hi > /written-in-snap; rm /bin/true",
    ]);
    t.ok(&["stop", "-n", "snap", "-k"]);
    // writes went to the upper layer only; the origin is untouched
    assert_eq!(
        std::fs::read_to_string(snap.join("delta0/written-in-snap")).unwrap(),
        "hi\n"
    );
    assert!(!orig_root.join("written-in-snap").exists());
    assert!(
        std::fs::symlink_metadata(orig_root.join("bin/true")).is_ok(),
        "a delete in the clone reached the origin"
    );
    assert!(
        !host_mounts_mention(&snap),
        "the overlay must not stay mounted on the host"
    );
    // the origin cannot go while the clone exists
    let e = t.fails(&["destroy", "-n", "orig"]);
    assert!(e.contains("origin of the snapshot"), "{e}");
    assert!(orig_root.join("bin/busybox").exists());
    t.ok(&["destroy", "-n", "snap"]);
    t.ok(&["destroy", "-n", "orig"]);
    assert!(!t.env.lxcpath.join("orig").exists());
}

fn host_mounts_mention(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(p.to_str().unwrap())
}
