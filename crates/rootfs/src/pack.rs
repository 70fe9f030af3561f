//! Packing a root filesystem into a tarball (for `lxrs publish`): numeric owners, modes,
//! mtimes, hard links, symlinks, device nodes, fifos and extended attributes (as
//! `SCHILY.xattr.*` PAX records, what GNU tar and distrobuilder write). Never follows a symlink.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Errors of [`pack`].
#[derive(Debug, thiserror::Error)]
#[error("packing {root} into {archive}: {op} {path}: {source}")]
pub struct PackError {
    pub root: PathBuf,
    pub archive: PathBuf,
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// Write `root`'s tree as an xz-compressed tarball to `out` (entries named `./...`).
/// `archive` only names the output in errors.
pub fn pack_xz<W: Write>(root: &Path, out: W, archive: &Path) -> Result<W, PackError> {
    let enc = xz2::write::XzEncoder::new(out, 6);
    let mut b = tar::Builder::new(enc);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let err = |op: &'static str, path: &Path| {
        let (root, archive, path) = (
            root.to_path_buf(),
            archive.to_path_buf(),
            path.to_path_buf(),
        );
        move |source: io::Error| PackError {
            root,
            archive,
            op,
            path,
            source,
        }
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let md = fs::symlink_metadata(&full).map_err(err("stat", &full))?;
        let name = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            Path::new(".").join(&rel)
        };
        let xattrs = list_xattrs(&full).map_err(err("read xattrs of", &full))?;
        if !xattrs.is_empty() {
            let recs: Vec<(String, Vec<u8>)> = xattrs
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v))
                .collect();
            b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(err("write pax header for", &full))?;
        }
        let ft = md.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &name, io::empty())
                .map_err(err("write", &full))?;
            let mut kids: Vec<_> = fs::read_dir(&full)
                .map_err(err("read directory", &full))?
                .map(|e| e.map(|e| rel.join(e.file_name())))
                .collect::<Result<_, _>>()
                .map_err(err("read directory", &full))?;
            kids.sort();
            kids.reverse();
            stack.extend(kids);
        } else if ft.is_file() && md.nlink() > 1 && links.contains_key(&(md.dev(), md.ino())) {
            let target = links[&(md.dev(), md.ino())].clone();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, &name, &target)
                .map_err(err("write hard link", &full))?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                links.insert((md.dev(), md.ino()), name.clone());
            }
            let f = fs::File::open(&full).map_err(err("open", &full))?;
            b.append_data(&mut h, &name, f)
                .map_err(err("write", &full))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(err("read symlink", &full))?;
            h.set_size(0);
            b.append_link(&mut h, &name, &target)
                .map_err(err("write symlink", &full))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_size(0);
            if !ft.is_fifo() {
                let rdev = md.rdev();
                h.set_device_major(libc::major(rdev))
                    .map_err(err("set device major of", &full))?;
                h.set_device_minor(libc::minor(rdev))
                    .map_err(err("set device minor of", &full))?;
            }
            b.append_data(&mut h, &name, io::empty())
                .map_err(err("write node", &full))?;
        } else {
            tracing::warn!("skipping socket {}", full.display());
        }
    }
    let enc = b.into_inner().map_err(err("finish tar stream", archive))?;
    enc.finish().map_err(err("finish xz stream", archive))
}

fn list_xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated path and a writable buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(vec![])
        } else {
            Err(e)
        };
    }
    buf.truncate(n as usize);
    let mut out = Vec::new();
    for name in buf.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cn = CString::new(name).expect("split on NUL");
        let mut val = vec![0u8; 65536];
        // SAFETY: NUL-terminated path and name, writable buffer of the given length.
        let m =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if m < 0 {
            return Err(io::Error::last_os_error());
        }
        val.truncate(m as usize);
        out.push((name.to_vec(), val));
    }
    Ok(out)
}
