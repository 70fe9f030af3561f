//! The container's cgroups in the runtime (issue 4): which driver, what the monitor sets up at
//! start, what it records for teardown, and the runtime operations (freeze/thaw, device rules,
//! usage stats) built on `lxrs-cgroup`.
//!
//! * Driver: env `LXRS_CGROUP_DRIVER` (`v1`/`v2`), else `lxrs.cgroup.driver` in the system
//!   config (`/etc/lxrs/lxrs.conf`, a parameter), else the host's default ([`choose_driver`]).
//! * Start ([`ContainerCgroups::prepare`], in the monitor, init cloned and blocked): the monitor
//!   creates `lxrs.payload.NAME`, writes the limits in
//!   file order (errors name the key), places init (on v1 init moves itself in through the
//!   `tasks` files on its release; on v2 it is cloned into its cgroup with CLONE_INTO_CGROUP,
//!   the cgroup being made just before the clone: neither waits for the RCU grace period a
//!   move by pid costs on an idle host, 5-12 ms here), installs the device filter (default deny,
//!   LXC's allow list, then the container's rules). Every cgroup is recorded as a
//!   [`CleanupItem::Other`] with backend [`BACKEND`] as soon as it exists. Once the container
//!   runs ([`ContainerCgroups::place_monitor`], off the start path) the monitor moves itself
//!   into the shared `lxrs.monitor` cgroup (a stop then has no migration to wait for; the
//!   command that sees the last monitor go removes it).
//! * Stop / after a killed monitor: [`teardown_item`] removes a recorded cgroup even when
//!   processes linger (SIGKILL, thaw, rmdir with retries).
//! * [`WithCgroups`] wraps another [`HostSetup`] (networking, generic items) and keeps the live
//!   handles, so the monitor can freeze, thaw and change device rules ([`HostSetup::cgroups`]
//!   when wired; on v2 the monitor holds the eBPF program and its rule list).
//! * [`StatsReader`]: RAM / SWAP / CPU / process figures for `info` and `ls`, from the names in
//!   the state record.

use crate::host::{CleanupItem, HostError, HostSetup};
use crate::paths::RunDir;
use crate::spec::{CgroupVersion, StartSpec};
use lxrs_cgroup::{
    Cgroup, CgroupMounts, DeviceRule, DeviceType, Driver, FreezerState, Kind, Settings, Stats,
    DEFAULT_REMOVE_TIMEOUT,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the system configuration is read from by default.
pub const SYSTEM_CONFIG: &str = "/etc/lxrs/lxrs.conf";
/// The system-config key choosing the driver.
pub const DRIVER_KEY: &str = "lxrs.cgroup.driver";
/// Environment override of the driver.
pub const DRIVER_ENV: &str = "LXRS_CGROUP_DRIVER";
/// `CleanupItem::Other { backend }` of the cgroups recorded here.
pub const BACKEND: &str = "cgroup";

/// Errors of the cgroup integration.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{}:{line}: {key} = {value:?}: expected `v1` or `v2`", path.display())]
    ConfigValue {
        path: PathBuf,
        line: usize,
        key: &'static str,
        value: String,
    },
    #[error("reading {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("environment {DRIVER_ENV}={value:?}: expected `v1` or `v2`")]
    EnvValue { value: String },
    #[error("{op}: {source}")]
    Cgroup {
        op: String,
        #[source]
        source: lxrs_cgroup::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn cg_err(op: impl Into<String>) -> impl FnOnce(lxrs_cgroup::Error) -> CgroupError {
    let op = op.into();
    move |source| CgroupError::Cgroup { op, source }
}

impl From<CgroupError> for HostError {
    fn from(e: CgroupError) -> Self {
        HostError::Other {
            op: "cgroup",
            message: e.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driver choice

/// The driver asked for: `env` (the value of `LXRS_CGROUP_DRIVER`) when set and not empty, else
/// `lxrs.cgroup.driver` from `config` (a missing file or key: `None`, the host default).
pub fn configured_driver(config: &Path, env: Option<&str>) -> Result<Option<Driver>, CgroupError> {
    if let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) {
        return v
            .parse::<Driver>()
            .map(Some)
            .map_err(|_| CgroupError::EnvValue {
                value: v.to_string(),
            });
    }
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CgroupError::ReadConfig {
                path: config.to_path_buf(),
                source,
            })
        }
    };
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        if k.trim() != DRIVER_KEY {
            continue;
        }
        let v = v.trim();
        // An empty value resets to the host default, as in lxc.conf(5).
        found = if v.is_empty() {
            None
        } else {
            Some(v.parse::<Driver>().map_err(|_| CgroupError::ConfigValue {
                path: config.to_path_buf(),
                line: i + 1,
                key: DRIVER_KEY,
                value: v.to_string(),
            })?)
        };
    }
    Ok(found)
}

/// The driver in force on this host: [`configured_driver`] checked against what is mounted
/// (a hybrid host supports both and defaults to v1).
pub fn choose_driver(
    mounts: &CgroupMounts,
    config: &Path,
    env: Option<&str>,
) -> Result<Driver, CgroupError> {
    let wanted = configured_driver(config, env)?;
    mounts
        .choose_driver(wanted)
        .map_err(cg_err("choosing the cgroup driver"))
}

/// [`choose_driver`] with the process environment and the default system config.
pub fn host_driver(mounts: &CgroupMounts) -> Result<Driver, CgroupError> {
    let env = std::env::var(DRIVER_ENV).ok();
    choose_driver(mounts, Path::new(SYSTEM_CONFIG), env.as_deref())
}

// ---------------------------------------------------------------------------------------------
// Records

/// What a [`CleanupItem::Other`] with backend `cgroup` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRecord {
    /// `v1` or `v2`.
    pub driver: String,
    /// `payload` or `monitor`.
    pub kind: String,
    /// Directory name at the hierarchy root(s) (`lxrs.payload.web`, maybe with `-N`).
    pub name: String,
    /// The directories (for messages and for a human reading the state record).
    pub paths: Vec<PathBuf>,
}

