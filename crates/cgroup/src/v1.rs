//! cgroup v1: one directory per mounted hierarchy.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::devices::{DeviceRule, DeviceRules};
use crate::error::{Error, Result};
use crate::freezer::{Freezer, FreezerState};
use crate::fsutil;
use crate::interfaces::{DeviceFilter, Limits, Procs, StatsSource};
use crate::limits::{split_key, v1_order};
use crate::stats::{flat_keyed, Stats};

/// The cgroup's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Dir {
    pub controllers: Vec<String>,
    /// Hierarchy root (mount point).
    pub root: PathBuf,
    /// `root/<cgroup name>`.
    pub path: PathBuf,
}

/// A cgroup in every mounted v1 hierarchy.
#[derive(Debug)]
pub struct V1Cgroup {
    pub(crate) name: String,
    pub(crate) dirs: Vec<V1Dir>,
    pub(crate) rules: Option<DeviceRules>,
}

impl V1Cgroup {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn v1_dirs(&self) -> &[V1Dir] {
        &self.dirs
    }

    /// The directory in the hierarchy of `controller`.
    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    fn setting_path(&self, key: &str) -> Result<(PathBuf, String)> {
        let (ctl, file) = split_key(key)?;
        let dir = self
            .dir_of(ctl)
            .ok_or_else(|| Error::ControllerNotMounted {
                key: key.to_string(),
                controller: ctl.to_string(),
            })?;
        let path = dir.join(file);
        if !path.exists() {
            return Err(Error::NoSuchSetting {
                key: key.to_string(),
                path,
            });
        }
        Ok((path, file.to_string()))
    }

    fn devices_dir(&self, key: &str) -> Result<&Path> {
        self.dir_of("devices")
            .ok_or_else(|| Error::ControllerNotMounted {
                key: key.to_string(),
                controller: "devices".into(),
            })
    }

    fn write_device(&self, file: &str, rule: &str) -> Result<()> {
        let path = self.devices_dir(file)?.join(file);
        tracing::debug!(path = %path.display(), rule, "device rule");
        fsutil::write_raw(&path, rule).map_err(|source| Error::Setting {
            key: file.to_string(),
            value: rule.to_string(),
            path,
            source,
        })
    }

    /// A fresh cpuset cgroup has empty `cpuset.cpus`/`cpuset.mems` and refuses tasks: copy
    /// them from the nearest ancestor that has them.
    pub(crate) fn init_cpuset(dir: &Path) -> Result<()> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let path = dir.join(file);
            let Some(cur) = fsutil::read_opt(&path)? else {
                continue;
            };
            if !cur.trim().is_empty() {
                continue;
            }
            let mut parent = dir.parent();
            while let Some(p) = parent {
                if let Some(v) = fsutil::read_opt(&p.join(file))? {
                    if !v.trim().is_empty() {
                        fsutil::write(&path, v.trim())?;
                        break;
                    }
                } else {
                    break;
                }
                parent = p.parent();
            }
        }
        Ok(())
    }
}

