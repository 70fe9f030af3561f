//! Safe unpacking of rootfs tarballs (`.tar`, `.tar.xz`, `.tar.zst`, `.tar.gz`).
//!
//! Every entry is created relative to a directory file descriptor of the destination, and its
//! parent directory is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: a path
//! with `..`, an absolute path, or a path that walks through a symlink pointing outside the
//! destination (including one the same archive created a moment earlier) is refused by the
//! kernel before anything is written. The last component is never followed: an existing
//! symlink or file there is replaced, as `tar` does. Numeric owners, modes (incl. set-id bits),
//! mtimes, hard links, symlinks, device nodes, fifos and `SCHILY.xattr.*` extended attributes
//! are kept.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Errors of [`unpack`]: each names the archive and, where there is one, the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("archive {archive}: reading the tar stream: {source}")]
    Read { archive: PathBuf, source: io::Error },
    #[error("archive {archive}: entry '{entry}' refused: {why}")]
    Unsafe {
        archive: PathBuf,
        entry: String,
        why: String,
    },
    #[error("archive {archive}: entry '{entry}': {op}: {source}")]
    Entry {
        archive: PathBuf,
        entry: String,
        op: &'static str,
        source: io::Error,
    },
}

/// Compression of a tarball, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Unpack the tarball `archive` (compression detected from its content) into the existing
/// directory `dest`. On an unsafe entry the unpack stops with [`UnpackError::Unsafe`]; entries
/// before it stay inside `dest` (callers unpack into a directory they remove on failure), and
/// nothing outside `dest` is touched.
pub fn unpack(archive: &Path, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let mut f = File::open(archive).map_err(|source| UnpackError::Io {
        op: "open archive",
        path: archive.into(),
        source,
    })?;
    let mut head = [0u8; 6];
    let n = read_fully(&mut f, &mut head).map_err(|source| UnpackError::Io {
        op: "read archive",
        path: archive.into(),
        source,
    })?;
    let f = File::open(archive).map_err(|source| UnpackError::Io {
        op: "open archive",
        path: archive.into(),
        source,
    })?;
    let r = BufReader::with_capacity(1 << 20, f);
    let reader: Box<dyn Read> = match Compression::sniff(&head[..n]) {
        Compression::None => Box::new(r),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(
            |source| UnpackError::Io {
                op: "start zstd decoder for",
                path: archive.into(),
                source,
            },
        )?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
    };
    unpack_reader(reader, archive, dest)
}