impl CgroupRecord {
    pub fn of(cg: &Cgroup, kind: Kind) -> Self {
        CgroupRecord {
            driver: cg.driver().to_string(),
            kind: match kind {
                Kind::Payload => "payload",
                Kind::Monitor => "monitor",
            }
            .to_string(),
            name: cg.name().to_string(),
            paths: cg.paths(),
        }
    }

    pub fn item(&self) -> CleanupItem {
        CleanupItem::Other {
            backend: BACKEND.to_string(),
            data: serde_json::to_value(self).expect("records serialise"),
        }
    }

    /// The record in `item`, if it is a cgroup item. A cgroup item that does not parse is an
    /// error (it names the item).
    pub fn from_item(item: &CleanupItem) -> Option<Result<CgroupRecord, CgroupError>> {
        match item {
            CleanupItem::Other { backend, data } if backend == BACKEND => {
                Some(serde_json::from_value(data.clone()).map_err(|e| {
                    CgroupError::Other(format!("malformed cgroup record {data}: {e}"))
                }))
            }
            _ => None,
        }
    }

    pub fn driver(&self) -> Result<Driver, CgroupError> {
        self.driver
            .parse()
            .map_err(cg_err(format!("cgroup record {}", self.name)))
    }

    pub fn is_payload(&self) -> bool {
        self.kind == "payload"
    }
}

