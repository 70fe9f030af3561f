//! The per-container state record a monitor keeps in the run directory: who it is and what it
//! created, so that after a killed monitor the next command can clean up.

use crate::host::CleanupItem;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub version: u32,
    pub name: String,
    pub lxcpath: PathBuf,
    pub monitor_pid: i32,
    /// Start time (clock ticks since boot, /proc/PID/stat field 22) to tell pid reuse apart.
    pub monitor_start: u64,
    #[serde(default)]
    pub init_pid: Option<i32>,
    #[serde(default)]
    pub init_start: Option<u64>,
    #[serde(default)]
    pub items: Vec<CleanupItem>,
    /// `start -p` pidfile, removed with the record.
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
}

/// Write `rec` atomically (temp file, rename).
pub fn write(path: &Path, rec: &StateRecord) -> std::io::Result<()> {
    let data = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

/// Atomic file write: write a sibling temp file, rename over `path`. Readers see the old or the
/// new content, never a mix. No fsync: these files describe the running system and live on a
/// tmpfs (`/run`) that does not survive a reboot anyway; an fsync costs milliseconds on the
/// start path.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    let r = f.write_all(data);
    drop(f);
    if let Err(e) = r.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Read a record; `Ok(None)` when there is none (or it is unreadable garbage, which is removed).
pub fn read(path: &Path) -> std::io::Result<Option<StateRecord>> {
    match std::fs::read(path) {
        Ok(data) => match serde_json::from_slice(&data) {
            Ok(r) => Ok(Some(r)),
            Err(_) => {
                let _ = std::fs::remove_file(path);
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Start time of a process (clock ticks since boot), `None` if it does not exist or is dead
/// (a zombie nobody reaped yet counts as dead).
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = lxrs_cgroup::read_pseudo(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // comm may contain spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    // rest starts at field 3 (state); starttime is field 22.
    if matches!(fields.next(), Some("Z") | Some("X") | None) {
        return None;
    }
    fields.nth(22 - 4)?.parse().ok()
}

/// Whether `pid` is still (alive and) the same process that had start time `start`.
pub fn same_process(pid: i32, start: u64) -> bool {
    proc_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/x/c1.json");
        let me = std::process::id() as i32;
        let rec = StateRecord {
            version: 1,
            name: "c1".into(),
            lxcpath: "/x".into(),
            monitor_pid: me,
            monitor_start: proc_start_time(me).unwrap(),
            init_pid: None,
            init_start: None,
            items: vec![CleanupItem::File {
                path: "/tmp/x".into(),
            }],
            pidfile: None,
        };
        write(&p, &rec).unwrap();
        assert_eq!(read(&p).unwrap(), Some(rec.clone()));
        assert!(same_process(me, rec.monitor_start));
        assert!(!same_process(me, rec.monitor_start + 1));
        std::fs::write(&p, b"{garbage").unwrap();
        assert_eq!(read(&p).unwrap(), None);
        assert!(!p.exists());
    }
}
