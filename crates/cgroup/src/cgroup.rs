//! A container's cgroup on either driver: naming, creation, lookup of leftovers, removal.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::devices::{DeviceRule, DeviceRules};
use crate::error::{Error, Result};
use crate::freezer::{Freezer, FreezerState, DEFAULT_FREEZE_TIMEOUT};
use crate::fsutil;
use crate::interfaces::{DeviceFilter, Limits, Procs, StatsSource};
use crate::mounts::{CgroupMounts, Driver};
use crate::stats::Stats;
use crate::v1::{V1Cgroup, V1Dir};
use crate::v2::V2Cgroup;

/// Default deadline for [`Cgroup::remove`].
pub const DEFAULT_REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Highest collision suffix tried (`-1` .. `-999`).
const MAX_SUFFIX: u32 = 999;

/// Which of a container's two cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `lxrs.payload.NAME`: the container.
    Payload,
    /// `lxrs.monitor.NAME`: its monitor process.
    Monitor,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Payload => "lxrs.payload.",
            Kind::Monitor => "lxrs.monitor.",
        }
    }

    /// `lxrs.payload.NAME` / `lxrs.monitor.NAME` (without a collision suffix).
    pub fn base_name(self, container: &str) -> Result<String> {
        check_name(container)?;
        Ok(format!("{}{container}", self.prefix()))
    }
}

fn check_name(container: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: container.to_string(),
            reason,
        })
    };
    if container.is_empty() {
        return bad("empty");
    }
    if container.contains('/') || container.contains('\0') || container.contains('\n') {
        return bad("contains `/`, a newline or NUL");
    }
    if container.len() > 200 {
        return bad("longer than 200 bytes");
    }
    Ok(())
}

fn check_dir_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::InvalidName {
            name: name.to_string(),
            reason: "not a single cgroup directory name",
        });
    }
    Ok(())
}

/// A container's (or monitor's) cgroup. Created at the hierarchy root(s); the name actually
/// chosen (after collision suffixes) is [`Cgroup::name`], its directories [`Cgroup::paths`]:
/// record them in the container's state so a later command can [`Cgroup::open_existing`] it.
#[derive(Debug)]
pub enum Cgroup {
    V1(V1Cgroup),
    V2(V2Cgroup),
}

impl Cgroup {
    /// Create `lxrs.payload.NAME` / `lxrs.monitor.NAME` at the root of every hierarchy the
    /// driver uses, as `NAME-1` .. `NAME-999` when the name is taken (in any hierarchy).
    pub fn create(
        mounts: &CgroupMounts,
        driver: Driver,
        kind: Kind,
        container: &str,
    ) -> Result<Cgroup> {
        let base = kind.base_name(container)?;
        let roots = roots(mounts, driver)?;
        // The plain name is nearly always free: tried first, with no listing of the roots.
        if let Some(cg) = try_create(mounts, driver, &roots, &base)? {
            tracing::debug!(name = base, driver = %driver, "cgroup created");
            return Ok(cg);
        }
        // Names already taken in any root are skipped without a mkdir; a name taken meanwhile
        // still fails mkdir with EEXIST and the next one is tried.
        let mut taken = std::collections::HashSet::new();
        for root in &roots {
            if let Ok(entries) = std::fs::read_dir(root) {
                for e in entries.flatten() {
                    if let Ok(n) = e.file_name().into_string() {
                        if n.starts_with(&base) {
                            taken.insert(n);
                        }
                    }
                }
            }
        }
        for n in 1..=MAX_SUFFIX {
            let name = format!("{base}-{n}");
            if taken.contains(&name) {
                continue;
            }
            if let Some(cg) = try_create(mounts, driver, &roots, &name)? {
                tracing::debug!(name, driver = %driver, "cgroup created");
                return Ok(cg);
            }
        }
        Err(Error::NoFreeName { base })
    }