fn read_fully(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpack an uncompressed tar stream; `archive` only names it in errors.
pub fn unpack_reader<R: Read>(
    reader: R,
    archive: &Path,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    let root = open_dir(dest).map_err(|source| UnpackError::Io {
        op: "open destination",
        path: dest.into(),
        source,
    })?;
    let mut ar = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = ar.entries().map_err(|source| UnpackError::Read {
        archive: archive.into(),
        source,
    })?;
    for e in entries {
        let mut e = e.map_err(|source| UnpackError::Read {
            archive: archive.into(),
            source,
        })?;
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_err = |why: &str| UnpackError::Unsafe {
            archive: archive.into(),
            entry: shown.clone(),
            why: why.into(),
        };
        let ent_err = |op: &'static str| {
            let shown = shown.clone();
            move |source: io::Error| UnpackError::Entry {
                archive: archive.into(),
                entry: shown,
                op,
                source,
            }
        };
        let rel = match checked_relative(&raw) {
            Ok(Some(p)) => p,
            Ok(None) => continue, // "./" itself
            Err(why) => return Err(unsafe_err(why)),
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let leaf = CString::new(
            rel.file_name()
                .expect("checked path has a last component")
                .as_bytes(),
        )
        .expect("tar paths have no NUL");
        let parent = open_beneath(&root, parent_rel).map_err(|source| {
            if source.raw_os_error() == Some(libc::EXDEV)
                || source.raw_os_error() == Some(libc::ELOOP)
            {
                unsafe_err("its directory leads outside the root filesystem (through a symlink)")
            } else {
                ent_err("open parent directory")(source)
            }
        })?;
        let h = e.header().clone();
        let mode = h.mode().map_err(ent_err("read mode"))? & 0o7777;
        let uid = h.uid().map_err(ent_err("read uid"))? as libc::uid_t;
        let gid = h.gid().map_err(ent_err("read gid"))? as libc::gid_t;
        let mtime = h.mtime().map_err(ent_err("read mtime"))? as i64;
        let xattrs = pax_xattrs(&mut e).map_err(ent_err("read pax headers"))?;
        let kind = h.entry_type();
        stats.entries += 1;
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match mkdirat(&parent, &leaf, 0o700) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                        if !is_dir_nofollow(&parent, &leaf) {
                            unlinkat(&parent, &leaf, false)
                                .map_err(ent_err("replace non-directory"))?;
                            mkdirat(&parent, &leaf, 0o700).map_err(ent_err("mkdir"))?;
                        }
                    }
                    Err(err) => return Err(ent_err("mkdir")(err)),
                }
                let d = openat_beneath(&parent, &leaf, libc::O_DIRECTORY | libc::O_RDONLY)
                    .map_err(ent_err("open new directory"))?;
                fchown(&d, uid, gid).map_err(ent_err("chown"))?;
                fchmod(&d, mode).map_err(ent_err("chmod"))?;
                set_xattrs(&d, &xattrs).map_err(ent_err("set xattr"))?;
                dir_times.push((rel.clone(), mtime));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                remove_existing(&parent, &leaf).map_err(ent_err("replace existing"))?;
                // SAFETY: openat on a valid directory fd with a NUL-terminated name; O_EXCL +
                // O_NOFOLLOW never follow a symlink at the leaf.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        leaf.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    return Err(ent_err("create file")(io::Error::last_os_error()));
                }
                // SAFETY: fd was just returned by openat and is owned by nobody else.
                let mut out = unsafe { File::from_raw_fd(fd) };
                stats.bytes += io::copy(&mut e, &mut out).map_err(ent_err("write file"))?;
                fchown(&out, uid, gid).map_err(ent_err("chown"))?;
                fchmod(&out, mode).map_err(ent_err("chmod"))?;
                set_xattrs(&out, &xattrs).map_err(ent_err("set xattr"))?;
                futimens(&out, mtime).map_err(ent_err("set mtime"))?;
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("symlink without a target"))?
                    .into_owned();
                let target =
                    CString::new(target).map_err(|_| unsafe_err("NUL in symlink target"))?;
                remove_existing(&parent, &leaf).map_err(ent_err("replace existing"))?;
                // SAFETY: valid fd and NUL-terminated strings; symlinkat never follows anything.
                let r =
                    unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), leaf.as_ptr()) };
                if r != 0 {
                    return Err(ent_err("symlink")(io::Error::last_os_error()));
                }
                lchownat(&parent, &leaf, uid, gid).map_err(ent_err("chown symlink"))?;
                lutimensat(&parent, &leaf, mtime).map_err(ent_err("set symlink mtime"))?;
            }
            T::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("hard link without a target"))?
                    .into_owned();
                let trel = match checked_relative(&target) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Err(unsafe_err("hard link to the root directory")),
                    Err(why) => return Err(unsafe_err(&format!("hard link target: {why}"))),
                };
                let tparent = open_beneath(&root, trel.parent().unwrap_or(Path::new(""))).map_err(|source| {
                    if matches!(source.raw_os_error(), Some(libc::EXDEV) | Some(libc::ELOOP)) {
                        unsafe_err("hard link target lies outside the root filesystem (through a symlink)")
                    } else {
                        ent_err("open hard link target directory")(source)
                    }
                })?;
                let tleaf =
                    CString::new(trel.file_name().expect("has a last component").as_bytes())
                        .expect("no NUL");
                remove_existing(&parent, &leaf).map_err(ent_err("replace existing"))?;
                // SAFETY: valid fds, NUL-terminated names; flags 0 = do not follow a symlink
                // at the target (the link is to the symlink itself, as tar does).
                let r = unsafe {
                    libc::linkat(
                        tparent.as_raw_fd(),
                        tleaf.as_ptr(),
                        parent.as_raw_fd(),
                        leaf.as_ptr(),
                        0,
                    )
                };
                if r != 0 {
                    return Err(ent_err("hard link")(io::Error::last_os_error()));
                }
            }
            T::Char | T::Block | T::Fifo => {
                let fmt = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = h
                    .device_major()
                    .map_err(ent_err("read device major"))?
                    .unwrap_or(0);
                let minor = h
                    .device_minor()
                    .map_err(ent_err("read device minor"))?
                    .unwrap_or(0);
                remove_existing(&parent, &leaf).map_err(ent_err("replace existing"))?;
                let dev = libc::makedev(major, minor);
                // SAFETY: valid directory fd and NUL-terminated name; mknodat creates a node
                // and follows nothing.
                let r =
                    unsafe { libc::mknodat(parent.as_raw_fd(), leaf.as_ptr(), fmt | 0o600, dev) };
                if r != 0 {
                    return Err(ent_err("mknod")(io::Error::last_os_error()));
                }
                lchownat(&parent, &leaf, uid, gid).map_err(ent_err("chown node"))?;
                fchmodat(&parent, &leaf, mode).map_err(ent_err("chmod node"))?;
                lutimensat(&parent, &leaf, mtime).map_err(ent_err("set node mtime"))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            other => {
                tracing::warn!(
                    "{}: skipping entry '{shown}' of unsupported type {other:?}",
                    archive.display()
                );
            }
        }
    }
    // Directory mtimes last (creating their children changed them), deepest first.
    dir_times.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (rel, mtime) in dir_times {
        let parent = match open_beneath(&root, rel.parent().unwrap_or(Path::new(""))) {
            Ok(p) => p,
            Err(_) => continue,
        };
        let leaf =
            CString::new(rel.file_name().expect("dir has a name").as_bytes()).expect("no NUL");
        let _ = lutimensat(&parent, &leaf, mtime);
    }
    Ok(stats)
}

