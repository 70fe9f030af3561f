//! Small file helpers that attach the path and operation to every error.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Read a kernel pseudo file (procfs, cgroupfs, sysfs) whole. They report a size of 0, so
/// `std::fs::read_to_string` probes with 32 bytes and grows from there: nine reads for a
/// mountinfo. Here the first read asks for 16 KiB, and the second sees the end.
pub fn read_pseudo(path: &Path) -> std::io::Result<String> {
    read_pseudo_file(std::fs::File::open(path)?)
}

/// [`read_pseudo`] of an open file.
pub fn read_pseudo_file(mut f: std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(16 * 1024);
    f.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

pub(crate) fn read(path: &Path) -> Result<String> {
    read_pseudo(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file that may be absent: `Ok(None)` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match read_pseudo(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// One `write(2)` of `value` to an existing cgroup file (never creates or truncates it: cgroup
/// files take one value per write).
pub(crate) fn write_raw(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    write_raw(path, value).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Parse a single unsigned number file; `Ok(None)` when the file does not exist.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    Ok(read_opt(path)?.and_then(|s| s.trim().parse().ok()))
}

/// Pids listed in `cgroup.procs` of `dir`; an absent directory has none.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>> {
    Ok(read_opt(&dir.join("cgroup.procs"))?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// `dir` and every cgroup below it, parents before children.
pub(crate) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let d = out[i].clone();
        i += 1;
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::ReadDir { path: d, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| Error::ReadDir {
                path: d.clone(),
                source,
            })?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// Pids in `dir` and all its descendants.
pub(crate) fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for d in walk(dir)? {
        pids.extend(procs(&d)?);
    }
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::read_pseudo;
    use std::path::Path;

    #[test]
    fn pseudo_files_and_files_beyond_the_first_read_are_read_whole() {
        let stat = read_pseudo(Path::new("/proc/self/stat")).unwrap();
        assert!(stat.starts_with(&format!("{} (", std::process::id())));
        assert!(stat.ends_with('\n'));
        let dir = tempfile::tempdir().unwrap();
        let big: String = (0..5000).map(|i| format!("{i}\n")).collect();
        assert!(big.len() > 16 * 1024);
        let p = dir.path().join("big");
        std::fs::write(&p, &big).unwrap();
        assert_eq!(read_pseudo(&p).unwrap(), big);
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_pseudo(&p).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            read_pseudo(&dir.path().join("none")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