    /// A cgroup shared by many users and never removed, such as `lxrs.monitor` where every
    /// container's monitor lives: made in each root when missing (an existing one is fine),
    /// then opened.
    pub fn shared(mounts: &CgroupMounts, driver: Driver, name: &str) -> Result<Cgroup> {
        check_dir_name(name)?;
        for root in roots(mounts, driver)? {
            let path = root.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "shared cgroup created"),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(Error::Mkdir { path, source }),
            }
            // Also when it existed: its creator may not have filled it in yet.
            let cpuset = mounts
                .v1
                .iter()
                .any(|h| h.mount == root && h.controllers.iter().any(|c| c == "cpuset"));
            if driver == Driver::V1 && cpuset {
                V1Cgroup::init_cpuset(&path)?;
            }
        }
        Cgroup::open_existing(mounts, driver, name)
    }

    /// Remove the shared cgroup `name` ([`Cgroup::shared`]) from every hierarchy once no
    /// process is left in it. `exiting` is a process known to be on its way out (a monitor
    /// whose connection just closed: it leaves its cgroups a moment after its descriptors);
    /// it is waited for, up to `wait`. Any other process inside: left alone, `Ok(false)`.
    /// Whoever makes it again ([`Cgroup::shared`]) wins a race with this: a busy or vanished
    /// directory is not an error.
    pub fn remove_shared_if_unused(
        mounts: &CgroupMounts,
        name: &str,
        exiting: Option<i32>,
        wait: Duration,
    ) -> Result<bool> {
        check_dir_name(name)?;
        let dirs: Vec<PathBuf> = [Driver::V1, Driver::V2]
            .into_iter()
            .flat_map(|d| mounts.roots(d))
            .map(|r| r.join(name))
            .filter(|d| d.is_dir())
            .collect();
        let deadline = Instant::now() + wait;
        loop {
            let mut inside = Vec::new();
            for d in &dirs {
                inside.extend(fsutil::procs(d).unwrap_or_default());
            }
            if inside.iter().any(|p| Some(*p) != exiting) {
                return Ok(false);
            }
            if inside.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        for d in &dirs {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Joined again meanwhile: it is in use.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(false),
                Err(source) => {
                    return Err(Error::Rmdir {
                        path: d.clone(),
                        waited: Duration::ZERO,
                        pids: Vec::new(),
                        source,
                    })
                }
            }
        }
        Ok(true)
    }

    /// Open a cgroup created earlier (by name as recorded, e.g. `lxrs.payload.web-2`). On v1
    /// it is the hierarchies where that directory exists; `NotFound` when none.
    pub fn open_existing(mounts: &CgroupMounts, driver: Driver, name: &str) -> Result<Cgroup> {
        check_dir_name(name)?;
        let roots = roots(mounts, driver)?;
        match driver {
            Driver::V1 => {
                let dirs: Vec<V1Dir> = mounts
                    .v1
                    .iter()
                    .filter(|h| h.mount.join(name).is_dir())
                    .map(|h| V1Dir {
                        controllers: h.controllers.clone(),
                        root: h.mount.clone(),
                        path: h.mount.join(name),
                    })
                    .collect();
                if dirs.is_empty() {
                    return Err(not_found(name, &roots));
                }
                Ok(Cgroup::V1(V1Cgroup {
                    name: name.to_string(),
                    dirs,
                    rules: None,
                }))
            }
            Driver::V2 => {
                let root = roots[0].clone();
                let path = root.join(name);
                if !path.is_dir() {
                    return Err(not_found(name, &roots));
                }
                Ok(Cgroup::V2(V2Cgroup {
                    name: name.to_string(),
                    root,
                    path,
                    prog: None,
                    rules: None,
                }))
            }
        }
    }

    /// Names of existing cgroups that may be leftovers of `container`: `lxrs.payload.NAME` and
    /// `lxrs.payload.NAME-N` (1..999) at the driver's roots, sorted. A suffixed name can also
    /// belong to a container literally named `NAME-N`: prefer the names recorded in state, and
    /// skip names other containers have recorded.
    pub fn leftovers(
        mounts: &CgroupMounts,
        driver: Driver,
        kind: Kind,
        container: &str,
    ) -> Result<Vec<String>> {
        let base = kind.base_name(container)?;
        let mut out: Vec<String> = Vec::new();
        for root in roots(mounts, driver)? {
            let entries = match std::fs::read_dir(&root) {
                Ok(e) => e,
                Err(source) => return Err(Error::ReadDir { path: root, source }),
            };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let ours = name == base
                    || name
                        .strip_prefix(&base)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(is_suffix);
                if ours
                    && entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
                    && !out.contains(&name)
                {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn driver(&self) -> Driver {
        match self {
            Cgroup::V1(_) => Driver::V1,
            Cgroup::V2(_) => Driver::V2,
        }
    }

    /// The directory name chosen (`lxrs.payload.NAME` or with a `-N` suffix).
    pub fn name(&self) -> &str {
        match self {
            Cgroup::V1(c) => c.name(),
            Cgroup::V2(c) => c.name(),
        }
    }

    /// Full paths of the cgroup's directories.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.procs().dirs()
    }

    fn procs(&self) -> &dyn Procs {
        match self {
            Cgroup::V1(c) => c,
            Cgroup::V2(c) => c,
        }
    }

    fn freezer(&self) -> &dyn Freezer {
        match self {
            Cgroup::V1(c) => c,
            Cgroup::V2(c) => c,
        }
    }

    fn limits(&self) -> &dyn Limits {
        match self {
            Cgroup::V1(c) => c,
            Cgroup::V2(c) => c,
        }
    }

    fn filter(&mut self) -> &mut dyn DeviceFilter {
        match self {
            Cgroup::V1(c) => c,
            Cgroup::V2(c) => c,
        }
    }

    /// Move a process into the cgroup (every hierarchy on v1).
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.procs().add_pid(pid)
    }

    /// Where a single-threaded process moves itself in without a grace period. See
    /// [`Procs::self_join_files`].
    pub fn self_join_files(&self) -> Option<Vec<PathBuf>> {
        self.procs().self_join_files()
    }

    /// Move the calling (single-threaded) process in. See [`Procs::join_self`].
    pub fn join_self(&self) -> Result<()> {
        self.procs().join_self()
    }

    /// Processes in the cgroup and below.
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.procs().pids()
    }

    /// Write one setting. See [`Limits::set`].
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        self.limits().set(key, value)
    }

    /// Read one setting. See [`Limits::get`].
    pub fn get(&self, key: &str) -> Result<String> {
        self.limits().get(key)
    }

    /// Write non-device settings in order. See [`Limits::apply_limits`].
    pub fn apply_limits(&self, settings: &[(String, String)]) -> Result<()> {
        self.limits().apply_limits(settings)
    }

    /// Install the device filter (v1 files, v2 eBPF program).
    pub fn set_devices(&mut self, rules: &DeviceRules) -> Result<()> {
        self.filter().set_devices(rules)
    }

    /// Add a rule to the running filter (`device add` = allow `c M:m rwm`, `del` = deny).
    pub fn add_device_rule(&mut self, rule: DeviceRule) -> Result<()> {
        self.filter().add_device_rule(rule)
    }

    pub fn device_rules(&self) -> Option<&DeviceRules> {
        match self {
            Cgroup::V1(c) => c.device_rules(),
            Cgroup::V2(c) => c.device_rules(),
        }
    }

    /// The attached eBPF device program (v2, when this process installed it).
    pub fn device_prog_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Cgroup::V1(_) => None,
            Cgroup::V2(c) => c.device_prog_fd(),
        }
    }

    /// Freeze, confirmed within [`DEFAULT_FREEZE_TIMEOUT`]; no-op when frozen; thaws back on
    /// failure.
    pub fn freeze(&self) -> Result<()> {
        self.freezer().freeze(DEFAULT_FREEZE_TIMEOUT)
    }

    pub fn freeze_timeout(&self, timeout: Duration) -> Result<()> {
        self.freezer().freeze(timeout)
    }

    /// Thaw, confirmed within [`DEFAULT_FREEZE_TIMEOUT`]; no-op when thawed.
    pub fn thaw(&self) -> Result<()> {
        self.freezer().thaw(DEFAULT_FREEZE_TIMEOUT)
    }

    pub fn thaw_timeout(&self, timeout: Duration) -> Result<()> {
        self.freezer().thaw(timeout)
    }

    pub fn state(&self) -> Result<FreezerState> {
        self.freezer().freezer_state()
    }

    pub fn stats(&self) -> Result<Stats> {
        match self {
            Cgroup::V1(c) => c.stats(),
            Cgroup::V2(c) => c.stats(),
        }
    }

    /// Remove the cgroup (and any cgroups the container created below it) even when processes
    /// linger: SIGKILL every pid, thaw, then rmdir deepest first, retrying busy directories
    /// until `timeout`. The calling process, if inside, is moved to the hierarchy root instead
    /// of killed. Every hierarchy is attempted; all failures are reported together.
    pub fn remove(&self, timeout: Duration) -> Result<()> {
        let dirs: Vec<(PathBuf, PathBuf)> = match self {
            Cgroup::V1(c) => c
                .dirs
                .iter()
                .map(|d| (d.root.clone(), d.path.clone()))
                .collect(),
            Cgroup::V2(c) => vec![(c.root.clone(), c.path.clone())],
        };
        let me = std::process::id() as i32;
        let mut errors = Vec::new();
        // Kill first (a frozen v1 task dies once thawed), then thaw.
        for (root, dir) in &dirs {
            if let Cgroup::V2(_) = self {
                let kill = dir.join("cgroup.kill");
                let inside = fsutil::procs_recursive(dir)
                    .map(|p| p.contains(&me))
                    .unwrap_or(true);
                if kill.exists() && !inside {
                    if let Err(e) = fsutil::write(&kill, "1") {
                        tracing::debug!(error = %e, "cgroup.kill");
                    }
                }
            }
            if let Err(e) = kill_all(root, dir, me) {
                errors.push(e);
            }
        }
        match self {
            Cgroup::V1(c) => {
                if let Some(f) = c.dir_of("freezer") {
                    for d in fsutil::walk(f).unwrap_or_default() {
                        let _ = fsutil::write_raw(&d.join("freezer.state"), "THAWED");
                    }
                }
            }
            Cgroup::V2(c) => {
                for d in fsutil::walk(&c.path).unwrap_or_default() {
                    let _ = fsutil::write_raw(&d.join("cgroup.freeze"), "0");
                }
            }
        }
        let start = Instant::now();
        let deadline = start + timeout;
        for (root, dir) in &dirs {
            if let Err(e) = rmdir_tree(root, dir, me, start, deadline) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            tracing::debug!(name = self.name(), took = ?start.elapsed(), "cgroup removed");
            Ok(())
        } else {
            Err(Error::Teardown {
                name: self.name().to_string(),
                errors,
            })
        }
    }
}

