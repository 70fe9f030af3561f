//! Removing a container directory without ever reaching into mounted filesystems.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("refusing to remove {dir}: {mount} is still mounted (stop the container first)")]
    Mounted { dir: PathBuf, mount: PathBuf },
    #[error("refusing to remove {dir}: it is the origin of the snapshot clone(s) {clones} (destroy them first)")]
    HasSnapshots { dir: PathBuf, clones: String },
    #[error("remove {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Remove `dir` and everything below it. Refuses when anything is mounted below it, so that a
/// bind mount of host files can never be emptied. Symlinks are removed, never followed.
pub fn remove_container_dir(dir: &Path) -> Result<(), RemoveError> {
    let mounted =
        crate::mounts_under(Path::new("/proc/self/mountinfo"), dir).map_err(|source| {
            RemoveError::Io {
                path: "/proc/self/mountinfo".into(),
                source,
            }
        })?;
    if let Some(mount) = mounted.into_iter().next() {
        return Err(RemoveError::Mounted {
            dir: dir.to_path_buf(),
            mount,
        });
    }
    let clones = live_snapshots(dir);
    if !clones.is_empty() {
        return Err(RemoveError::HasSnapshots {
            dir: dir.to_path_buf(),
            clones: clones
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RemoveError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The file in an origin container's directory listing its snapshot clones' directories.
pub const SNAPSHOTS_FILE: &str = "lxrs_snapshots";

/// Record that the container in `clone_dir` is an overlay snapshot of the one in `origin_dir`.
pub fn record_snapshot(origin_dir: &Path, clone_dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(origin_dir.join(SNAPSHOTS_FILE))?;
    writeln!(f, "{}", clone_dir.display())
}

/// Snapshot clones of the container in `dir` that still exist and still use its rootfs as
/// their overlay lower directory (entries of clones destroyed since are ignored).
pub fn live_snapshots(dir: &Path) -> Vec<PathBuf> {
    let Ok(list) = std::fs::read_to_string(dir.join(SNAPSHOTS_FILE)) else {
        return vec![];
    };
    let needle = format!("overlay:{}/", dir.display());
    list.lines()
        .map(PathBuf::from)
        .filter(|c| {
            std::fs::read_to_string(c.join("config")).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.trim_start().starts_with("lxc.rootfs.path") && l.contains(&needle))
            })
        })
        .collect()
}
