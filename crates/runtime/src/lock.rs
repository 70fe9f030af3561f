//! The per-container lock that serialises start, stop and destroy: one `flock(2)` on
//! `<rundir>/lock/<lxcpath>/<name>`.

use crate::error::LifecycleError;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held while alive; dropping it unlocks (closing the file releases the flock).
#[derive(Debug)]
pub struct ContainerLock {
    _file: File,
    path: PathBuf,
}

impl ContainerLock {
    /// Take the lock, waiting for a concurrent holder.
    pub fn acquire(path: &Path) -> Result<ContainerLock, LifecycleError> {
        Self::lock(path, true).map(|l| l.expect("blocking lock always returns a lock"))
    }

    /// Take the lock if free; `Ok(None)` when another command holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<ContainerLock>, LifecycleError> {
        Self::lock(path, false)
    }

    fn lock(path: &Path, wait: bool) -> Result<Option<ContainerLock>, LifecycleError> {
        let io = |op: &'static str, e: std::io::Error| LifecycleError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create lock directory", e))?;
        }
        // std opens with O_CLOEXEC, so a monitor spawned while we hold it does not inherit it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("open lock file", e))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if !wait => return Ok(None),
                _ => return Err(io("flock", e)),
            }
        }
        Ok(Some(ContainerLock {
            _file: file,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock/x/c1");
        let a = ContainerLock::acquire(&p).unwrap();
        assert!(ContainerLock::try_acquire(&p).unwrap().is_none());
        drop(a);
        assert!(ContainerLock::try_acquire(&p).unwrap().is_some());
    }
}