/// `1` .. `999` written canonically (no sign, no leading zero).
fn is_suffix(s: &str) -> bool {
    !s.starts_with('0')
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>()
            .is_ok_and(|n| (1..=MAX_SUFFIX).contains(&n))
}

fn roots(mounts: &CgroupMounts, driver: Driver) -> Result<Vec<PathBuf>> {
    let roots = mounts.roots(driver);
    if roots.is_empty() {
        return Err(Error::NoHierarchy {
            driver,
            mountinfo: mounts.source.clone(),
        });
    }
    Ok(roots)
}

fn not_found(name: &str, roots: &[PathBuf]) -> Error {
    Error::NotFound {
        name: name.to_string(),
        roots: roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// mkdir `name` in every root; `Ok(None)` when it exists somewhere (everything created in
/// this attempt is removed again).
fn try_create(
    mounts: &CgroupMounts,
    driver: Driver,
    roots: &[PathBuf],
    name: &str,
) -> Result<Option<Cgroup>> {
    let mut made: Vec<PathBuf> = Vec::new();
    let undo = |made: &[PathBuf]| {
        for p in made.iter().rev() {
            if let Err(e) = std::fs::remove_dir(p) {
                tracing::warn!(path = %p.display(), error = %e, "removing a half-created cgroup");
            }
        }
    };
    for root in roots {
        let path = root.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => made.push(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                undo(&made);
                return Ok(None);
            }
            Err(source) => {
                undo(&made);
                return Err(Error::Mkdir { path, source });
            }
        }
    }
    let cg = match driver {
        Driver::V1 => {
            let dirs: Vec<V1Dir> = mounts
                .v1
                .iter()
                .map(|h| V1Dir {
                    controllers: h.controllers.clone(),
                    root: h.mount.clone(),
                    path: h.mount.join(name),
                })
                .collect();
            if let Some(d) = dirs
                .iter()
                .find(|d| d.controllers.iter().any(|c| c == "cpuset"))
            {
                if let Err(e) = V1Cgroup::init_cpuset(&d.path) {
                    undo(&made);
                    return Err(e);
                }
            }
            Cgroup::V1(V1Cgroup {
                name: name.to_string(),
                dirs,
                rules: None,
            })
        }
        Driver::V2 => Cgroup::V2(V2Cgroup {
            name: name.to_string(),
            root: roots[0].clone(),
            path: roots[0].join(name),
            prog: None,
            rules: None,
        }),
    };
    Ok(Some(cg))
}

/// SIGKILL every process in `dir` and below; our own process is moved to `root` instead.
pub(crate) fn kill_all(root: &Path, dir: &Path, me: i32) -> Result<()> {
    for d in fsutil::walk(dir)? {
        for pid in fsutil::procs(&d)? {
            if pid == me {
                fsutil::write(&root.join("cgroup.procs"), &me.to_string())?;
                continue;
            }
            match nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            ) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    return Err(Error::Kill {
                        pid,
                        path: d.clone(),
                        source: io::Error::from(e),
                    })
                }
            }
        }
    }
    Ok(())
}

/// rmdir `dir` and its descendants deepest first, re-killing and retrying while busy.
fn rmdir_tree(root: &Path, dir: &Path, me: i32, start: Instant, deadline: Instant) -> Result<()> {
    let mut step = Duration::from_millis(1);
    loop {
        let tree = fsutil::walk(dir)?;
        let mut busy = None;
        for d in tree.iter().rev() {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {
                    busy = Some((d.clone(), e));
                    break;
                }
                Err(source) => {
                    return Err(Error::Rmdir {
                        path: d.clone(),
                        waited: start.elapsed(),
                        pids: fsutil::procs_recursive(dir).unwrap_or_default(),
                        source,
                    })
                }
            }
        }
        let Some((path, source)) = busy else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Rmdir {
                path,
                waited: start.elapsed(),
                pids: fsutil::procs_recursive(dir).unwrap_or_default(),
                source,
            });
        }
        kill_all(root, dir, me)?;
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(Duration::from_millis(10));
    }
}