/// Remove the cgroup a record names, even when processes linger. Already gone: success.
pub fn remove_recorded(
    mounts: &CgroupMounts,
    rec: &CgroupRecord,
    timeout: Duration,
) -> Result<(), CgroupError> {
    let driver = rec.driver()?;
    let cg = match Cgroup::open_existing(mounts, driver, &rec.name) {
        Ok(cg) => cg,
        Err(lxrs_cgroup::Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(cg_err(format!("opening cgroup {}", rec.name))(e)),
    };
    cg.remove(timeout)
        .map_err(cg_err(format!("removing cgroup {}", rec.name)))
}

/// Undo one cleanup item if it is a cgroup record (`None` when it is not ours).
pub fn teardown_item(item: &CleanupItem) -> Option<Result<(), HostError>> {
    let rec = match CgroupRecord::from_item(item)? {
        Ok(r) => r,
        Err(e) => return Some(Err(e.into())),
    };
    let r = CgroupMounts::host()
        .map_err(cg_err("reading the cgroup mounts"))
        .and_then(|m| remove_recorded(&m, &rec, DEFAULT_REMOVE_TIMEOUT));
    Some(r.map_err(HostError::from))
}

/// Thaw the recorded payload cgroups (before killing what a dead monitor left: a frozen v1
/// task only dies once thawed). Best effort.
pub fn thaw_recorded(items: &[CleanupItem]) {
    let recs: Vec<CgroupRecord> = items
        .iter()
        .filter_map(CgroupRecord::from_item)
        .filter_map(Result::ok)
        .filter(CgroupRecord::is_payload)
        .collect();
    if recs.is_empty() {
        return;
    }
    let Ok(mounts) = CgroupMounts::host() else {
        return;
    };
    for rec in recs {
        let Ok(driver) = rec.driver() else { continue };
        if let Ok(cg) = Cgroup::open_existing(&mounts, driver, &rec.name) {
            if let Err(e) = cg.thaw_timeout(Duration::from_millis(500)) {
                tracing::warn!("thawing {}: {e}", rec.name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Start: the monitor's side

/// The cgroup every monitor moves into once its container runs (one per hierarchy, shared;
/// removed when the last monitor is gone, [`prune_monitor_cgroup`]).
pub const MONITOR_CGROUP: &str = "lxrs.monitor";

/// The cgroup2 directory of [`MONITOR_CGROUP`], open (made when missing), for a new monitor
/// to be born in (`CLONE_INTO_CGROUP`) when the v2 driver is in use: there, moving itself in
/// later would be a migration, which on an idle host waits for an RCU grace period while
/// holding the kernel's cgroup lock. `None` with the v1 driver, and when anything fails (the
/// monitor then moves itself as before). Cheap when the answer is no: a v1 or hybrid host
/// without `LXRS_CGROUP_DRIVER=v2` is told by one statfs(2).
pub fn monitor_birth_cgroup() -> Option<std::os::fd::OwnedFd> {
    let env = std::env::var(DRIVER_ENV).ok();
    // SAFETY: statfs fills the zeroed struct we own.
    let pure_v2 = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) == 0
            && st.f_type == libc::CGROUP2_SUPER_MAGIC
    };
    if !pure_v2 && env.as_deref() != Some("v2") {
        return None;
    }
    let mounts = CgroupMounts::host().ok()?;
    if choose_driver(&mounts, Path::new(SYSTEM_CONFIG), env.as_deref()).ok()? != Driver::V2 {
        return None;
    }
    let mon = Cgroup::shared(&mounts, Driver::V2, MONITOR_CGROUP).ok()?;
    let dir = mon.paths().into_iter().next()?;
    std::fs::File::open(dir).ok().map(Into::into)
}

/// Move this process out of the shared [`MONITOR_CGROUP`] into the root cgroup of each
/// hierarchy where it is in it (a helper a monitor forked). Best effort.
pub fn leave_monitor_cgroup() {
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    let Ok(mounts) = CgroupMounts::host() else {
        return;
    };
    let inside = |line: &str| line.trim_end().ends_with(&format!(":/{MONITOR_CGROUP}"));
    for line in own.lines().filter(|l| inside(l)) {
        let controllers = line.split(':').nth(1).unwrap_or("");
        let root = if controllers.is_empty() {
            mounts
                .roots(Driver::V2)
                .into_iter()
                .next()
                .map(|r| r.join("cgroup.procs"))
        } else {
            // Any one of the line's controllers (or its name=) names the hierarchy.
            controllers
                .split(',')
                .next()
                .and_then(|c| mounts.v1_hierarchy(c))
                .map(|h| h.mount.join("tasks"))
        };
        if let Some(file) = root {
            if let Err(e) = std::fs::write(&file, "0") {
                tracing::debug!("leaving {MONITOR_CGROUP} through {}: {e}", file.display());
            }
        }
    }
}

/// Remove the shared [`MONITOR_CGROUP`] if no monitor is left in it. `exiting`: a monitor
/// whose connection just closed (it leaves the cgroup a moment later; waited for, briefly).
/// Called by the commands that see a monitor go (stop, the clean-up after a dead one); no
/// monitor has to migrate out, so nothing waits for the kernel's RCU grace period. Best
/// effort: a failure is logged.
pub fn prune_monitor_cgroup(exiting: Option<i32>) {
    let r = CgroupMounts::host().and_then(|m| {
        Cgroup::remove_shared_if_unused(&m, MONITOR_CGROUP, exiting, Duration::from_millis(100))
    });
    match r {
        Ok(removed) => tracing::debug!(removed, "shared {MONITOR_CGROUP} cgroup"),
        Err(e) => tracing::warn!("removing the shared {MONITOR_CGROUP} cgroup: {e}"),
    }
}

/// Where [`ContainerCgroups::prepare`] gets its inputs (all parameters, for tests).
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The system config read for `lxrs.cgroup.driver`.
    pub config: PathBuf,
    /// The value of `LXRS_CGROUP_DRIVER` (None = unset).
    pub env: Option<String>,
    /// The cgroup mounts (None = this process's `/proc/self/mountinfo`).
    pub mounts: Option<CgroupMounts>,
    /// The monitor process to move into `lxrs.monitor` once the container runs (None = leave
    /// it where it is).
    pub monitor_pid: Option<i32>,
}

impl Default for PrepareOptions {
    /// The real system: `/etc/lxrs/lxrs.conf`, the environment, the host's mounts, this process
    /// as the monitor.
    fn default() -> Self {
        PrepareOptions {
            config: PathBuf::from(SYSTEM_CONFIG),
            env: std::env::var(DRIVER_ENV).ok(),
            mounts: None,
            monitor_pid: Some(std::process::id() as i32),
        }
    }
}

/// The live cgroups of a running container, held by its monitor.
#[derive(Debug)]
pub struct ContainerCgroups {
    pub mounts: CgroupMounts,
    pub driver: Driver,
    pub payload: Cgroup,
    /// The files the child writes `0` into on its release to join `payload` itself (v1
    /// `tasks`); empty when the monitor placed it.
    pub child_joins: Vec<PathBuf>,
}

/// The spec's settings tagged with their driver, in file order.
pub fn tagged_settings(spec: &StartSpec) -> Vec<(Driver, String, String)> {
    spec.cgroup
        .iter()
        .map(|s| {
            let d = match s.version {
                CgroupVersion::V1 => Driver::V1,
                CgroupVersion::V2 => Driver::V2,
            };
            (d, s.key.clone(), s.value.clone())
        })
        .collect()
}

/// What a start's cgroups will be, decided (and the settings checked) before anything is
/// created.
struct Plan {
    mounts: CgroupMounts,
    driver: Driver,
    settings: Settings,
}

impl Plan {
    fn new(spec: &StartSpec, opts: &PrepareOptions) -> Result<Plan, CgroupError> {
        let mounts = match &opts.mounts {
            Some(m) => m.clone(),
            None => CgroupMounts::host().map_err(cg_err("reading the cgroup mounts"))?,
        };
        let driver = choose_driver(&mounts, &opts.config, opts.env.as_deref())?;
        let (settings, ignored) = Settings::for_driver(driver, &tagged_settings(spec))
            .map_err(cg_err(format!("cgroup settings of {}", spec.name)))?;
        for key in ignored {
            tracing::warn!(
                "{}: {key} is a setting for the other cgroup version; ignored with the {driver} driver",
                spec.config_path.display()
            );
        }
        Ok(Plan {
            mounts,
            driver,
            settings,
        })
    }
}

/// Is `pid` in `cg`'s cgroup2 directory already?
fn in_v2_cgroup(pid: i32, cg: &Cgroup) -> bool {
    let (Cgroup::V2(_), Some(dir)) = (cg, cg.paths().first().cloned()) else {
        return false;
    };
    in_cgroup_dir(pid, &dir)
}

/// Is `pid` in the cgroup2 directory `dir` (by `/proc/PID/cgroup`, its `0::` line)? Only
/// meaningful for a directory on the cgroup2 hierarchy.
fn in_cgroup_dir(pid: i32, dir: &Path) -> bool {
    let Ok(text) = lxrs_cgroup::read_pseudo(Path::new(&format!("/proc/{pid}/cgroup"))) else {
        return false;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|rel| rel.trim().trim_start_matches('/'))
        .is_some_and(|rel| !rel.is_empty() && dir.ends_with(rel))
}

impl ContainerCgroups {
    /// Set up the cgroups of `spec`'s container for `child_pid` (cloned, not yet running
    /// anything of its own). Each cgroup is pushed onto `created` as soon as it exists, so a
    /// failure part-way leaves nothing the caller's teardown does not know about.
    pub fn prepare(
        spec: &StartSpec,
        child_pid: i32,
        created: &mut Vec<CleanupItem>,
        opts: &PrepareOptions,
    ) -> Result<ContainerCgroups, CgroupError> {
        let cgs = Self::create(spec, Plan::new(spec, opts)?, created)?;
        cgs.place(child_pid)?;
        Ok(cgs)
    }

    /// Make the payload cgroup of a planned start, with its limits and device filter: all of
    /// it before the child exists.
    fn create(
        spec: &StartSpec,
        plan: Plan,
        created: &mut Vec<CleanupItem>,
    ) -> Result<ContainerCgroups, CgroupError> {
        let Plan {
            mounts,
            driver,
            settings,
        } = plan;
        let mut payload = Cgroup::create(&mounts, driver, Kind::Payload, &spec.name)
            .map_err(cg_err("creating the container cgroup"))?;
        created.push(CgroupRecord::of(&payload, Kind::Payload).item());
        payload
            .apply_limits(&settings.limits)
            .map_err(cg_err(format!(
                "{}: applying the cgroup limits to {}",
                spec.config_path.display(),
                payload.name()
            )))?;
        payload
            .set_devices(&settings.devices)
            .map_err(cg_err(format!(
                "{}: installing the device filter of {}",
                spec.config_path.display(),
                payload.name()
            )))?;
        // Where the kernel lets the child move itself in without waiting for an RCU grace
        // period (v1 `tasks`), it does so on its release ([`HostSetup::child_joins`]). On v2
        // it is cloned into its cgroup.
        let child_joins = payload.self_join_files().unwrap_or_default();
        tracing::debug!(driver = %driver, payload = payload.name(), "cgroups prepared");
        Ok(ContainerCgroups {
            mounts,
            driver,
            payload,
            child_joins,
        })
    }

    /// Put the cloned child in the payload cgroup when neither its clone (v2) nor itself
    /// (v1, [`ContainerCgroups::child_joins`]) does: a kernel without `CLONE_INTO_CGROUP`.
    fn place(&self, child_pid: i32) -> Result<(), CgroupError> {
        if self.child_joins.is_empty() && !in_v2_cgroup(child_pid, &self.payload) {
            self.payload.add_pid(child_pid).map_err(cg_err(format!(
                "placing init {child_pid} into {}",
                self.payload.name()
            )))?;
        }
        Ok(())
    }

    /// Move the monitor `pid` into the shared [`MONITOR_CGROUP`] (made when missing), out of
    /// whatever session cgroup its starter ran in. Called once the container runs, off the
    /// start path: on v2 a process can only move whole, which on an idle host waits for an
    /// RCU grace period (holding the kernel's cgroup lock, so a cgroup command right after a
    /// start may wait for it); on v1 the monitor moves itself thread-wise, which does not.
    /// A shared cgroup means stop has nothing to migrate.
    pub fn place_monitor(&mut self, pid: i32) -> Result<(), CgroupError> {
        // A stop elsewhere may remove it as the last monitor leaves ([`prune_monitor_cgroup`])
        // between our mkdir and our move: then make it again.
        let mut tries = 0;
        loop {
            let mon = Cgroup::shared(&self.mounts, self.driver, MONITOR_CGROUP)
                .map_err(cg_err(format!("creating the {MONITOR_CGROUP} cgroup")))?;
            // The monitor is single-threaded: moving itself skips the grace period a move by
            // pid waits for (and the cgroup lock every other cgroup command needs meanwhile).
            // On v2 it was born there ([`monitor_birth_cgroup`]) unless that failed.
            let born_there = self.driver == Driver::V2
                && mon.paths().first().is_some_and(|d| in_cgroup_dir(pid, d));
            let moved = if born_there {
                Ok(())
            } else if pid == std::process::id() as i32 {
                mon.join_self()
            } else {
                mon.add_pid(pid)
            };
            match moved {
                Ok(()) => return Ok(()),
                Err(_) if tries < 2 && !mon.paths().iter().all(|p| p.is_dir()) => tries += 1,
                Err(e) => {
                    return Err(cg_err(format!("moving the monitor into {MONITOR_CGROUP}"))(
                        e,
                    ))
                }
            }
        }
    }

    /// Freeze the container (confirmed by a bounded poll; already frozen: no-op; thawed back
    /// on failure).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.payload
            .freeze()
            .map_err(cg_err(format!("freezing {}", self.payload.name())))
    }

    /// Thaw the container (no-op when thawed).
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.payload
            .thaw()
            .map_err(cg_err(format!("thawing {}", self.payload.name())))
    }

    pub fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        self.payload.state().map_err(cg_err(format!(
            "reading the freezer state of {}",
            self.payload.name()
        )))
    }

    /// Add one rule to the running device filter (`device add`: allow, `device del`: deny). On
    /// v2 the program is rebuilt from the kept list and replaced atomically.
    pub fn device_rule(&mut self, rule: DeviceRule) -> Result<(), CgroupError> {
        let name = self.payload.name().to_string();
        self.payload
            .add_device_rule(rule)
            .map_err(cg_err(format!("device rule {rule} for {name}")))
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.payload
            .stats()
            .map_err(cg_err(format!("usage of {}", self.payload.name())))
    }

    /// Remove the container's cgroup (the shared monitor cgroup stays), collecting errors.
    pub fn remove(self, timeout: Duration) -> Vec<CgroupError> {
        let mut errs = Vec::new();
        let name = self.payload.name().to_string();
        if let Err(e) = self.payload.remove(timeout) {
            errs.push(cg_err(format!("removing cgroup {name}"))(e));
        }
        errs
    }
}

