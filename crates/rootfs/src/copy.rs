//! Copying a root filesystem tree (cache → container, container → clone), keeping owners,
//! modes, timestamps, hard links, symlinks, device nodes and xattrs. GNU `cp -a
//! --reflink=auto` does exactly that, shares extents on btrfs/xfs (a reflink: near-instant) and
//! otherwise copies with copy_file_range in the kernel, one pass, no threads.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy {src} to {dst}: running cp: {source}")]
    Spawn {
        src: PathBuf,
        dst: PathBuf,
        source: std::io::Error,
    },
    #[error("copy {src} to {dst}: cp failed ({status}): {stderr}")]
    Failed {
        src: PathBuf,
        dst: PathBuf,
        status: String,
        stderr: String,
    },
}

/// Copy the contents of directory `src` into the existing directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), CopyError> {
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--no-target-directory")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .output()
        .map_err(|source| CopyError::Spawn {
            src: src.into(),
            dst: dst.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(CopyError::Failed {
            src: src.into(),
            dst: dst.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
