//! Removing a container directory without ever reaching into mounted filesystems.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("refusing to remove {dir}: {mount} is still mounted (stop the container first)")]
    Mounted { dir: PathBuf, mount: PathBuf },
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
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RemoveError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