/// A device rule as it travels in a request: `c 10:200 rwm` / `b 7:0 rwm`.
pub fn node_rule(allow: bool, block: bool, major: u32, minor: u32) -> DeviceRule {
    let kind = if block {
        DeviceType::Block
    } else {
        DeviceType::Char
    };
    DeviceRule::node(allow, kind, major, minor)
}

// ---------------------------------------------------------------------------------------------
// The host seam

/// A [`HostSetup`] that sets up the cgroups first and then runs `inner` (networking, ...);
/// teardown runs `inner` over the other items first, then removes the cgroups (the reverse of
/// prepare). Keeps the live handles for the monitor ([`WithCgroups::cgroups`]).
pub struct WithCgroups<H: HostSetup> {
    pub inner: H,
    pub opts: PrepareOptions,
    live: Option<ContainerCgroups>,
    /// Between [`HostSetup::before_clone`] and [`HostSetup::prepare`] on v1: the plan.
    planned: Option<Plan>,
}

impl<H: HostSetup> WithCgroups<H> {
    pub fn new(inner: H) -> Self {
        Self::with_options(inner, PrepareOptions::default())
    }

    pub fn with_options(inner: H, opts: PrepareOptions) -> Self {
        WithCgroups {
            inner,
            opts,
            live: None,
            planned: None,
        }
    }

