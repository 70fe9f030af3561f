//! Container directory layout, name validation and all-or-nothing creation.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Longest container name accepted (the cgroup and socket names are built from it).
pub const MAX_NAME_LEN: usize = 64;

/// Why a container name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("container name is empty")]
    Empty,
    #[error("container name '{0}' is longer than {MAX_NAME_LEN} bytes")]
    TooLong(String),
    #[error("container name '{0}' must not contain '/'")]
    Slash(String),
    #[error("container name '{0}' must not be '.' or '..' or contain '..'")]
    Dots(String),
    #[error("container name '{0}' must not start with '-'")]
    LeadingDash(String),
    #[error("container name '{name}' contains the invalid character {ch:?} (allowed: letters, digits, '-', '_', '.')")]
    BadChar { name: String, ch: char },
}

/// Check a container name: no `/`, no `..`, no leading `-`, printable ASCII word characters.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.to_string()));
    }
    if name.contains('/') {
        return Err(NameError::Slash(name.to_string()));
    }
    if name == "." || name.contains("..") {
        return Err(NameError::Dots(name.to_string()));
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingDash(name.to_string()));
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameError::BadChar {
            name: name.to_string(),
            ch,
        });
    }
    Ok(())
}

/// Paths of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    pub lxcpath: PathBuf,
    pub name: String,
}

impl ContainerPaths {
    pub fn new(lxcpath: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        ContainerPaths {
            lxcpath: lxcpath.into(),
            name: name.into(),
        }
    }
    /// `<lxcpath>/<name>`
    pub fn dir(&self) -> PathBuf {
        self.lxcpath.join(&self.name)
    }
    /// `<lxcpath>/<name>/config`
    pub fn config(&self) -> PathBuf {
        self.dir().join("config")
    }
    /// `<lxcpath>/<name>/rootfs` (the `dir` backend's default)
    pub fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }
    /// `<lxcpath>/<name>/partial`: present while a create is under way or after one crashed.
    pub fn partial_marker(&self) -> PathBuf {
        self.dir().join("partial")
    }
    /// A container is defined when its config exists and no create is in progress.
    pub fn is_defined(&self) -> bool {
        self.config().is_file() && !self.partial_marker().exists()
    }
}