impl Procs for V1Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            let path = d.path.join("cgroup.procs");
            fsutil::write_raw(&path, &pid.to_string()).map_err(|source| Error::AddPid {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Option<Vec<PathBuf>> {
        Some(self.dirs.iter().map(|d| d.path.join("tasks")).collect())
    }

    fn join_self(&self) -> Result<()> {
        for path in self.self_join_files().unwrap_or_default() {
            fsutil::write_raw(&path, "0").map_err(|source| Error::AddPid {
                pid: std::process::id() as i32,
                path,
                source,
            })?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for d in &self.dirs {
            for p in fsutil::procs_recursive(&d.path)? {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        Ok(all)
    }
}

impl Limits for V1Cgroup {
    fn set(&self, key: &str, value: &str) -> Result<()> {
        let (path, _) = self.setting_path(key)?;
        tracing::debug!(path = %path.display(), value, "cgroup setting");
        fsutil::write_raw(&path, value).map_err(|source| Error::Setting {
            key: key.to_string(),
            value: value.to_string(),
            path,
            source,
        })
    }

    fn get(&self, key: &str) -> Result<String> {
        let (path, _) = self.setting_path(key)?;
        Ok(fsutil::read(&path)?.trim_end().to_string())
    }

    fn apply_limits(&self, settings: &[(String, String)]) -> Result<()> {
        for (k, v) in v1_order(settings) {
            self.set(k, v)?;
        }
        Ok(())
    }
}

impl Freezer for V1Cgroup {
    fn freezer_path(&self) -> PathBuf {
        self.dir_of("freezer")
            .map(|d| d.join("freezer.state"))
            .unwrap_or_else(|| PathBuf::from(format!("{} (no freezer hierarchy)", self.name)))
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        let dir = self.dir_of("freezer").ok_or_else(|| Error::NoFreezer {
            name: self.name.clone(),
            reason: "the v1 freezer controller is not mounted".into(),
        })?;
        let path = dir.join("freezer.state");
        parse_v1_state(&fsutil::read(&path)?, &path)
    }

    fn request_freeze(&self, frozen: bool) -> Result<()> {
        fsutil::write(
            &self.freezer_path(),
            if frozen { "FROZEN" } else { "THAWED" },
        )
    }
}

pub(crate) fn parse_v1_state(text: &str, path: &Path) -> Result<FreezerState> {
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::FreezerStateValue {
            path: path.to_path_buf(),
            value: other.to_string(),
        }),
    }
}

impl DeviceFilter for V1Cgroup {
    fn set_devices(&mut self, rules: &DeviceRules) -> Result<()> {
        let dir = self.devices_dir("devices.deny")?.to_path_buf();
        // One descriptor per file for the whole list: the kernel parses every write(2) as a
        // rule of its own, and a fresh open of a cgroup file costs more than the write.
        let mut open: Vec<(&str, std::fs::File)> = Vec::with_capacity(2);
        for (file, rule) in rules.v1_writes() {
            let path = dir.join(file);
            tracing::debug!(path = %path.display(), rule, "device rule");
            let failed = |source| Error::Setting {
                key: file.to_string(),
                value: rule.clone(),
                path: path.clone(),
                source,
            };
            let f = match open.iter().position(|(name, _)| *name == file) {
                Some(i) => &mut open[i].1,
                None => {
                    let f = OpenOptions::new().write(true).open(&path).map_err(failed)?;
                    open.push((file, f));
                    &mut open.last_mut().expect("just pushed").1
                }
            };
            f.write_all(rule.as_bytes()).map_err(failed)?;
        }
        self.rules = Some(rules.clone());
        Ok(())
    }

    fn add_device_rule(&mut self, rule: DeviceRule) -> Result<()> {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        self.write_device(file, &rule.to_string())?;
        if let Some(r) = self.rules.as_mut() {
            r.add(rule);
        }
        Ok(())
    }

    fn device_rules(&self) -> Option<&DeviceRules> {
        self.rules.as_ref()
    }
}

impl StatsSource for V1Cgroup {
    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(mem) = self.dir_of("memory") {
            s.memory_bytes = fsutil::read_u64_opt(&mem.join("memory.usage_in_bytes"))?;
            let memsw = fsutil::read_u64_opt(&mem.join("memory.memsw.usage_in_bytes"))?;
            s.swap_bytes = match (memsw, s.memory_bytes) {
                (Some(sw), Some(m)) => Some(sw.saturating_sub(m)),
                _ => {
                    fsutil::read_opt(&mem.join("memory.stat"))?.and_then(|t| flat_keyed(&t, "swap"))
                }
            };
        }
        if let Some(acct) = self.dir_of("cpuacct") {
            s.cpu_ns = fsutil::read_u64_opt(&acct.join("cpuacct.usage"))?;
        }
        if let Some(p) = self.dir_of("pids") {
            s.processes = fsutil::read_u64_opt(&p.join("pids.current"))?;
        }
        if s.processes.is_none() {
            if let Some(d) = self.dirs.first() {
                s.processes = Some(fsutil::procs_recursive(&d.path)?.len() as u64);
            }
        }
        Ok(s)
    }
}