    /// The running container's cgroups (between prepare and teardown).
    pub fn cgroups(&mut self) -> Option<&mut ContainerCgroups> {
        self.live.as_mut()
    }
}

impl<H: HostSetup> HostSetup for WithCgroups<H> {
    /// On v2 the payload cgroup is made (limited, filtered) before the clone and the child is
    /// cloned into it (`CLONE_INTO_CGROUP`): nothing to migrate. On v1 the cgroups are made
    /// once the child exists ([`HostSetup::prepare`]), while it does its early setup on the
    /// other CPU; it joins them itself on its release.
    fn before_clone(
        &mut self,
        spec: &StartSpec,
        created: &mut Vec<CleanupItem>,
    ) -> Result<Option<std::os::fd::OwnedFd>, HostError> {
        let plan = Plan::new(spec, &self.opts)?;
        if plan.driver != Driver::V2 {
            self.planned = Some(plan);
            return self.inner.before_clone(spec, created);
        }
        let cgs = ContainerCgroups::create(spec, plan, created)?;
        let dir = cgs.payload.paths().first().cloned().unwrap_or_default();
        let into = std::fs::File::open(&dir).map_err(|source| HostError::Io {
            op: "open the container cgroup",
            path: dir,
            source,
        })?;
        self.live = Some(cgs);
        self.inner.before_clone(spec, created)?;
        Ok(Some(into.into()))
    }

    fn prepare(
        &mut self,
        spec: &StartSpec,
        child_pid: i32,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError> {
        if let Some(plan) = self.planned.take() {
            self.live = Some(ContainerCgroups::create(spec, plan, created)?);
        }
        match &self.live {
            Some(cgs) => cgs.place(child_pid)?,
            None => {
                self.live = Some(ContainerCgroups::prepare(
                    spec, child_pid, created, &self.opts,
                )?)
            }
        }
        self.inner.prepare(spec, child_pid, created)
    }

    fn child_joins(&self) -> Vec<PathBuf> {
        let mut v = self
            .live
            .as_ref()
            .map(|c| c.child_joins.clone())
            .unwrap_or_default();
        v.extend(self.inner.child_joins());
        v
    }

    fn after_running(
        &mut self,
        spec: &StartSpec,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError> {
        if let (Some(pid), Some(cgs)) = (self.opts.monitor_pid, self.live.as_mut()) {
            cgs.place_monitor(pid)?;
        }
        self.inner.after_running(spec, created)
    }

    fn teardown(&mut self, items: &[CleanupItem]) -> Vec<HostError> {
        // The handles go first: the recorded items below say what to remove.
        self.live = None;
        let (ours, theirs): (Vec<&CleanupItem>, Vec<&CleanupItem>) = items
            .iter()
            .partition(|i| CgroupRecord::from_item(i).is_some());
        let theirs: Vec<CleanupItem> = theirs.into_iter().cloned().collect();
        let mut errors = self.inner.teardown(&theirs);
        let mounts = match &self.opts.mounts {
            Some(m) => Ok(m.clone()),
            None => CgroupMounts::host().map_err(cg_err("reading the cgroup mounts")),
        };
        for item in ours.into_iter().rev() {
            let r = match CgroupRecord::from_item(item).expect("partitioned") {
                Ok(rec) => match &mounts {
                    Ok(m) => remove_recorded(m, &rec, DEFAULT_REMOVE_TIMEOUT),
                    Err(e) => Err(CgroupError::Other(e.to_string())),
                },
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                errors.push(e.into());
            }
        }
        errors
    }

    fn cgroups(&mut self) -> Option<&mut ContainerCgroups> {
        self.live.as_mut()
    }
}

// ---------------------------------------------------------------------------------------------
// Stats for info / ls

/// Reads usage figures of containers from their state records (mounts parsed once, so `ls`
/// over many containers stays cheap).
#[derive(Debug)]
pub struct StatsReader {
    mounts: CgroupMounts,
}

impl StatsReader {
    pub fn new() -> Result<Self, CgroupError> {
        Ok(StatsReader {
            mounts: CgroupMounts::host().map_err(cg_err("reading the cgroup mounts"))?,
        })
    }

    pub fn with_mounts(mounts: CgroupMounts) -> Self {
        StatsReader { mounts }
    }

    /// Usage of the payload cgroup among `items` (a state record's items); `None` when there is
    /// none (stopped, or started before the cgroup backend was wired).
    pub fn from_items(&self, items: &[CleanupItem]) -> Option<Result<Stats, CgroupError>> {
        let rec = items
            .iter()
            .filter_map(CgroupRecord::from_item)
            .filter_map(Result::ok)
            .find(CgroupRecord::is_payload)?;
        Some(self.of_record(&rec))
    }

    pub fn of_record(&self, rec: &CgroupRecord) -> Result<Stats, CgroupError> {
        let driver = rec.driver()?;
        let cg = Cgroup::open_existing(&self.mounts, driver, &rec.name)
            .map_err(cg_err(format!("opening cgroup {}", rec.name)))?;
        cg.stats().map_err(cg_err(format!("usage of {}", rec.name)))
    }

    /// Usage of container `name` in `lxcpath` per its state record in `rundir`.
    pub fn container(
        &self,
        rundir: &RunDir,
        lxcpath: &Path,
        name: &str,
    ) -> Option<Result<Stats, CgroupError>> {
        let rec = crate::record::read(&rundir.record_path(lxcpath, name)).ok()??;
        self.from_items(&rec.items)
    }

    /// The payload cgroup record of a container (for tests and `info`).
    pub fn payload_record(rundir: &RunDir, lxcpath: &Path, name: &str) -> Option<CgroupRecord> {
        let rec = crate::record::read(&rundir.record_path(lxcpath, name)).ok()??;
        rec.items
            .iter()
            .filter_map(CgroupRecord::from_item)
            .filter_map(Result::ok)
            .find(CgroupRecord::is_payload)
    }
}

/// Usage of container `name` in `lxcpath` (default run directory): `None` when it is not
/// running or has no recorded cgroup. What `info` and `ls` (RAM, SWAP, CPU) show.
pub fn container_stats(lxcpath: &Path, name: &str) -> Option<Stats> {
    let reader = StatsReader::new().ok()?;
    match reader.container(&RunDir::default(), lxcpath, name)? {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::debug!("usage of {name}: {e}");
            None
        }
    }
}

/// `ls` RAM/SWAP format: `%.2fMB` of MiB (LXC), `-` when unknown.
pub fn format_mib(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{:.2}MB", b as f64 / (1024.0 * 1024.0)),
        None => "-".to_string(),
    }
}

