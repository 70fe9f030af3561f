//! The template cache: `/var/cache/lxrs/<template>/...` (root overridable with
//! `LXRS_CACHE_DIR`). An entry is built in `<entry>.partial` and renamed into place only when
//! complete; `<entry>.lock` (flock) serialises concurrent creates so the entry is built once;
//! a failed (re)build leaves the previous entry exactly as it was.

use crate::TemplateError;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const DEFAULT_CACHE_ROOT: &str = "/var/cache/lxrs";

/// The cache root: `$LXRS_CACHE_DIR` or `/var/cache/lxrs`.
pub fn root() -> PathBuf {
    std::env::var_os("LXRS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CACHE_ROOT.into())
}

/// `<root>/<parts...>`
pub fn dir(parts: &[&str]) -> PathBuf {
    let mut p = root();
    for x in parts {
        p.push(x);
    }
    p
}

/// What to do with an entry.
pub enum Decision {
    Keep,
    Build,
}

/// Holds the entry's lock; the entry cannot change while it lives.
#[derive(Debug)]
pub struct Guard {
    _lock: std::fs::File,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError {
    TemplateError::io("cache", op, path)
}

fn sibling(entry: &Path, suffix: &str) -> PathBuf {
    let mut s = entry.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Make sure `entry` is complete: lock it, ask `decide` (given the existing entry, if any;
/// `flush` forces a rebuild), and build into a partial directory renamed over the entry.
pub fn ensure(
    entry: &Path,
    flush: bool,
    decide: impl FnOnce(Option<&Path>) -> Result<Decision, TemplateError>,
    build: impl FnOnce(&Path) -> Result<(), TemplateError>,
) -> Result<Guard, TemplateError> {
    let parent = entry.parent().expect("cache entries have a parent");
    std::fs::create_dir_all(parent).map_err(io("create cache directory", parent))?;
    let lock_path = sibling(entry, ".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open cache lock", &lock_path))?;
    // SAFETY: flock on a valid, open descriptor owned by `lock`.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io("lock", &lock_path)(std::io::Error::last_os_error()));
    }
    let guard = Guard { _lock: lock };
    let have = entry.is_dir();
    let decision = if flush {
        Decision::Build
    } else {
        decide(have.then_some(entry))?
    };
    if let Decision::Keep = decision {
        return Ok(guard);
    }
    let partial = sibling(entry, ".partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io("remove stale partial cache", &partial))?;
    }
    std::fs::create_dir(&partial).map_err(io("create partial cache", &partial))?;
    if let Err(e) = build(&partial) {
        if let Err(re) = lxrs_rootfs::remove_container_dir(&partial) {
            tracing::error!("could not remove {}: {re}", partial.display());
        }
        return Err(e);
    }
    let old = sibling(entry, ".old");
    if have {
        if old.exists() {
            lxrs_rootfs::remove_container_dir(&old)
                .map_err(|e| io("remove", &old)(std::io::Error::other(e)))?;
        }
        std::fs::rename(entry, &old).map_err(io("move old cache aside", entry))?;
    }
    std::fs::rename(&partial, entry).map_err(io("rename partial cache into place", &partial))?;
    if have {
        lxrs_rootfs::remove_container_dir(&old)
            .map_err(|e| io("remove", &old)(std::io::Error::other(e)))?;
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_once_failed_rebuild_keeps_old() {
        let tmp = tempfile::tempdir().unwrap();
        let e = tmp.path().join("t/rel/amd64/default");
        let mut builds = 0;
        let g = ensure(
            &e,
            false,
            |h| {
                Ok(if h.is_some() {
                    Decision::Keep
                } else {
                    Decision::Build
                })
            },
            |p| {
                builds += 1;
                std::fs::write(p.join("f"), "1").map_err(io("w", p))
            },
        )
        .unwrap();
        drop(g);
        ensure(
            &e,
            false,
            |h| {
                Ok(if h.is_some() {
                    Decision::Keep
                } else {
                    Decision::Build
                })
            },
            |_| panic!("rebuilt"),
        )
        .unwrap();
        assert_eq!(builds, 1);
        let r = ensure(
            &e,
            true,
            |_| unreachable!(),
            |p| {
                std::fs::write(p.join("f"), "2").unwrap();
                Err(io("fail", p)(std::io::ErrorKind::Other.into()))
            },
        );
        assert!(r.is_err());
        assert_eq!(
            std::fs::read_to_string(e.join("f")).unwrap(),
            "1",
            "failed rebuild left the old entry"
        );
        assert!(!sibling(&e, ".partial").exists());
        ensure(
            &e,
            true,
            |_| unreachable!(),
            |p| std::fs::write(p.join("f"), "3").map_err(io("w", p)),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(e.join("f")).unwrap(), "3");
    }
}
