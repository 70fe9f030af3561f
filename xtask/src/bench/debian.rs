//! `cargo xtask bench --debian`: creating a Debian bookworm container from a filled cache —
//! lxrs with `dir` (a copy of the cached rootfs) and with `-B overlay` (the cache is the lower
//! layer), beside `lxc-create -t debian -- -r bookworm` from LXC's cache
//! (`/var/cache/lxc/debian/rootfs-bookworm-<arch>`). Filling either cache (a debootstrap from
//! Debian's mirror, minutes) is done first and not timed. These rows run when `--debian` is
//! given, or by default when both caches are already filled (then they cost seconds).
//! LXC's template also asks the mirror for `dists/testing/.../Release` on every create; that
//! request is part of its figure.

use super::{quiet, stats, time_ms, Row, Tool};
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn lxrs_cache() -> PathBuf {
    std::env::var_os("LXRS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/lxrs".into())
        .join(format!("debian/bookworm/{}/default/rootfs", arch()))
}

fn lxc_cache() -> PathBuf {
    std::env::var_os("LXC_CACHE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/lxc".into())
        .join(format!("debian/rootfs-bookworm-{}", arch()))
}

/// Whether to run the rows: asked for, or both caches already there.
pub fn wanted(args: &[String]) -> bool {
    args.iter().any(|a| a == "--debian")
        || (lxrs_cache().join("etc/debian_version").is_file()
            && lxc_cache().join("etc/debian_version").is_file())
}

fn create(t: &Tool, name: &str, overlay: bool) -> Command {
    let mut c = t.cmd("create", name);
    c.arg("-f").arg(&t.config).args(["-t", "debian"]);
    if overlay {
        c.args(["-B", "overlay"]);
    }
    c.args(["--", "-r", "bookworm"]);
    c
}

fn timed(t: &Tool, prefix: &str, overlay: bool, reps: usize) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    for i in 0..reps {
        let n = format!("{prefix}{i}");
        let r = time_ms(&mut create(t, &n, overlay));
        let d = quiet(&mut t.destroy(&n));
        v.push(r?);
        d?;
    }
    Ok(v)
}

/// The rows; `reps` creates of each kind (default 5, `--debian-reps N`).
pub fn rows(tools: &[Tool], args: &[String]) -> Result<Vec<Row>> {
    let reps: usize = args
        .iter()
        .position(|a| a == "--debian-reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let lxrs = tools
        .iter()
        .find(|t| !t.lxc)
        .expect("lxrs is always benchmarked");
    let lxc = tools.iter().find(|t| t.lxc);
    // fill the caches (not timed)
    if !lxrs_cache().join("etc/debian_version").is_file() {
        eprintln!("xtask: filling lxrs's debian cache (debootstrap, not timed)");
        quiet(&mut create(lxrs, "dfill", false))?;
        quiet(&mut lxrs.destroy("dfill"))?;
    }
    if let Some(l) = lxc {
        if !lxc_cache().join("etc/debian_version").is_file() {
            eprintln!("xtask: filling LXC's debian cache (lxc-create -t debian, not timed)");
            quiet(&mut create(l, "dfill", false))?;
            quiet(&mut l.destroy("dfill"))?;
        }
    }
    eprintln!("xtask: benchmarking create -t debian from the caches ({reps} reps each)");
    let dir = stats(timed(lxrs, "dd", false, reps)?);
    let overlay = stats(timed(lxrs, "do", true, reps)?);
    let lxc_dir = match lxc {
        Some(l) => Some(stats(timed(l, "ld", false, reps)?)),
        None => None,
    };
    Ok(vec![
        Row {
            what: "create -t debian, from cache (dir)".into(),
            lxrs: dir,
            // the same LXC figure on both rows: LXC makes a Debian container only one way
            lxc: lxc_dir.as_ref().map(|s| super::Stats { ..*s }),
            unit: "ms",
        },
        Row {
            what: "create -t debian -B overlay (LXC: dir)".into(),
            lxrs: overlay,
            lxc: lxc_dir,
            unit: "ms",
        },
    ])
}