/// `info` CPU use format: seconds with 2 decimals (`1.23 seconds`), `-` when unknown.
pub fn format_cpu(ns: Option<u64>) -> String {
    match ns {
        Some(n) => format!("{:.2} seconds", n as f64 / 1e9),
        None => "-".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Client side: runtime requests to a container's monitor

/// A cgroup request to the monitor of a running container (command-socket lines
/// `{"v":1,"cmd":"freeze"}`, `{"v":1,"cmd":"unfreeze"}`,
/// `{"v":1,"cmd":"device_rule","allow":true,"rule":"c 10:200 rwm"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum CgroupRequest {
    /// Freeze (no-op success when FROZEN); the monitor reports FREEZING, then FROZEN.
    Freeze,
    /// Thaw when FROZEN or FREEZING (else a no-op success); THAWED, then RUNNING.
    Unfreeze,
    /// Add a device rule to the running filter (`device add`: allow, `device del`: deny).
    DeviceRule { allow: bool, rule: String },
}

impl From<CgroupRequest> for crate::proto::Request {
    fn from(r: CgroupRequest) -> Self {
        use crate::proto::Request;
        match r {
            CgroupRequest::Freeze => Request::Freeze,
            CgroupRequest::Unfreeze => Request::Unfreeze,
            CgroupRequest::DeviceRule { allow, rule } => Request::DeviceRule { allow, rule },
        }
    }
}

/// How long to wait for the monitor's answer (a freeze is confirmed within 5 s).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);

/// Errors of [`control`].
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("container {name:?} is not running")]
    NotRunning { name: String },
    #[error("{0}")]
    Lifecycle(#[from] crate::error::LifecycleError),
    /// The monitor's own words.
    #[error("{0}")]
    Refused(String),
}

/// Send one cgroup request to the monitor of `name` and return its answer (`ok` checked).
pub fn control(
    lxcpath: &Path,
    name: &str,
    req: &CgroupRequest,
) -> Result<crate::proto::Response, ControlError> {
    use crate::error::LifecycleError;
    let not_running = || ControlError::NotRunning {
        name: name.to_string(),
    };
    let Some(mut conn) = crate::lifecycle::connect(lxcpath, name)? else {
        return Err(not_running());
    };
    let data = crate::proto::encode_request(&req.clone().into());
    let ioerr = |op, e| LifecycleError::Monitor {
        op,
        name: name.to_string(),
        source: e,
    };
    match conn.send(&data, None) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(not_running()),
        Err(e) => return Err(ioerr("send a cgroup request", e).into()),
    }
    let deadline = std::time::Instant::now() + CONTROL_TIMEOUT;
    loop {
        let Some(l) = conn
            .read_line(Some(deadline))
            .map_err(|e| ioerr("read the answer", e))?
        else {
            if conn.is_eof() {
                return Err(not_running());
            }
            return Err(LifecycleError::Timeout {
                name: name.to_string(),
                what: "an answer from the monitor",
                secs: CONTROL_TIMEOUT.as_secs(),
            }
            .into());
        };
        let r = crate::proto::decode_response(&l).map_err(|detail| LifecycleError::Protocol {
            op: "cgroup request",
            name: name.to_string(),
            detail,
        })?;
        if r.notify {
            continue;
        }
        if !r.ok {
            return Err(ControlError::Refused(
                r.error.unwrap_or_else(|| "refused".to_string()),
            ));
        }
        return Ok(r);
    }
}

