//! The host-side seam of a start: what the monitor does on the host for a container between
//! cloning its init and letting it run (cgroup placement, limits and device rules; host side of
//! the network), and how it is undone.
//!
//! The monitor calls [`HostSetup::prepare`] after the clone and BEFORE writing the sync byte
//! that lets the child continue, so the child unshares its cgroup namespace inside its cgroup
//! and finds its network interfaces in place. Everything created is recorded as a
//! [`CleanupItem`]; the list is persisted in the state record, so if the monitor is killed the
//! next command runs [`HostSetup::teardown`] over it.

use crate::spec::StartSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One thing the host side created, to be undone at stop (or after a monitor crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CleanupItem {
    /// A cgroup directory (v1 controller dir or v2 dir) to remove once empty.
    Cgroup { path: PathBuf },
    /// A host network link (e.g. a veth peer) to delete, by name.
    Link { name: String },
    /// A host mount point to unmount (lazily).
    Mount { path: PathBuf },
    /// A host file to remove.
    File { path: PathBuf },
    /// Anything else a backend records; only that backend's teardown understands it.
    Other {
        backend: String,
        data: serde_json::Value,
    },
}

/// Errors of the host-side setup and teardown.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {message}")]
    Other { op: &'static str, message: String },
}

/// Host-side setup and teardown, behind a trait so the cgroup and network backends slot in and
/// the monitor's sequencing can be tested with a recording fake.
pub trait HostSetup {
    /// Set up the host side for `child_pid` (cloned, blocked on the sync pipe). Push every
    /// created object onto `created` as soon as it exists: on error the monitor tears down what
    /// is there.
    fn prepare(
        &mut self,
        spec: &StartSpec,
        child_pid: i32,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError>;

    /// Undo `items` in reverse order, collecting every error instead of stopping at the first.
    /// Called with the container's processes gone (or about to be: cgroups are retried).
    fn teardown(&mut self, items: &[CleanupItem]) -> Vec<HostError>;

    /// Host-side work before the child is cloned: may return an open cgroup2 directory for
    /// the child to be cloned straight into (`CLONE_INTO_CGROUP`), so that [`prepare`] has no
    /// process to move. Push created objects onto `created` as in [`prepare`].
    ///
    /// [`prepare`]: HostSetup::prepare
    fn before_clone(
        &mut self,
        _spec: &StartSpec,
        _created: &mut Vec<CleanupItem>,
    ) -> Result<Option<std::os::fd::OwnedFd>, HostError> {
        Ok(None)
    }

    /// Files the child writes `0` into, in order, on its release (before it unshares its
    /// cgroup namespace): the cgroups it joins itself (see `lxrs_cgroup::Procs::join_self`).
    fn child_joins(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Host-side work that can wait until init runs (the monitor runs it a moment after the
    /// start result is sent, while the container still runs): e.g. moving the monitor into
    /// its own cgroup. Failures are logged, not fatal.
    fn after_running(
        &mut self,
        _spec: &StartSpec,
        _created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError> {
        Ok(())
    }

    /// The running container's cgroups (freeze, thaw, device rules), if this setup made them.
    fn cgroups(&mut self) -> Option<&mut crate::cgroups::ContainerCgroups> {
        None
    }
}

/// What exists today: nothing to prepare; generic teardown of mounts, files and cgroup
/// directories. The lead wires the cgroup and network crates in here.
#[derive(Debug, Default)]
pub struct DefaultHostSetup;

impl HostSetup for DefaultHostSetup {
    fn prepare(
        &mut self,
        spec: &StartSpec,
        child_pid: i32,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError> {
        crate::network::prepare(spec, child_pid, created)
    }

    fn teardown(&mut self, items: &[CleanupItem]) -> Vec<HostError> {
        let mut errors = Vec::new();
        // Host links and phys hand-back (through the pinned netns) go to the network backend.
        let mut net = crate::network::Teardown::new();
        for item in items.iter().rev() {
            let r = if crate::network::owns(item) {
                net.undo(item)
            } else {
                teardown_generic(item)
            };
            if let Err(e) = r {
                errors.push(e);
            }
        }
        errors.extend(net.finish());
        errors
    }
}

/// The host setup the monitor and the leftover cleanup use: the cgroups
/// ([`crate::cgroups::WithCgroups`]: made first, removed last) around the network and the
/// generic items.
pub fn default_host_setup() -> Box<dyn HostSetup> {
    Box::new(crate::cgroups::WithCgroups::new(DefaultHostSetup))
}

/// Undo one item of the generic kinds; `Link`/`Other` need a backend and are reported.
pub fn teardown_generic(item: &CleanupItem) -> Result<(), HostError> {
    if let Some(r) = crate::cgroups::teardown_item(item) {
        return r;
    }
    match item {
        CleanupItem::Mount { path } => {
            match nix::mount::umount2(path.as_path(), nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
                Err(e) => Err(HostError::Io {
                    op: "unmount",
                    path: path.clone(),
                    source: e.into(),
                }),
            }
        }
        CleanupItem::File { path } => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HostError::Io {
                op: "remove",
                path: path.clone(),
                source: e,
            }),
        },
        CleanupItem::Cgroup { path } => remove_cgroup_dir(path),
        CleanupItem::Link { name } => Err(HostError::Other {
            op: "delete link",
            message: format!("no network backend wired to delete {name:?}"),
        }),
        CleanupItem::Other { backend, .. } => Err(HostError::Other {
            op: "teardown",
            message: format!("no {backend:?} backend wired"),
        }),
    }
}

/// rmdir a cgroup (children first), retrying briefly while its processes finish dying
/// (EBUSY). Bounded: about one second.
fn remove_cgroup_dir(path: &std::path::Path) -> Result<(), HostError> {
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_dir(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut step = Duration::from_millis(2);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(step);
                step = (step * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(HostError::Io {
                    op: "remove cgroup",
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_items_serialise_tagged() {
        let items = vec![
            CleanupItem::Cgroup {
                path: "/sys/fs/cgroup/lxrs.payload.c1".into(),
            },
            CleanupItem::Link {
                name: "vethXYZ".into(),
            },
        ];
        let s = serde_json::to_string(&items).unwrap();
        assert!(s.contains(r#""kind":"cgroup""#), "{s}");
        let back: Vec<CleanupItem> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, items);
    }

    #[test]
    fn default_teardown_removes_files_and_dirs_collecting_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let d = dir.path().join("cg/sub");
        std::fs::create_dir_all(&d).unwrap();
        let items = vec![
            CleanupItem::File { path: f.clone() },
            // Unknown backend: reported, and the rest still undone. (No Link here: that
            // would delete a link of the machine's own namespace.)
            CleanupItem::Other {
                backend: "nonexistent-backend".into(),
                data: serde_json::Value::Null,
            },
            CleanupItem::Cgroup {
                path: dir.path().join("cg"),
            },
        ];
        let errs = DefaultHostSetup.teardown(&items);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(!f.exists());
        assert!(!dir.path().join("cg").exists());
    }
}
