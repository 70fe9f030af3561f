//! Where runtime state lives: the run directory (locks, state records) and the name of a
//! container's abstract command socket.

use std::path::{Component, Path, PathBuf};

/// Default run directory (section 0: lxrs owns `/run/lxrs`).
pub const DEFAULT_RUNDIR: &str = "/run/lxrs";

/// Environment override of the run directory (tests).
pub const RUNDIR_ENV: &str = "LXRS_RUNDIR";

/// Longest abstract socket name (`sun_path` minus the leading NUL).
const MAX_ABSTRACT: usize = 107;

/// The runtime state directory: `lock/<lxcpath>/<name>` and `state/<lxcpath>/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl Default for RunDir {
    /// `$LXRS_RUNDIR`, else `/run/lxrs`.
    fn default() -> Self {
        match std::env::var_os(RUNDIR_ENV) {
            Some(p) if !p.is_empty() => RunDir::new(PathBuf::from(p)),
            _ => RunDir::new(DEFAULT_RUNDIR),
        }
    }
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/lock/<lxcpath>/<name>` (the lxcpath nested as directories, as LXC does).
    pub fn lock_path(&self, lxcpath: &Path, name: &str) -> PathBuf {
        self.root.join("lock").join(relative(lxcpath)).join(name)
    }

    /// `<root>/state/<lxcpath>/<name>.json`: what a monitor created, for crash cleanup.
    pub fn record_path(&self, lxcpath: &Path, name: &str) -> PathBuf {
        self.root
            .join("state")
            .join(relative(lxcpath))
            .join(format!("{name}.json"))
    }
}

fn relative(lxcpath: &Path) -> PathBuf {
    let norm = normalize_lxcpath(lxcpath);
    norm.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// One spelling per lxcpath: absolute, no `.`/`..`/duplicate or trailing slashes; symlinks
/// resolved when the directory exists. Every name derived from an lxcpath goes through here so
/// the CLI and the monitor agree.
///
/// The last answer is remembered for the rest of the process: a command derives several names
/// (lock, state record, socket) from the lxcpath of every container it looks at, and resolving
/// it anew costs a readlink per path component each time.
pub fn normalize_lxcpath(p: &Path) -> PathBuf {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(PathBuf, PathBuf)>> =
            const { std::cell::RefCell::new(None) };
    }
    if let Some(hit) = LAST.with_borrow(|l| {
        l.as_ref()
            .filter(|(given, _)| given == p)
            .map(|(_, n)| n.clone())
    }) {
        return hit;
    }
    // Only a path that exists is remembered: one made later would resolve its symlinks then.
    if let Ok(c) = std::fs::canonicalize(p) {
        LAST.with_borrow_mut(|l| *l = Some((p.to_path_buf(), c.clone())));
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Abstract socket name (without the leading NUL) of a container's monitor:
/// `lxrs<lxcpath>/<name>/command`, or `lxrs/<hash>/command` when that would not fit.
pub fn socket_name(lxcpath: &Path, name: &str) -> Vec<u8> {
    let lp = normalize_lxcpath(lxcpath);
    let lp = lp.to_string_lossy();
    let sep = if lp.ends_with('/') { "" } else { "/" };
    let full = format!("lxrs{lp}{sep}{name}/command");
    if full.len() <= MAX_ABSTRACT {
        return full.into_bytes();
    }
    format!(
        "lxrs/{:016x}/command",
        fnv1a64(format!("{lp}{sep}{name}").as_bytes())
    )
    .into_bytes()
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let rd = RunDir::new("/run/x");
        let lp = Path::new("/nonexistent-lxrs/a/../b//");
        assert_eq!(
            rd.lock_path(lp, "c1"),
            Path::new("/run/x/lock/nonexistent-lxrs/b/c1")
        );
        assert_eq!(
            rd.record_path(lp, "c1"),
            Path::new("/run/x/state/nonexistent-lxrs/b/c1.json")
        );
        assert_eq!(
            socket_name(lp, "c1"),
            b"lxrs/nonexistent-lxrs/b/c1/command".to_vec()
        );
        assert_eq!(
            socket_name(Path::new("/"), "c1"),
            b"lxrs/c1/command".to_vec()
        );
    }

    #[test]
    fn long_socket_names_are_hashed_and_distinct() {
        let lp = PathBuf::from(format!("/nonexistent-lxrs/{}", "x".repeat(120)));
        let a = socket_name(&lp, "c1");
        let b = socket_name(&lp, "c2");
        assert!(a.len() <= MAX_ABSTRACT);
        assert!(a.starts_with(b"lxrs/") && a.ends_with(b"/command"));
        assert_ne!(a, b);
    }
}