/// The freeze+unfreeze benchmark (for `cargo xtask bench`): `pairs` round trips of a freeze
/// request and an unfreeze request to the monitor of the running container `name` (what
/// `lxrs freeze` + `lxrs unfreeze` do, minus process start-up). Returns each pair's time.
pub fn bench_freeze_thaw(
    lxcpath: &Path,
    name: &str,
    pairs: usize,
) -> Result<Vec<Duration>, ControlError> {
    let mut out = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let t = std::time::Instant::now();
        control(lxcpath, name, &CgroupRequest::Freeze)?;
        control(lxcpath, name, &CgroupRequest::Unfreeze)?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Median and 99th percentile (nearest rank) of `samples`.
pub fn median_p99(samples: &[Duration]) -> Option<(Duration, Duration)> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort();
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((rank(0.5), rank(0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::CgroupSetting;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn driver_from_env_then_config() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("none.conf");
        assert_eq!(configured_driver(&missing, None).unwrap(), None);
        let c = write(
            d.path(),
            "lxrs.conf",
            "# system config\nlxc.lxcpath = /var/lib/lxrs\n lxrs.cgroup.driver = v2 \n",
        );
        assert_eq!(configured_driver(&c, None).unwrap(), Some(Driver::V2));
        assert_eq!(configured_driver(&c, Some("v1")).unwrap(), Some(Driver::V1));
        assert_eq!(
            configured_driver(&c, Some("")).unwrap(),
            Some(Driver::V2),
            "empty env = unset"
        );
        let e = configured_driver(&c, Some("v3")).unwrap_err().to_string();
        assert!(
            e.contains("LXRS_CGROUP_DRIVER") && e.contains("\"v3\""),
            "{e}"
        );
        // Last one wins; an empty value resets; comments are skipped.
        let c = write(
            d.path(),
            "b.conf",
            "lxrs.cgroup.driver = v2\n#lxrs.cgroup.driver = v1\nlxrs.cgroup.driver =\n",
        );
        assert_eq!(configured_driver(&c, None).unwrap(), None);
        let c = write(d.path(), "bad.conf", "\n\nlxrs.cgroup.driver = cgroup3\n");
        let e = configured_driver(&c, None).unwrap_err().to_string();
        assert!(
            e.contains("bad.conf:3") && e.contains(DRIVER_KEY) && e.contains("\"cgroup3\""),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/lxrs.conf");
        assert_eq!(
            configured_driver(&example, None).unwrap(),
            None,
            "commented out"
        );
        let d = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&example)
            .unwrap()
            .replace("#lxrs.cgroup.driver = v1", "lxrs.cgroup.driver = v1");
        let c = write(d.path(), "lxrs.conf", &text);
        assert_eq!(configured_driver(&c, None).unwrap(), Some(Driver::V1));
    }

    fn fake_mounts(root: &Path) -> CgroupMounts {
        // A hybrid host on a temp tree: memory + devices + freezer v1 hierarchies and cgroup2.
        let mut info = String::new();
        for (i, ctl) in ["memory", "devices", "freezer"].iter().enumerate() {
            let m = root.join(ctl);
            std::fs::create_dir_all(&m).unwrap();
            info.push_str(&format!(
                "{} 1 0:{} / {} rw - cgroup cgroup rw,{ctl}\n",
                30 + i,
                40 + i,
                m.display()
            ));
        }
        let u = root.join("unified");
        std::fs::create_dir_all(&u).unwrap();
        info.push_str(&format!(
            "50 1 0:60 / {} rw - cgroup2 cgroup2 rw\n",
            u.display()
        ));
        CgroupMounts::parse_mountinfo(&info, Path::new("fake-mountinfo")).unwrap()
    }

    fn spec(settings: &[(CgroupVersion, &str, &str)]) -> StartSpec {
        let mut s: StartSpec = serde_json::from_value(serde_json::json!({
            "name": "web", "lxcpath": "/x", "config_path": "/x/web/config",
            "rootfs": {"path": "/x/web/rootfs", "readonly": false, "options": []},
            "hostname": "web",
            "init": {"argv": ["/sbin/init"], "uid": 0, "gid": 0, "groups": [], "cwd": "/", "env": []},
            "mount_auto": {"proc": null, "sys": null, "cgroup": null},
            "mounts": [], "autodev": true,
            "tty": {"count": 0, "dir": null, "pty_max": 0},
            "console": {"enabled": false, "logfile": null, "buffer_size": 0},
            "caps": {"drop": [], "keep": null}, "no_new_privs": false, "prlimits": [],
            "sysctls": [], "proc_writes": [], "personality": null,
            "signals": {"halt": 30, "reboot": 2, "stop": 9},
            "net": [], "share_host_net": false, "cgroup": [], "hooks": [],
            "log": {"file": null, "level": "warn"}, "extra": []
        }))
        .unwrap();
        s.cgroup = settings
            .iter()
            .map(|(v, k, val)| CgroupSetting {
                version: *v,
                key: k.to_string(),
                value: val.to_string(),
            })
            .collect();
        s
    }

    #[test]
    fn tagged_settings_keep_file_order() {
        let s = spec(&[
            (CgroupVersion::V2, "memory.max", "1G"),
            (CgroupVersion::V1, "memory.limit_in_bytes", "1G"),
            (CgroupVersion::V2, "devices.allow", "c 10:200 rwm"),
        ]);
        let t = tagged_settings(&s);
        assert_eq!(
            t,
            vec![
                (Driver::V2, "memory.max".into(), "1G".into()),
                (Driver::V1, "memory.limit_in_bytes".into(), "1G".into()),
                (Driver::V2, "devices.allow".into(), "c 10:200 rwm".into()),
            ]
        );
    }

    #[test]
    fn prepare_on_a_fake_v1_tree_records_limits_and_devices() {
        let d = tempfile::tempdir().unwrap();
        let mounts = fake_mounts(d.path());
        // The fake kernel: controller files exist in new cgroup dirs only if we make them, so
        // pre-create the payload dirs' files by letting create() make the dirs and then check
        // the error path; the happy path is covered by the root integration tests.
        let s = spec(&[(CgroupVersion::V1, "memory.limit_in_bytes", "64M")]);
        let opts = PrepareOptions {
            config: d.path().join("none.conf"),
            env: Some("v1".into()),
            mounts: Some(mounts.clone()),
            monitor_pid: None,
        };
        let mut created = Vec::new();
        let e = ContainerCgroups::prepare(&s, 1, &mut created, &opts).unwrap_err();
        // The limit file does not exist in the fake tree: the error names the key and the
        // config file, and the cgroup was recorded before the failure.
        let msg = e.to_string();
        assert!(
            msg.contains("memory.limit_in_bytes") && msg.contains("/x/web/config"),
            "{msg}"
        );
        assert_eq!(created.len(), 1);
        let rec = CgroupRecord::from_item(&created[0]).unwrap().unwrap();
        assert_eq!(rec.name, "lxrs.payload.web");
        assert_eq!(rec.driver, "v1");
        assert!(rec.is_payload());
        assert_eq!(rec.paths.len(), 3);
        for p in &rec.paths {
            assert!(p.is_dir(), "{}", p.display());
        }
        // Teardown from the record removes every hierarchy's directory.
        remove_recorded(&mounts, &rec, Duration::from_millis(200)).unwrap();
        for p in &rec.paths {
            assert!(!p.exists(), "{}", p.display());
        }
        // Removing again (already gone) is fine.
        remove_recorded(&mounts, &rec, Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn in_cgroup_dir_reads_the_cgroup2_line_of_proc() {
        let me = std::process::id() as i32;
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let rel = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .trim()
            .trim_start_matches('/');
        let here = Path::new("/sys/fs/cgroup/unified").join(rel);
        // Where this process is, by its last components; never a root ("0::/"), never
        // somewhere else.
        assert_eq!(in_cgroup_dir(me, &here), !rel.is_empty(), "{text}");
        assert!(!in_cgroup_dir(me, &here.join("lxrs.payload.elsewhere")));
        assert!(!in_cgroup_dir(i32::MAX, &here), "no such process");
    }

    #[test]
    fn bad_settings_fail_before_anything_is_created() {
        let d = tempfile::tempdir().unwrap();
        let mounts = fake_mounts(d.path());
        let s = spec(&[(CgroupVersion::V2, "devices.allow", "c 1:x rwm")]);
        let opts = PrepareOptions {
            config: d.path().join("none.conf"),
            env: Some("v2".into()),
            mounts: Some(mounts),
            monitor_pid: Some(std::process::id() as i32),
        };
        let mut created = Vec::new();
        let e = ContainerCgroups::prepare(&s, 1, &mut created, &opts).unwrap_err();
        assert!(e.to_string().contains("\"c 1:x rwm\""), "{e}");
        assert!(created.is_empty());
        assert!(!d.path().join("unified/lxrs.monitor").exists());
    }

    /// A recording inner setup: what the wrapper hands through.
    #[derive(Default)]
    struct Inner {
        prepared: bool,
        torn: Vec<CleanupItem>,
    }

    impl HostSetup for Inner {
        fn prepare(
            &mut self,
            _spec: &StartSpec,
            _child_pid: i32,
            created: &mut Vec<CleanupItem>,
        ) -> Result<(), HostError> {
            self.prepared = true;
            created.push(CleanupItem::Link {
                name: "vethX".into(),
            });
            Ok(())
        }
        fn teardown(&mut self, items: &[CleanupItem]) -> Vec<HostError> {
            self.torn.extend_from_slice(items);
            Vec::new()
        }
    }

    #[test]
    fn wrapper_splits_teardown_and_stops_on_cgroup_errors() {
        let d = tempfile::tempdir().unwrap();
        let mounts = fake_mounts(d.path());
        let opts = PrepareOptions {
            config: d.path().join("none.conf"),
            env: Some("v1".into()),
            mounts: Some(mounts.clone()),
            monitor_pid: None,
        };
        let mut w = WithCgroups::with_options(Inner::default(), opts);
        let s = spec(&[(CgroupVersion::V1, "memory.limit_in_bytes", "64M")]);
        let mut created = Vec::new();
        assert!(w.prepare(&s, 1, &mut created).is_err());
        assert!(
            !w.inner.prepared,
            "the inner setup does not run after a cgroup failure"
        );
        assert!(w.cgroups().is_none());
        created.push(CleanupItem::Link {
            name: "vethX".into(),
        });
        let errs = w.teardown(&created);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            w.inner.torn,
            vec![CleanupItem::Link {
                name: "vethX".into()
            }]
        );
        assert!(!d.path().join("memory/lxrs.payload.web").exists());
        // A malformed cgroup item is reported, not skipped.
        let bad = CleanupItem::Other {
            backend: BACKEND.into(),
            data: serde_json::json!({"name": 3}),
        };
        let errs = w.teardown(&[bad]);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].to_string().contains("malformed cgroup record"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn record_round_trips_through_the_state_record() {
        let rec = CgroupRecord {
            driver: "v2".into(),
            kind: "payload".into(),
            name: "lxrs.payload.web-2".into(),
            paths: vec!["/sys/fs/cgroup/unified/lxrs.payload.web-2".into()],
        };
        let item = rec.item();
        let json = serde_json::to_string(&item).unwrap();
        assert!(json.contains(r#""backend":"cgroup""#), "{json}");
        let back: CleanupItem = serde_json::from_str(&json).unwrap();
        assert_eq!(CgroupRecord::from_item(&back).unwrap().unwrap(), rec);
        assert!(CgroupRecord::from_item(&CleanupItem::Link { name: "x".into() }).is_none());
    }

    #[test]
    fn requests_on_the_wire() {
        use crate::proto::{decode_request, encode_request, Request};
        let cases = [
            (CgroupRequest::Freeze, r#"{"v":1,"cmd":"freeze"}"#),
            (CgroupRequest::Unfreeze, r#"{"v":1,"cmd":"unfreeze"}"#),
            (
                CgroupRequest::DeviceRule {
                    allow: false,
                    rule: "c 1:11 rwm".into(),
                },
                r#"{"v":1,"cmd":"device_rule","allow":false,"rule":"c 1:11 rwm"}"#,
            ),
        ];
        for (req, text) in cases {
            let r: Request = req.into();
            let enc = encode_request(&r);
            assert_eq!(std::str::from_utf8(&enc).unwrap().trim_end(), text);
            assert_eq!(decode_request(text.as_bytes()).unwrap(), r);
        }
    }

    #[test]
    fn percentiles() {
        let ms = |n| Duration::from_millis(n);
        let v: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(median_p99(&v), Some((ms(50), ms(99))));
        assert_eq!(median_p99(&[ms(3)]), Some((ms(3), ms(3))));
        assert_eq!(median_p99(&[]), None);
    }

    #[test]
    fn formats() {
        assert_eq!(format_mib(Some(3 * 1024 * 1024 + 512 * 1024)), "3.50MB");
        assert_eq!(format_mib(None), "-");
        assert_eq!(format_cpu(Some(1_234_000_000)), "1.23 seconds");
        assert_eq!(format_cpu(None), "-");
    }
}