/// The entry path as a relative path of normal components: absolute paths and `..` refused,
/// `.` components dropped. `Ok(None)` for the archive's root (`./`).
fn checked_relative(raw: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    if out.as_os_str().is_empty() {
        Ok(None)
    } else {
        Ok(Some(out))
    }
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: NUL-terminated path; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;

fn openat2(dir: RawFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dir fd, a NUL-terminated path and a correctly sized
    // `struct open_how`; the kernel only reads these.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Open the directory `rel` beneath `root`, never leaving it.
fn open_beneath(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let s = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(s.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    openat2(root.as_raw_fd(), &c, libc::O_PATH | libc::O_DIRECTORY)
}

fn openat_beneath(dir: &OwnedFd, leaf: &CStr, flags: i32) -> io::Result<OwnedFd> {
    openat2(dir.as_raw_fd(), leaf, flags | libc::O_NOFOLLOW)
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mkdirat(dir: &OwnedFd, leaf: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd, NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), leaf.as_ptr(), mode) })
}

fn unlinkat(dir: &OwnedFd, leaf: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid fd, NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), leaf.as_ptr(), flags) })
}

fn lstat_mode(dir: &OwnedFd, leaf: &CStr) -> io::Result<u32> {
    // SAFETY: zeroed `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated name, a writable stat buffer.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            leaf.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st.st_mode)
}

fn is_dir_nofollow(dir: &OwnedFd, leaf: &CStr) -> bool {
    lstat_mode(dir, leaf).is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR)
}

/// Remove what is at `leaf` (a file, a symlink, an empty directory) so it can be replaced.
fn remove_existing(dir: &OwnedFd, leaf: &CStr) -> io::Result<()> {
    match lstat_mode(dir, leaf) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) => unlinkat(dir, leaf, m & libc::S_IFMT == libc::S_IFDIR),
    }
}

fn fchown(f: &impl AsRawFd, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::fchown(f.as_raw_fd(), uid, gid) })
}

fn fchmod(f: &impl AsRawFd, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::fchmod(f.as_raw_fd(), mode) })
}

fn fchmodat(dir: &OwnedFd, leaf: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and name; the leaf is a device node or fifo we just made (no symlink).
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), leaf.as_ptr(), mode, 0) })
}

fn lchownat(dir: &OwnedFd, leaf: &CStr, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: valid fd and name; AT_SYMLINK_NOFOLLOW changes the link itself.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            leaf.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

fn times(mtime: i64) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    ]
}

fn futimens(f: &impl AsRawFd, mtime: i64) -> io::Result<()> {
    let t = times(mtime);
    // SAFETY: valid fd and a two-element timespec array.
    check(unsafe { libc::futimens(f.as_raw_fd(), t.as_ptr()) })
}

fn lutimensat(dir: &OwnedFd, leaf: &CStr, mtime: i64) -> io::Result<()> {
    let t = times(mtime);
    // SAFETY: valid fd, name and timespec array; AT_SYMLINK_NOFOLLOW acts on the link itself.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            leaf.as_ptr(),
            t.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

fn pax_xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let mut v = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                if let Ok(n) = CString::new(name) {
                    v.push((n, ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(v)
}

fn set_xattrs(f: &impl AsRawFd, xattrs: &[(CString, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in xattrs {
        // SAFETY: valid fd, NUL-terminated name, value pointer/length from a live Vec.
        check(unsafe {
            libc::fsetxattr(
                f.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })?;
    }
    Ok(())
}
