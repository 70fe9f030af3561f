//! cgroup v2: one directory in the unified tree; device filter as an eBPF program.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::devices::{bpf, sys, DeviceRule, DeviceRules};
use crate::error::{Error, Result};
use crate::freezer::{Freezer, FreezerState};
use crate::fsutil;
use crate::interfaces::{DeviceFilter, Limits, Procs, StatsSource};
use crate::limits::{is_device_key, split_key};
use crate::stats::{flat_keyed, Stats};

/// A cgroup in the cgroup2 tree.
#[derive(Debug)]
pub struct V2Cgroup {
    pub(crate) name: String,
    pub(crate) root: PathBuf,
    pub(crate) path: PathBuf,
    /// The attached device program, kept open (the monitor holds it for the container's life).
    pub(crate) prog: Option<OwnedFd>,
    pub(crate) rules: Option<DeviceRules>,
}

impl V2Cgroup {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The loaded device program (attached to this cgroup), if this process installed one.
    pub fn device_prog_fd(&self) -> Option<BorrowedFd<'_>> {
        self.prog.as_ref().map(|f| f.as_fd())
    }

    fn setting_path(&self, key: &str) -> Result<PathBuf> {
        let (ctl, file) = split_key(key)?;
        if is_device_key(key) {
            return Err(Error::InvalidKey {
                key: key.to_string(),
                reason:
                    "on cgroup2 device rules are an eBPF program, not a file: use the device filter"
                        .into(),
            });
        }
        let path = self.path.join(file);
        if path.exists() {
            return Ok(path);
        }
        if ctl != "cgroup" {
            let enabled =
                fsutil::read_opt(&self.path.join("cgroup.controllers"))?.unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == ctl) {
                return Err(Error::ControllerNotEnabled {
                    key: key.to_string(),
                    controller: ctl.to_string(),
                    path: self.path.clone(),
                    enabled: enabled.trim().to_string(),
                });
            }
        }
        Err(Error::NoSuchSetting {
            key: key.to_string(),
            path,
        })
    }

    fn open_dir(&self) -> Result<File> {
        File::open(&self.path).map_err(|source| Error::Bpf {
            op: "opening the cgroup directory",
            path: self.path.clone(),
            source,
        })
    }

    /// Compile, load and attach `rules`, replacing the program attached before (ours, or
    /// whatever device programs are attached to the cgroup when this process holds none).
    fn install(&mut self, rules: &DeviceRules) -> Result<()> {
        let insns = bpf::compile(rules);
        let new = sys::load(&insns, &self.path)?;
        let dir = self.open_dir()?;
        let olds: Vec<OwnedFd> = match self.prog.take() {
            Some(fd) => vec![fd],
            None => {
                let ids = sys::query(dir.as_fd()).map_err(|source| Error::Bpf {
                    op: "querying attached programs",
                    path: self.path.clone(),
                    source,
                })?;
                let mut fds = Vec::new();
                for id in ids {
                    fds.push(sys::prog_fd_by_id(id).map_err(|source| Error::Bpf {
                        op: "opening an attached program",
                        path: self.path.clone(),
                        source,
                    })?);
                }
                fds
            }
        };
        if olds.len() == 1 {
            match sys::attach(dir.as_fd(), new.as_fd(), Some(olds[0].as_fd())) {
                Ok(()) => {
                    tracing::debug!(path = %self.path.display(), insns = insns.len(), "device program replaced");
                    self.prog = Some(new);
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "BPF_F_REPLACE failed, attaching then detaching")
                }
            }
        }
        if let Err(source) = sys::attach(dir.as_fd(), new.as_fd(), None) {
            // The old program (if any) stays attached and in force.
            self.prog = olds.into_iter().next();
            return Err(Error::Bpf {
                op: "attaching",
                path: self.path.clone(),
                source,
            });
        }
        self.prog = Some(new);
        for old in &olds {
            match sys::detach(dir.as_fd(), old.as_fd()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => {
                    return Err(Error::Bpf {
                        op: "detaching the previous program",
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        tracing::debug!(path = %self.path.display(), insns = insns.len(), "device program attached");
        Ok(())
    }
}

impl Procs for V2Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        let path = self.path.join("cgroup.procs");
        fsutil::write_raw(&path, &pid.to_string()).map_err(|source| Error::AddPid {
            pid,
            path,
            source,
        })
    }

    fn self_join_files(&self) -> Option<Vec<PathBuf>> {
        None
    }

    fn join_self(&self) -> Result<()> {
        self.add_pid(std::process::id() as i32)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fsutil::procs_recursive(&self.path)
    }
}

impl Limits for V2Cgroup {
    fn set(&self, key: &str, value: &str) -> Result<()> {
        let path = self.setting_path(key)?;
        tracing::debug!(path = %path.display(), value, "cgroup setting");
        fsutil::write_raw(&path, value).map_err(|source| Error::Setting {
            key: key.to_string(),
            value: value.to_string(),
            path,
            source,
        })
    }

    fn get(&self, key: &str) -> Result<String> {
        let path = self.setting_path(key)?;
        Ok(fsutil::read(&path)?.trim_end().to_string())
    }

    fn apply_limits(&self, settings: &[(String, String)]) -> Result<()> {
        for (k, v) in settings {
            self.set(k, v)?;
        }
        Ok(())
    }
}

impl Freezer for V2Cgroup {
    fn freezer_path(&self) -> PathBuf {
        self.path.join("cgroup.freeze")
    }

    /// `cgroup.freeze` says what was asked, `cgroup.events` `frozen` what the kernel did:
    /// both 1 is Frozen, both 0 Thawed, anything else in between.
    fn freezer_state(&self) -> Result<FreezerState> {
        let freeze_path = self.freezer_path();
        let Some(asked) = fsutil::read_opt(&freeze_path)? else {
            return Err(Error::NoFreezer {
                name: self.name.clone(),
                reason: format!(
                    "{} does not exist (kernel older than 5.2?)",
                    freeze_path.display()
                ),
            });
        };
        let events_path = self.path.join("cgroup.events");
        let events = fsutil::read(&events_path)?;
        let frozen = flat_keyed(&events, "frozen").ok_or_else(|| Error::FreezerStateValue {
            path: events_path.clone(),
            value: events.trim().to_string(),
        })?;
        parse_v2_state(asked.trim(), frozen, &freeze_path)
    }

    fn request_freeze(&self, frozen: bool) -> Result<()> {
        fsutil::write(&self.freezer_path(), if frozen { "1" } else { "0" })
    }
}

pub(crate) fn parse_v2_state(asked: &str, frozen: u64, path: &Path) -> Result<FreezerState> {
    match (asked, frozen) {
        ("1", 1) => Ok(FreezerState::Frozen),
        ("0", 0) => Ok(FreezerState::Thawed),
        ("0", _) | ("1", _) => Ok(FreezerState::Freezing),
        (other, _) => Err(Error::FreezerStateValue {
            path: path.to_path_buf(),
            value: other.to_string(),
        }),
    }
}

impl DeviceFilter for V2Cgroup {
    fn set_devices(&mut self, rules: &DeviceRules) -> Result<()> {
        self.install(rules)?;
        self.rules = Some(rules.clone());
        Ok(())
    }

    fn add_device_rule(&mut self, rule: DeviceRule) -> Result<()> {
        let Some(mut rules) = self.rules.clone() else {
            return Err(Error::DeviceRule {
                rule: rule.to_string(),
                reason: format!(
                    "no device list was installed on {} by this process; updates go through the process that holds it (the monitor)",
                    self.path.display()
                ),
            });
        };
        rules.add(rule);
        self.set_devices(&rules)
    }

    fn device_rules(&self) -> Option<&DeviceRules> {
        self.rules.as_ref()
    }
}

impl StatsSource for V2Cgroup {
    fn stats(&self) -> Result<Stats> {
        let p = &self.path;
        let processes = match fsutil::read_u64_opt(&p.join("pids.current"))? {
            Some(n) => Some(n),
            None => Some(fsutil::procs_recursive(p)?.len() as u64),
        };
        Ok(Stats {
            memory_bytes: fsutil::read_u64_opt(&p.join("memory.current"))?,
            swap_bytes: fsutil::read_u64_opt(&p.join("memory.swap.current"))?,
            cpu_ns: fsutil::read_opt(&p.join("cpu.stat"))?
                .and_then(|t| flat_keyed(&t, "usage_usec"))
                .map(|us| us.saturating_mul(1000)),
            processes,
        })
    }
}
