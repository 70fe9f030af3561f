//! One trait per kernel interface; [`crate::V1Cgroup`] and [`crate::V2Cgroup`] implement them
//! and [`crate::Cgroup`] dispatches. (The freezer trait is [`crate::Freezer`].)

use std::path::PathBuf;

use crate::devices::{DeviceRule, DeviceRules};
use crate::error::Result;
use crate::stats::Stats;

/// Membership: `cgroup.procs` (and v1 `tasks`).
pub trait Procs {
    /// The cgroup's directories (one per v1 hierarchy, one on v2).
    fn dirs(&self) -> Vec<PathBuf>;
    /// Move a process (all its threads) into the cgroup.
    fn add_pid(&self, pid: i32) -> Result<()>;
    /// The files through which a single-threaded process moves itself in by writing `0`
    /// without waiting for an RCU grace period, when the kernel has such a way: v1's `tasks`
    /// (one per hierarchy). Moving a whole process (`cgroup.procs`, any pid) takes the global
    /// `cgroup_threadgroup_rwsem` for writing, which on an idle host first waits a grace
    /// period (5-12 ms here); moving only the calling thread skips that lock. `None` on v2,
    /// where a domain cgroup only takes whole processes.
    fn self_join_files(&self) -> Option<Vec<PathBuf>>;
    /// Move the calling process, which must be single-threaded (else only the calling thread
    /// moves on v1), into the cgroup: through [`Procs::self_join_files`] where there are
    /// such, else `cgroup.procs`.
    fn join_self(&self) -> Result<()>;
    /// Processes in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;
}

/// Controller files: `<ctl>.<file>` settings.
pub trait Limits {
    /// Write one setting (`memory.limit_in_bytes`, `pids.max`, ...; an `lxc.cgroup.` /
    /// `lxc.cgroup2.` prefix is accepted). Errors name the key and say when the controller
    /// or the file does not exist.
    fn set(&self, key: &str, value: &str) -> Result<()>;
    /// Read one setting, trailing newline removed.
    fn get(&self, key: &str) -> Result<String>;
    /// Write settings in order (v1: `memory.memsw.limit_in_bytes` after the others).
    fn apply_limits(&self, settings: &[(String, String)]) -> Result<()>;
}

/// The device filter: v1 `devices.allow`/`devices.deny`, v2 an eBPF program.
pub trait DeviceFilter {
    /// Install a complete rule list (at start, before the container init runs anything).
    fn set_devices(&mut self, rules: &DeviceRules) -> Result<()>;
    /// Add one rule to the running filter (`device add` / `device del`), list semantics of
    /// [`DeviceRules::add`]. On v2 this needs the list installed by this process.
    fn add_device_rule(&mut self, rule: DeviceRule) -> Result<()>;
    /// The list installed by this process, if any.
    fn device_rules(&self) -> Option<&DeviceRules>;
}

/// Usage figures.
pub trait StatsSource {
    fn stats(&self) -> Result<Stats>;
}
