//! lxrs-cgroup: the container's cgroups on cgroup v1, v2 and hybrid hosts.
//!
//! * [`CgroupMounts`] detects the hierarchies from `/proc/self/mountinfo`; [`Driver`] picks v1
//!   or v2 (a choice on hybrid hosts).
//! * [`Cgroup::create`] makes `lxrs.payload.NAME` / `lxrs.monitor.NAME` at the hierarchy
//!   root(s); [`Cgroup::open_existing`] and [`Cgroup::leftovers`] find them again.
//! * Processes ([`Cgroup::add_pid`]), limits ([`Cgroup::apply_limits`]), freezer
//!   ([`Cgroup::freeze`], [`Cgroup::thaw`], [`Cgroup::state`]), device filter
//!   ([`Cgroup::set_devices`], [`Cgroup::add_device_rule`]; v2 = eBPF), usage
//!   ([`Cgroup::stats`]) and teardown ([`Cgroup::remove`]).
//!
//! Every kernel interface is a trait ([`Procs`], [`Limits`], [`Freezer`], [`DeviceFilter`],
//! [`StatsSource`]) implemented by [`V1Cgroup`] and [`V2Cgroup`]; every root is a parameter,
//! so unit tests run on a temp-dir tree.

mod cgroup;
pub mod devices;
mod error;
mod freezer;
mod fsutil;
mod interfaces;
mod limits;
mod mounts;
mod stats;
mod v1;
mod v2;

pub use cgroup::{Cgroup, Kind, DEFAULT_REMOVE_TIMEOUT};
pub use devices::{Access, DeviceRule, DeviceRules, DeviceType, LXC_DEFAULT_ALLOW};
pub use error::{Error, Result};
pub use freezer::{Freezer, FreezerState, DEFAULT_FREEZE_TIMEOUT};
pub use fsutil::{read_pseudo, read_pseudo_file};
pub use interfaces::{DeviceFilter, Limits, Procs, StatsSource};
pub use limits::{is_device_key, split_key, v1_order, Settings};
pub use mounts::{CgroupMounts, Driver, Layout, V1Hierarchy};
pub use stats::Stats;
pub use v1::{V1Cgroup, V1Dir};
pub use v2::V2Cgroup;

#[cfg(test)]
mod tests;