/// Errors of [`Creation`].
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("container '{name}' already exists in {lxcpath}")]
    Exists { name: String, lxcpath: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// An in-progress create. Dropping it without [`Creation::commit`] removes the container
/// directory and everything in it.
#[derive(Debug)]
pub struct Creation {
    paths: ContainerPaths,
    /// The flock'd partial marker; closing it releases the lock.
    marker: Option<fs::File>,
    committed: bool,
}

impl Creation {
    /// Create `<lxcpath>/<name>` (0755), refusing an existing container. A directory left by
    /// a crashed create (a `partial` marker nobody holds locked) is removed first.
    pub fn begin(paths: ContainerPaths) -> Result<Creation, CreateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&paths.lxcpath)
            .map_err(io("create lxcpath", &paths.lxcpath))?;
        let dir = paths.dir();
        match fs::DirBuilder::new().mode(0o750).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !Self::reclaim_stale(&paths) {
                    return Err(CreateError::Exists {
                        name: paths.name.clone(),
                        lxcpath: paths.lxcpath.clone(),
                    });
                }
                fs::DirBuilder::new()
                    .mode(0o750)
                    .create(&dir)
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            CreateError::Exists {
                                name: paths.name.clone(),
                                lxcpath: paths.lxcpath.clone(),
                            }
                        } else {
                            CreateError::Io {
                                op: "create container directory",
                                path: dir.clone(),
                                source: e,
                            }
                        }
                    })?;
            }
            Err(e) => {
                return Err(CreateError::Io {
                    op: "create container directory",
                    path: dir,
                    source: e,
                })
            }
        }
        let mut c = Creation {
            paths,
            marker: None,
            committed: false,
        };
        let marker_path = c.paths.partial_marker();
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker_path)
            .map_err(io("create partial marker", &marker_path))?;
        flock_exclusive(&f, false).map_err(io("lock partial marker", &marker_path))?;
        c.marker = Some(f);
        Ok(c)
    }

    /// Remove a directory left behind by a crashed create. Returns whether it was removed.
    fn reclaim_stale(paths: &ContainerPaths) -> bool {
        let marker = paths.partial_marker();
        let Ok(f) = fs::File::open(&marker) else {
            return false;
        };
        if flock_exclusive(&f, true).is_err() {
            return false; // somebody is creating it right now
        }
        tracing::warn!(
            "removing {} left behind by an interrupted create",
            paths.dir().display()
        );
        crate::remove_container_dir(&paths.dir()).is_ok()
    }

    pub fn paths(&self) -> &ContainerPaths {
        &self.paths
    }

    /// Keep the container: remove the partial marker.
    pub fn commit(mut self) -> Result<(), CreateError> {
        let marker = self.paths.partial_marker();
        fs::remove_file(&marker).map_err(|source| CreateError::Io {
            op: "remove partial marker",
            path: marker,
            source,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Creation {
    fn drop(&mut self) {
        if !self.committed {
            let dir = self.paths.dir();
            if let Err(e) = crate::remove_container_dir(&dir) {
                tracing::error!(
                    "could not remove half-created container {}: {e}",
                    dir.display()
                );
            }
        }
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CreateError {
    let path = path.to_path_buf();
    move |source| CreateError::Io { op, path, source }
}

fn flock_exclusive(f: &fs::File, nonblock: bool) -> io::Result<()> {
    let op = libc::LOCK_EX | if nonblock { libc::LOCK_NB } else { 0 };
    // SAFETY: flock on a valid, open file descriptor owned by `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), op) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("c1").is_ok());
        assert!(validate_name("web-01.prod_x").is_ok());
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(validate_name("a/b"), Err(NameError::Slash(_))));
        assert!(matches!(validate_name(".."), Err(NameError::Dots(_))));
        assert!(matches!(validate_name("a..b"), Err(NameError::Dots(_))));
        assert!(matches!(validate_name("."), Err(NameError::Dots(_))));
        assert!(matches!(
            validate_name("-x"),
            Err(NameError::LeadingDash(_))
        ));
        assert!(matches!(
            validate_name("a b"),
            Err(NameError::BadChar { .. })
        ));
        assert!(matches!(
            validate_name(&"a".repeat(65)),
            Err(NameError::TooLong(_))
        ));
        assert!(validate_name(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn creation_is_all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let p = ContainerPaths::new(tmp.path().join("lxc"), "c1");
        {
            let c = Creation::begin(p.clone()).unwrap();
            fs::create_dir(c.paths().rootfs()).unwrap();
            fs::write(c.paths().rootfs().join("f"), "x").unwrap();
            assert!(p.partial_marker().exists());
            // dropped without commit
        }
        assert!(!p.dir().exists());
        let c = Creation::begin(p.clone()).unwrap();
        fs::write(p.config(), "lxc.uts.name = c1\n").unwrap();
        c.commit().unwrap();
        assert!(p.is_defined());
        assert!(matches!(
            Creation::begin(p.clone()),
            Err(CreateError::Exists { .. })
        ));
        assert!(
            p.config().exists(),
            "a refused create must not touch the existing container"
        );
    }

    #[test]
    fn stale_partial_is_reclaimed_but_live_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let p = ContainerPaths::new(tmp.path(), "c2");
        let live = Creation::begin(p.clone()).unwrap();
        assert!(matches!(
            Creation::begin(p.clone()),
            Err(CreateError::Exists { .. })
        ));
        // simulate a crash: release the lock without removing anything
        let mut live = live;
        live.committed = true;
        drop(live);
        assert!(p.partial_marker().exists());
        let c = Creation::begin(p.clone()).unwrap();
        c.commit().unwrap();
    }
}
