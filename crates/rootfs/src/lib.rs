//! lxrs-rootfs: where a container lives on disk and how it is made and removed.
//!
//! A container `NAME` under an lxcpath is the directory `<lxcpath>/NAME/` holding `config` and,
//! for the `dir` backend, `rootfs/`. Creation is all-or-nothing: [`Creation::begin`] makes the
//! directory atomically (an existing name is an error), marks it `partial` under an exclusive
//! lock, and removes everything again unless [`Creation::commit`] is called.

mod copy;
mod layout;
mod mounts;
mod pack;
mod remove;
mod unpack;

pub use copy::{copy_tree, CopyError};
pub use layout::{validate_name, ContainerPaths, CreateError, Creation, NameError, MAX_NAME_LEN};
pub use mounts::mounts_under;
pub use pack::{pack_xz, PackError};
pub use remove::{
    live_snapshots, record_snapshot, remove_container_dir, RemoveError, SNAPSHOTS_FILE,
};
pub use unpack::{unpack, unpack_reader, Compression, UnpackError, UnpackStats};

/// Storage backend of a rootfs (`lxc.rootfs.path` prefix, `lxrs create -B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A plain directory (`dir:`).
    Dir,
    /// An overlay over a read-only lower directory (`overlay:<lower>:<upper>`); the upper and
    /// work directories (`delta0`, `olwork`) live in the container directory.
    Overlay,
}

impl Backend {
    /// Parse a `-B` value. `none` and `best` mean `dir`, as in LXC.
    pub fn parse(s: &str) -> Result<Backend, BackendError> {
        match s {
            "dir" | "none" | "best" => Ok(Backend::Dir),
            "overlay" | "overlayfs" => Ok(Backend::Overlay),
            other => Err(BackendError::Unsupported(other.to_string())),
        }
    }

    /// The `lxc.rootfs.path` value for a rootfs at `path` (an overlay's is set once its lower
    /// directory is known; until then the mount point is written as a directory).
    pub fn rootfs_value(self, path: &std::path::Path) -> String {
        format!("dir:{}", path.display())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    #[error("unsupported storage backend '{0}' (supported: dir, overlay)")]
    Unsupported(String),
}

/// Split an `lxc.rootfs.path` value into backend and path (`dir:/x` → (Dir, /x); a bare path is
/// a directory).
pub fn parse_rootfs_path(value: &str) -> Result<(Backend, std::path::PathBuf), BackendError> {
    if let Some(rest) = value.strip_prefix("dir:") {
        return Ok((Backend::Dir, rest.into()));
    }
    if value.starts_with('/') {
        return Ok((Backend::Dir, value.into()));
    }
    let backend = value.split(':').next().unwrap_or(value);
    Err(BackendError::Unsupported(backend.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_values() {
        assert_eq!(
            parse_rootfs_path("dir:/a/b").unwrap(),
            (Backend::Dir, "/a/b".into())
        );
        assert_eq!(
            parse_rootfs_path("/a/b").unwrap(),
            (Backend::Dir, "/a/b".into())
        );
        assert_eq!(
            parse_rootfs_path("zfs:pool/x").unwrap_err(),
            BackendError::Unsupported("zfs".into())
        );
        assert_eq!(Backend::parse("none").unwrap(), Backend::Dir);
        assert!(Backend::parse("lvm").is_err());
        assert_eq!(Backend::parse("overlayfs").unwrap(), Backend::Overlay);
        assert_eq!(
            Backend::Dir.rootfs_value("/x/rootfs".as_ref()),
            "dir:/x/rootfs"
        );
    }
}
