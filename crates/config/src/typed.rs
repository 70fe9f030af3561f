//! Phase 2: the typed view of a container configuration.

use crate::document::Document;
use crate::error::{ConfigError, Source, Sourced, Warning};
use crate::expand::{self, Entry, ExpandOptions};
use crate::values::{self, VResult};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Root filesystem storage backend, from the `lxc.rootfs.path` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Dir,
    Overlay,
    Loop,
    Nbd,
    Btrfs,
    Zfs,
    Lvm,
    Rbd,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Dir => "dir",
            Backend::Overlay => "overlay",
            Backend::Loop => "loop",
            Backend::Nbd => "nbd",
            Backend::Btrfs => "btrfs",
            Backend::Zfs => "zfs",
            Backend::Lvm => "lvm",
            Backend::Rbd => "rbd",
        }
    }
    fn from_prefix(p: &str) -> Option<Backend> {
        Some(match p {
            "dir" => Backend::Dir,
            "overlay" | "overlayfs" => Backend::Overlay,
            "loop" => Backend::Loop,
            "nbd" => Backend::Nbd,
            "btrfs" => Backend::Btrfs,
            "zfs" => Backend::Zfs,
            "lvm" => Backend::Lvm,
            "rbd" => Backend::Rbd,
            _ => return None,
        })
    }
}

/// `lxc.rootfs.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// `lxc.rootfs.path` as written (with prefix).
    pub spec: String,
    pub backend: Backend,
    /// Path (or device/dataset) after the backend prefix; for overlay the lower directory.
    pub path: String,
    /// Overlay upper directory (`overlay:<lower>:<upper>`).
    pub overlay_upper: Option<String>,
    /// `lxc.rootfs.options`, split on commas.
    pub options: Vec<String>,
    /// `ro` among the options.
    pub readonly: bool,
    /// `lxc.rootfs.mount`.
    pub mount: Option<PathBuf>,
    /// `lxc.rootfs.managed` (default true).
    pub managed: bool,
    pub source: Source,
}

/// Parse `lxc.rootfs.path`: `(backend, path, overlay upper)`.
pub fn parse_rootfs_path(v: &str) -> VResult<(Backend, String, Option<String>)> {
    if let Some((p, rest)) = v.split_once(':') {
        if let Some(b) = Backend::from_prefix(p) {
            if rest.is_empty() {
                return Err(format!("`{p}:` needs a path"));
            }
            if b == Backend::Overlay {
                return Ok(match rest.split_once(':') {
                    Some((lo, up)) => (b, lo.to_string(), Some(up.to_string())),
                    None => (b, rest.to_string(), None),
                });
            }
            return Ok((b, rest.to_string(), None));
        }
    }
    Ok((Backend::Dir, v.to_string(), None))
}

/// The current form of a legacy `lxc.rootfs` value: `<backend>:<value>` unless already prefixed.
pub fn legacy_rootfs_value(v: &str, backend: Option<&str>) -> String {
    if let Some((p, _)) = v.split_once(':') {
        if Backend::from_prefix(p).is_some() {
            return v.to_string();
        }
    }
    format!("{}:{v}", backend.unwrap_or("dir"))
}

/// `lxc.arch` resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Linux32,
    Linux64,
}

pub fn parse_arch(v: &str) -> VResult<Personality> {
    const A32: &[&str] = &[
        "arm", "armel", "armhf", "armv7l", "athlon", "i386", "i486", "i586", "i686", "linux32",
        "mips", "mipsel", "ppc", "powerpc", "x86", "armv7a", "armv7hl", "armv6l", "s390",
    ];
    const A64: &[&str] = &[
        "aarch64",
        "amd64",
        "arm64",
        "mips64",
        "mips64el",
        "ppc64",
        "ppc64el",
        "ppc64le",
        "powerpc64",
        "s390x",
        "x86_64",
        "linux64",
        "riscv64",
        "loongarch64",
        "sparc64",
    ];
    let l = v.to_ascii_lowercase();
    if A32.contains(&l.as_str()) {
        Ok(Personality::Linux32)
    } else if A64.contains(&l.as_str()) {
        Ok(Personality::Linux64)
    } else {
        Err(format!("unknown architecture `{v}`"))
    }
}

// ---- network ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetType {
    Veth,
    Macvlan,
    Ipvlan,
    Vlan,
    Phys,
    Empty,
    None,
}

impl NetType {
    pub fn parse(v: &str) -> VResult<NetType> {
        Ok(match v {
            "veth" => NetType::Veth,
            "macvlan" => NetType::Macvlan,
            "ipvlan" => NetType::Ipvlan,
            "vlan" => NetType::Vlan,
            "phys" => NetType::Phys,
            "empty" => NetType::Empty,
            "none" => NetType::None,
            _ => {
                return Err("type must be veth, macvlan, ipvlan, vlan, phys, empty or none".into())
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            NetType::Veth => "veth",
            NetType::Macvlan => "macvlan",
            NetType::Ipvlan => "ipvlan",
            NetType::Vlan => "vlan",
            NetType::Phys => "phys",
            NetType::Empty => "empty",
            NetType::None => "none",
        }
    }
}

/// Gateway: an address, `auto` (primary address of the link bridge) or `dev` (device route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway<A> {
    Addr(A),
    Auto,
    Dev,
}

fn parse_gateway<A: std::str::FromStr>(v: &str) -> VResult<Gateway<A>> {
    match v {
        "auto" => Ok(Gateway::Auto),
        "dev" => Ok(Gateway::Dev),
        _ => v
            .parse::<A>()
            .map(Gateway::Addr)
            .map_err(|_| format!("`{v}` is not an address, `auto` or `dev`")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// Explicit broadcast, if written.
    pub broadcast: Option<Ipv4Addr>,
}

impl Ipv4Net {
    /// Broadcast to configure: explicit, else computed (0.0.0.0 for /31 and /32).
    pub fn broadcast(&self) -> Ipv4Addr {
        self.broadcast
            .unwrap_or_else(|| values::ipv4_broadcast(self.addr, self.prefix))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Net {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VethMode {
    Bridge,
    Router,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Private,
    Vepa,
    Bridge,
    Passthru,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L3,
    L3s,
    L2,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanIsolation {
    Bridge,
    Private,
    Vepa,
}

impl MacvlanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Passthru => "passthru",
        }
    }
}
impl IpvlanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IpvlanMode::L3 => "l3",
            IpvlanMode::L3s => "l3s",
            IpvlanMode::L2 => "l2",
        }
    }
}

/// `veth.vlan.id`: a VLAN or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanSetting {
    None,
    Id(u16),
}

/// One `lxc.net.N` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetInterface {
    pub index: u32,
    pub kind: NetType,
    pub link: Option<String>,
    pub name: Option<String>,
    /// `flags` non-empty (`up`).
    pub up: bool,
    pub hwaddr: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub ipv4: Vec<Ipv4Net>,
    pub ipv4_gateway: Option<Gateway<Ipv4Addr>>,
    pub ipv6: Vec<Ipv6Net>,
    pub ipv6_gateway: Option<Gateway<Ipv6Addr>>,
    pub script_up: Option<String>,
    pub script_down: Option<String>,
    pub veth_pair: Option<String>,
    /// Defaults applied: veth `bridge`.
    pub veth_mode: Option<VethMode>,
    pub veth_ipv4_routes: Vec<Ipv4Net>,
    pub veth_ipv6_routes: Vec<Ipv6Net>,
    pub veth_vlan: Option<VlanSetting>,
    pub veth_vlan_tagged: Vec<u16>,
    pub veth_rx_queues: Option<u32>,
    pub veth_tx_queues: Option<u32>,
    /// Defaults applied: macvlan `private`.
    pub macvlan_mode: Option<MacvlanMode>,
    /// Defaults applied: ipvlan `l3` / `bridge`.
    pub ipvlan_mode: Option<IpvlanMode>,
    pub ipvlan_isolation: Option<IpvlanIsolation>,
    pub vlan_id: Option<u16>,
    pub l2proxy: bool,
    /// The `type` line.
    pub source: Source,
}

impl NetInterface {
    fn new(index: u32, kind: NetType, source: Source) -> Self {
        NetInterface {
            index,
            kind,
            link: None,
            name: None,
            up: false,
            hwaddr: None,
            mtu: None,
            ipv4: vec![],
            ipv4_gateway: None,
            ipv6: vec![],
            ipv6_gateway: None,
            script_up: None,
            script_down: None,
            veth_pair: None,
            veth_mode: (kind == NetType::Veth).then_some(VethMode::Bridge),
            veth_ipv4_routes: vec![],
            veth_ipv6_routes: vec![],
            veth_vlan: None,
            veth_vlan_tagged: vec![],
            veth_rx_queues: None,
            veth_tx_queues: None,
            macvlan_mode: (kind == NetType::Macvlan).then_some(MacvlanMode::Private),
            ipvlan_mode: (kind == NetType::Ipvlan).then_some(IpvlanMode::L3),
            ipvlan_isolation: (kind == NetType::Ipvlan).then_some(IpvlanIsolation::Bridge),
            vlan_id: None,
            l2proxy: false,
            source,
        }
    }
}

// ---- mounts ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Dir,
    File,
}

/// One fstab-format mount (`lxc.mount.entry` or a line of `lxc.mount.fstab`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    /// As written (relative to the rootfs when not absolute).
    pub target: String,
    pub fstype: String,
    /// Options without the lxrs/LXC-only ones (`create=`, `optional`, `relative`).
    pub options: Vec<String>,
    pub create: Option<CreateKind>,
    pub optional: bool,
    pub relative: bool,
    pub dump: u32,
    pub pass: u32,
}

impl MountEntry {
    /// Parse one fstab line (octal escapes like `\040` decoded).
    pub fn parse(line: &str) -> VResult<MountEntry> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || f.len() > 6 {
            return Err("expected `source target fstype [options [dump [pass]]]`".into());
        }
        let num = |i: usize| -> VResult<u32> {
            f.get(i).map_or(Ok(0), |s| {
                s.parse::<u32>()
                    .map_err(|_| format!("`{s}` is not a number"))
            })
        };
        let mut e = MountEntry {
            source: values::unescape_fstab(f[0]),
            target: values::unescape_fstab(f[1]),
            fstype: f[2].to_string(),
            options: vec![],
            create: None,
            optional: false,
            relative: false,
            dump: num(4)?,
            pass: num(5)?,
        };
        for o in f
            .get(3)
            .copied()
            .unwrap_or("defaults")
            .split(',')
            .filter(|o| !o.is_empty())
        {
            match o {
                "optional" => e.optional = true,
                "relative" => e.relative = true,
                "create=dir" => e.create = Some(CreateKind::Dir),
                "create=file" => e.create = Some(CreateKind::File),
                o if o.starts_with("create=") => {
                    return Err(format!("`{o}`: create= takes dir or file"))
                }
                o => e.options.push(o.to_string()),
            }
        }
        Ok(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcMode {
    Mixed,
    Rw,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysMode {
    Mixed,
    Ro,
    Rw,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMountMode {
    /// bare `cgroup`: rw if CAP_SYS_ADMIN is kept, else mixed.
    Auto,
    Mixed,
    Ro,
    Rw,
    /// bare `cgroup-full`
    FullAuto,
    FullMixed,
    FullRo,
    FullRw,
    Cgroup2,
    Cgroup2Ro,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupAuto {
    pub mode: CgroupMountMode,
    /// `:force`: mount even with a cgroup namespace.
    pub force: bool,
}

/// `lxc.mount.auto`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountAuto {
    pub proc: Option<ProcMode>,
    pub sys: Option<SysMode>,
    pub cgroup: Option<CgroupAuto>,
    /// `shmounts:<host path>[:<container path>]`.
    pub shmounts: Option<(String, Option<String>)>,
}

impl MountAuto {
    /// Add the tokens of one `lxc.mount.auto` line.
    pub fn add_tokens(&mut self, v: &str) -> VResult<()> {
        for t in v.split_whitespace() {
            match t {
                "proc" | "proc:mixed" => self.proc = Some(ProcMode::Mixed),
                "proc:rw" => self.proc = Some(ProcMode::Rw),
                "sys" | "sys:mixed" => self.sys = Some(SysMode::Mixed),
                "sys:ro" => self.sys = Some(SysMode::Ro),
                "sys:rw" => self.sys = Some(SysMode::Rw),
                t if t.starts_with("shmounts:") => {
                    let rest = &t["shmounts:".len()..];
                    if rest.is_empty() {
                        return Err("shmounts: needs a host path".into());
                    }
                    self.shmounts = Some(match rest.split_once(':') {
                        Some((h, c)) => (h.to_string(), Some(c.to_string())),
                        None => (rest.to_string(), None),
                    });
                }
                t if t.starts_with("cgroup") => {
                    let (base, force) = match t.strip_suffix(":force") {
                        Some(b) => (b, true),
                        None => (t, false),
                    };
                    let mode = match base {
                        "cgroup" => CgroupMountMode::Auto,
                        "cgroup:mixed" => CgroupMountMode::Mixed,
                        "cgroup:ro" => CgroupMountMode::Ro,
                        "cgroup:rw" => CgroupMountMode::Rw,
                        "cgroup-full" => CgroupMountMode::FullAuto,
                        "cgroup-full:mixed" => CgroupMountMode::FullMixed,
                        "cgroup-full:ro" => CgroupMountMode::FullRo,
                        "cgroup-full:rw" => CgroupMountMode::FullRw,
                        "cgroup2" => CgroupMountMode::Cgroup2,
                        "cgroup2:ro" => CgroupMountMode::Cgroup2Ro,
                        _ => return Err(format!("unknown mount.auto token `{t}`")),
                    };
                    self.cgroup = Some(CgroupAuto { mode, force });
                }
                _ => return Err(format!("unknown mount.auto token `{t}` (proc, sys, cgroup, cgroup-full, cgroup2, shmounts)")),
            }
        }
        Ok(())
    }
}

/// `lxc.mount.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    pub entries: Vec<Sourced<MountEntry>>,
    pub fstab: Option<Sourced<PathBuf>>,
    pub auto: MountAuto,
}

// ---- the rest --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// One `lxc.cgroup.<key>` / `lxc.cgroup2.<key>` line, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSetting {
    pub version: CgroupVersion,
    /// `memory.max`, `devices.allow`, ...
    pub key: String,
    pub value: String,
    pub source: Source,
}

/// `lxc.start.*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartPolicy {
    pub auto: bool,
    /// Seconds to wait after this container started, before the next.
    pub delay: u32,
    /// Higher starts first.
    pub order: i32,
}

/// Capability numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub drop: Vec<u32>,
    /// `Some(vec![])` = keep none (drop all).
    pub keep: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub kind: IdKind,
    pub nsid: u32,
    pub hostid: u32,
    pub range: u32,
    pub source: Source,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tty {
    /// `lxc.tty.max`
    pub max: u32,
    /// `lxc.tty.dir`
    pub dir: Option<String>,
    /// `lxc.pty.max` (0 = unset)
    pub pty_max: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Console {
    /// `lxc.console.path` (`none` = disabled).
    pub path: Option<String>,
    pub logfile: Option<PathBuf>,
    /// `lxc.console.buffer.size` in bytes (`auto` = 128 KiB).
    pub buffer_size: Option<u64>,
    pub log_size: Option<u64>,
    pub rotate: bool,
}

impl Console {
    pub fn enabled(&self) -> bool {
        self.path.as_deref() != Some("none")
    }
}

/// Signal numbers (`None` = default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    pub halt: Option<i32>,
    pub reboot: Option<i32>,
    pub stop: Option<i32>,
    pub monitor_pdeath: Option<i32>,
}

impl Signals {
    pub fn halt_or_default(&self) -> i32 {
        self.halt.unwrap_or(libc::SIGPWR)
    }
    pub fn reboot_or_default(&self) -> i32 {
        self.reboot.unwrap_or(libc::SIGINT)
    }
    pub fn stop_or_default(&self) -> i32 {
        self.stop.unwrap_or(libc::SIGKILL)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Init {
    pub cmd: Option<String>,
    pub execute_cmd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub cwd: Option<PathBuf>,
    pub groups: Vec<u32>,
}

impl Init {
    /// argv of init: `lxc.init.cmd` split shell-like, default `/sbin/init`.
    pub fn argv(&self) -> Vec<String> {
        match &self.cmd {
            Some(c) => values::split_command(c).unwrap_or_else(|_| vec![c.clone()]),
            None => vec!["/sbin/init".to_string()],
        }
    }
}

/// `VAR=value`, or bare `VAR` (value `None`) = inherit from the host environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `pre-start`, `start-host`, `start`, `stop`, `post-stop`, ...
    pub kind: String,
    pub command: String,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
    Alert,
    Fatal,
}

impl LogLevel {
    pub fn parse(v: &str) -> VResult<LogLevel> {
        use LogLevel::*;
        const ALL: [LogLevel; 9] = [Trace, Debug, Info, Notice, Warn, Error, Crit, Alert, Fatal];
        if let Ok(n) = v.parse::<usize>() {
            return ALL
                .get(n)
                .copied()
                .ok_or_else(|| "log level number must be 0..8".to_string());
        }
        let u = v.to_ascii_uppercase();
        ALL.iter().copied().find(|l| l.name() == u).ok_or_else(|| {
            "expected 0..8 or TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, CRIT, ALERT, FATAL".into()
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Notice => "NOTICE",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Crit => "CRIT",
            LogLevel::Alert => "ALERT",
            LogLevel::Fatal => "FATAL",
        }
    }
    /// The `tracing` level name.
    pub fn tracing_level(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info | LogLevel::Notice => "info",
            LogLevel::Warn => "warn",
            _ => "error",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// Default ERROR when unset.
    pub level: Option<LogLevel>,
    pub file: Option<PathBuf>,
    pub syslog: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seccomp {
    pub profile: Option<PathBuf>,
    pub allow_nesting: bool,
    pub notify_proxy: Option<String>,
    pub notify_cookie: Option<String>,
}

/// `lxc.prlimit.<name> = soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prlimit {
    /// Name as written (`nofile`).
    pub name: String,
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// `None` = unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    pub source: Source,
}

/// `lxc.sysctl.<name>` / `lxc.proc.<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub name: String,
    pub value: String,
    pub source: Source,
}

/// LSM settings (kept and reported; applying them is the runtime's business).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lsm {
    pub apparmor_profile: Option<String>,
    pub apparmor_allow_incomplete: bool,
    pub apparmor_allow_nesting: bool,
    pub apparmor_raw: Vec<String>,
    pub selinux_context: Option<String>,
    pub selinux_context_keyring: Option<String>,
}

const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub clone: Vec<String>,
    pub keep: Vec<String>,
    /// `lxc.namespace.share.<ns>` = pid, container name or path.
    pub share: BTreeMap<String, String>,
}

/// The typed view of one container configuration (includes resolved, clears applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// Top-level config file.
    pub path: PathBuf,
    /// Effective entries (current key names) in file order: what `config show` prints.
    pub entries: Vec<Entry>,
    pub rootfs: Option<Rootfs>,
    pub uts_name: Option<Sourced<String>>,
    pub arch: Option<Sourced<Personality>>,
    /// Interfaces sorted by index.
    pub net: Vec<NetInterface>,
    pub start: StartPolicy,
    pub groups: Vec<String>,
    pub mount: Mounts,
    pub cgroup: Vec<CgroupSetting>,
    pub caps: Caps,
    pub idmap: Vec<IdMap>,
    pub tty: Tty,
    pub console: Console,
    pub signals: Signals,
    pub init: Init,
    pub environment: Vec<EnvVar>,
    pub environment_runtime: Vec<EnvVar>,
    pub environment_hooks: Vec<EnvVar>,
    pub hooks: Vec<Hook>,
    pub hook_version: u8,
    pub log: Log,
    pub no_new_privs: bool,
    pub seccomp: Seccomp,
    pub prlimits: Vec<Prlimit>,
    pub sysctls: Vec<KeyValue>,
    pub proc: Vec<KeyValue>,
    /// `lxc.autodev` (default true).
    pub autodev: bool,
    pub autodev_tmpfs_size: Option<u64>,
    pub ephemeral: bool,
    pub lsm: Lsm,
    pub namespaces: Namespaces,
    pub sched_core: bool,
    pub keyring_session: Option<bool>,
    pub monitor_unshare: bool,
    /// Scalars without a dedicated field (`lxc.cgroup.dir`, `lxc.time.offset.*`, ...).
    pub other: BTreeMap<String, Sourced<String>>,
}

/// A loaded configuration plus its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: ContainerConfig,
    pub warnings: Vec<Warning>,
}

/// Everything found by checking a file.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
    /// The typed view, if there were no errors.
    pub config: Option<ContainerConfig>,
}

impl ContainerConfig {
    fn empty(path: PathBuf) -> Self {
        ContainerConfig {
            path,
            entries: vec![],
            rootfs: None,
            uts_name: None,
            arch: None,
            net: vec![],
            start: StartPolicy::default(),
            groups: vec![],
            mount: Mounts::default(),
            cgroup: vec![],
            caps: Caps::default(),
            idmap: vec![],
            tty: Tty::default(),
            console: Console::default(),
            signals: Signals::default(),
            init: Init::default(),
            environment: vec![],
            environment_runtime: vec![],
            environment_hooks: vec![],
            hooks: vec![],
            hook_version: 0,
            log: Log::default(),
            no_new_privs: false,
            seccomp: Seccomp::default(),
            prlimits: vec![],
            sysctls: vec![],
            proc: vec![],
            autodev: true,
            autodev_tmpfs_size: None,
            ephemeral: false,
            lsm: Lsm::default(),
            namespaces: Namespaces::default(),
            sched_core: false,
            keyring_session: None,
            monitor_unshare: false,
            other: BTreeMap::new(),
        }
    }

    /// Load a container config (includes followed). Errors: all of them (`Multiple` if more
    /// than one). Warnings come back with the config.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
        Self::check(path).into_result()
    }

    /// Interpret an already parsed document (includes followed per `opts`).
    pub fn from_document(doc: &Document, opts: ExpandOptions) -> Result<Loaded, ConfigError> {
        Self::check_document(doc, opts).into_result()
    }

    /// Collect every error and warning of a file.
    pub fn check(path: impl AsRef<Path>) -> Report {
        let path = path.as_ref();
        match Document::load(path) {
            Ok(doc) => Self::check_document(&doc, ExpandOptions::default()),
            Err(e) => Report {
                errors: vec![e],
                ..Default::default()
            },
        }
    }

    /// Collect every error and warning of a parsed document.
    pub fn check_document(doc: &Document, opts: ExpandOptions) -> Report {
        let ex = expand::expand(doc, opts);
        let mut b = Builder {
            cfg: ContainerConfig::empty(doc.path().to_path_buf()),
            errors: ex.errors,
            warnings: ex.warnings,
        };
        b.build(ex.entries);
        let Builder {
            cfg,
            mut errors,
            mut warnings,
        } = b;
        let loc = |e: &ConfigError| e.location().map(|(f, l)| (f.to_path_buf(), l));
        errors.sort_by_key(|e| loc(e));
        warnings
            .sort_by(|a, b| (&a.source.file, a.source.line).cmp(&(&b.source.file, b.source.line)));
        for w in &warnings {
            tracing::debug!(%w, "config warning");
        }
        let config = errors.is_empty().then_some(cfg);
        Report {
            errors,
            warnings,
            config,
        }
    }

    /// Effective values of a key (current or legacy spelling), in order.
    pub fn get(&self, key: &str) -> Vec<&str> {
        let canon = canonical_key(key);
        self.entries
            .iter()
            .filter(|e| e.key == canon)
            .map(|e| e.value.as_str())
            .collect()
    }

    /// Where the effective value of `key` (current or legacy spelling) was set: the last line
    /// for list keys. For messages about settings without a per-item `Source`.
    pub fn source_of(&self, key: &str) -> Option<&Source> {
        let canon = canonical_key(key);
        self.entries
            .iter()
            .rfind(|e| e.key == canon)
            .map(|e| &e.source)
    }

    /// The `lxc.mount.fstab` file's entries (path relative to the config's directory).
    pub fn fstab_entries(&self) -> Result<Vec<Sourced<MountEntry>>, ConfigError> {
        let Some(f) = &self.mount.fstab else {
            return Ok(vec![]);
        };
        let mut p = f.value.clone();
        if p.is_relative() {
            if let Some(d) = self.path.parent() {
                p = d.join(p);
            }
        }
        let text = std::fs::read_to_string(&p).map_err(|e| ConfigError::io(&p, "read fstab", e))?;
        let file: std::sync::Arc<Path> = std::sync::Arc::from(p.as_path());
        let mut out = vec![];
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let src = Source::new(&file, i + 1);
            let e = MountEntry::parse(t)
                .map_err(|r| ConfigError::invalid(&src, "lxc.mount.fstab", t, r))?;
            out.push(Sourced::new(e, src));
        }
        Ok(out)
    }

    /// Render the effective configuration with current key names (includes resolved).
    pub fn render_expanded(&self) -> String {
        crate::render::render_entries(&self.entries)
    }
}

impl Report {
    pub fn into_result(self) -> Result<Loaded, ConfigError> {
        match (ConfigError::from_many(self.errors), self.config) {
            (Some(e), _) => Err(e),
            (None, Some(config)) => Ok(Loaded {
                config,
                warnings: self.warnings,
            }),
            (None, None) => Err(ConfigError::Multiple { errors: vec![] }),
        }
    }
}

/// Map a key to its current spelling where that needs no context (not `lxc.network.*`).
pub fn canonical_key(key: &str) -> String {
    use crate::keys::{KeyRef, NicRef};
    match crate::keys::resolve(key) {
        Ok(r) => match r.key {
            KeyRef::Exact(k) => k.to_string(),
            KeyRef::Prlimit(n) => format!("lxc.prlimit.{n}"),
            KeyRef::Net {
                nic: NicRef::Index(n),
                sub,
            }
            | KeyRef::Net {
                nic: NicRef::LegacyPosition(n),
                sub,
            } => {
                format!("lxc.net.{n}.{sub}")
            }
            _ => key.to_string(),
        },
        Err(_) => key.to_string(),
    }
}

struct Builder {
    cfg: ContainerConfig,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

fn env_var(v: &str) -> VResult<EnvVar> {
    let (name, value) = match v.split_once('=') {
        Some((n, val)) => (n, Some(val.to_string())),
        None => (v, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("expected `NAME=value` or a bare `NAME`".into());
    }
    Ok(EnvVar {
        name: name.to_string(),
        value,
    })
}

fn caps_list(v: &str) -> VResult<Vec<u32>> {
    v.split_whitespace().map(values::parse_cap).collect()
}

impl Builder {
    fn build(&mut self, entries: Vec<Entry>) {
        let mut nics: BTreeMap<u32, NetInterface> = BTreeMap::new();
        let mut keep_src: Option<Source> = None;
        let mut drop_src: Option<Source> = None;
        let mut rootfs_opts: Option<&Entry> = None;
        let mut rootfs_mount: Option<&Entry> = None;
        let mut rootfs_managed: Option<&Entry> = None;
        for e in &entries {
            let r = match e.key.as_str() {
                "lxc.rootfs.options" => {
                    rootfs_opts = Some(e);
                    Ok(())
                }
                "lxc.rootfs.mount" => {
                    rootfs_mount = Some(e);
                    Ok(())
                }
                "lxc.rootfs.managed" => {
                    rootfs_managed = Some(e);
                    values::parse_bool01(&e.value).map(|_| ())
                }
                "lxc.cap.drop" => {
                    drop_src = Some(e.source.clone());
                    caps_list(&e.value).map(|c| self.cfg.caps.drop.extend(c))
                }
                "lxc.cap.keep" => {
                    keep_src = Some(e.source.clone());
                    if e.value == "none" {
                        self.cfg.caps.keep = Some(vec![]);
                        Ok(())
                    } else {
                        caps_list(&e.value)
                            .map(|c| self.cfg.caps.keep.get_or_insert_with(Vec::new).extend(c))
                    }
                }
                k if k.starts_with("lxc.net.") => self.net(&mut nics, e),
                _ => self.one(e),
            };
            if let Err(reason) = r {
                self.errors.push(ConfigError::invalid(
                    &e.source, &e.raw_key, &e.value, reason,
                ));
            }
        }
        // rootfs
        if let Some(p) = entries.iter().rfind(|e| e.key == "lxc.rootfs.path") {
            match parse_rootfs_path(&p.value) {
                Ok((backend, path, upper)) => {
                    let options: Vec<String> = rootfs_opts
                        .map(|o| {
                            o.value
                                .split(',')
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                    self.cfg.rootfs = Some(Rootfs {
                        spec: p.value.clone(),
                        backend,
                        path,
                        overlay_upper: upper,
                        readonly: options.iter().any(|o| o == "ro"),
                        options,
                        mount: rootfs_mount.map(|m| PathBuf::from(&m.value)),
                        managed: rootfs_managed.is_none_or(|m| m.value != "0"),
                        source: p.source.clone(),
                    });
                }
                Err(r) => self
                    .errors
                    .push(ConfigError::invalid(&p.source, &p.raw_key, &p.value, r)),
            }
        }
        // caps: drop and keep are exclusive.
        if !self.cfg.caps.drop.is_empty() && self.cfg.caps.keep.is_some() {
            let k = keep_src.or(drop_src).expect("a keep line exists");
            self.errors.push(ConfigError::conflict(
                &k,
                "lxc.cap.keep",
                &entries.iter().filter(|e| e.key == "lxc.cap.keep").map(|e| e.value.as_str()).collect::<Vec<_>>().join(" "),
                "lxc.cap.drop and lxc.cap.keep are mutually exclusive (clear one with an empty value)",
            ));
        }
        // NICs
        for (_, n) in nics {
            if n.ipv4_gateway.is_some() && n.ipv4.is_empty()
                || n.ipv6_gateway.is_some()
                    && n.ipv6.is_empty()
                    && !matches!(n.ipv6_gateway, Some(Gateway::Addr(a)) if (a.segments()[0] & 0xffc0) == 0xfe80)
            {
                self.warnings.push(Warning {
                    source: n.source.clone(),
                    key: Some(format!("lxc.net.{}", n.index)),
                    message: "a gateway is set but the interface has no address of that family"
                        .into(),
                });
            }
            if (n.ipv4_gateway.is_some() || n.ipv6_gateway.is_some()) && !n.up {
                self.warnings.push(Warning {
                    source: n.source.clone(),
                    key: Some(format!("lxc.net.{}", n.index)),
                    message: "a gateway needs `flags = up`".into(),
                });
            }
            self.cfg.net.push(n);
        }
        self.cfg.entries = entries;
    }

    fn sourced<T>(e: &Entry, v: T) -> Option<Sourced<T>> {
        Some(Sourced::new(v, e.source.clone()))
    }

    fn one(&mut self, e: &Entry) -> VResult<()> {
        let v = e.value.as_str();
        let c = &mut self.cfg;
        match e.key.as_str() {
            "lxc.rootfs.path" => {
                parse_rootfs_path(v)?;
            }
            "lxc.uts.name" => {
                if v.len() > 64 {
                    return Err("host name longer than 64 bytes".into());
                }
                c.uts_name = Self::sourced(e, v.to_string());
            }
            "lxc.arch" => c.arch = Self::sourced(e, parse_arch(v)?),
            "lxc.start.auto" => c.start.auto = values::parse_bool01(v)?,
            "lxc.start.delay" => c.start.delay = values::parse_u32(v)?,
            "lxc.start.order" => c.start.order = values::parse_i32(v)?,
            "lxc.group" => c.groups.extend(
                v.split(|ch: char| ch.is_whitespace() || ch == ',')
                    .filter(|g| !g.is_empty())
                    .map(String::from),
            ),
            "lxc.mount.entry" => {
                let m = MountEntry::parse(v)?;
                c.mount.entries.push(Sourced::new(m, e.source.clone()));
            }
            "lxc.mount.fstab" => c.mount.fstab = Self::sourced(e, PathBuf::from(v)),
            "lxc.mount.auto" => c.mount.auto.add_tokens(v)?,
            "lxc.idmap" => {
                let (k, nsid, hostid, range) = values::parse_idmap(v)?;
                let kind = if k == 'u' { IdKind::Uid } else { IdKind::Gid };
                c.idmap.push(IdMap {
                    kind,
                    nsid,
                    hostid,
                    range,
                    source: e.source.clone(),
                });
            }
            "lxc.tty.max" => c.tty.max = values::parse_u32(v)?,
            "lxc.tty.dir" => c.tty.dir = Some(v.to_string()),
            "lxc.pty.max" => c.tty.pty_max = values::parse_u32(v)?,
            "lxc.console.path" => c.console.path = Some(v.to_string()),
            "lxc.console.logfile" => c.console.logfile = Some(PathBuf::from(v)),
            "lxc.console.buffer.size" => {
                c.console.buffer_size = Some(if v == "auto" {
                    128 << 10
                } else {
                    values::parse_size(v)?
                })
            }
            "lxc.console.size" => {
                c.console.log_size = Some(if v == "auto" {
                    128 << 10
                } else {
                    values::parse_size(v)?
                })
            }
            "lxc.console.rotate" => c.console.rotate = values::parse_bool01(v)?,
            "lxc.signal.halt" => c.signals.halt = Some(values::parse_signal(v)?),
            "lxc.signal.reboot" => c.signals.reboot = Some(values::parse_signal(v)?),
            "lxc.signal.stop" => c.signals.stop = Some(values::parse_signal(v)?),
            "lxc.monitor.signal.pdeath" => {
                c.signals.monitor_pdeath = Some(if v == "0" {
                    0
                } else {
                    values::parse_signal(v)?
                })
            }
            "lxc.monitor.unshare" => c.monitor_unshare = values::parse_bool01(v)?,
            "lxc.init.cmd" => {
                values::split_command(v)?;
                c.init.cmd = Some(v.to_string())
            }
            "lxc.execute.cmd" => c.init.execute_cmd = Some(v.to_string()),
            "lxc.init.uid" => c.init.uid = Some(values::parse_u32(v)?),
            "lxc.init.gid" => c.init.gid = Some(values::parse_u32(v)?),
            "lxc.init.cwd" => {
                if !v.starts_with('/') {
                    return Err("lxc.init.cwd must be an absolute path".into());
                }
                c.init.cwd = Some(PathBuf::from(v))
            }
            "lxc.init.groups" => {
                for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    c.init.groups.push(
                        values::parse_u32(g)
                            .map_err(|_| format!("group id `{g}` is not a number"))?,
                    );
                }
            }
            "lxc.environment" => c.environment.push(env_var(v)?),
            "lxc.environment.runtime" => c.environment_runtime.push(env_var(v)?),
            "lxc.environment.hooks" => c.environment_hooks.push(env_var(v)?),
            "lxc.hook.version" => {
                c.hook_version = match v {
                    "0" => 0,
                    "1" => 1,
                    _ => return Err("hook version must be 0 or 1".into()),
                }
            }
            k if k.starts_with("lxc.hook.") => c.hooks.push(Hook {
                kind: k["lxc.hook.".len()..].to_string(),
                command: v.to_string(),
                source: e.source.clone(),
            }),
            "lxc.log.level" => c.log.level = Some(LogLevel::parse(v)?),
            "lxc.log.file" => c.log.file = Some(PathBuf::from(v)),
            "lxc.log.syslog" => {
                const FAC: &[&str] = &[
                    "daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
                    "local7",
                ];
                if !FAC.contains(&v) {
                    return Err("syslog facility must be daemon or local0..local7".into());
                }
                c.log.syslog = Some(v.to_string())
            }
            "lxc.no_new_privs" => c.no_new_privs = values::parse_bool01(v)?,
            "lxc.seccomp.profile" => c.seccomp.profile = Some(PathBuf::from(v)),
            "lxc.seccomp.allow_nesting" => c.seccomp.allow_nesting = values::parse_bool01(v)?,
            "lxc.seccomp.notify.proxy" => c.seccomp.notify_proxy = Some(v.to_string()),
            "lxc.seccomp.notify.cookie" => c.seccomp.notify_cookie = Some(v.to_string()),
            "lxc.autodev" => c.autodev = values::parse_bool01(v)?,
            "lxc.autodev.tmpfs.size" => c.autodev_tmpfs_size = Some(values::parse_u32(v)? as u64),
            "lxc.ephemeral" => c.ephemeral = values::parse_bool01(v)?,
            "lxc.sched.core" => c.sched_core = values::parse_bool01(v)?,
            "lxc.keyring.session" => c.keyring_session = Some(values::parse_bool01(v)?),
            "lxc.apparmor.profile" => c.lsm.apparmor_profile = Some(v.to_string()),
            "lxc.apparmor.allow_incomplete" => {
                c.lsm.apparmor_allow_incomplete = values::parse_bool01(v)?
            }
            "lxc.apparmor.allow_nesting" => c.lsm.apparmor_allow_nesting = values::parse_bool01(v)?,
            "lxc.apparmor.raw" => c.lsm.apparmor_raw.push(v.to_string()),
            "lxc.selinux.context" => c.lsm.selinux_context = Some(v.to_string()),
            "lxc.selinux.context.keyring" => c.lsm.selinux_context_keyring = Some(v.to_string()),
            "lxc.namespace.clone" | "lxc.namespace.keep" => {
                let mut list = vec![];
                for ns in v.split_whitespace() {
                    if !NAMESPACES.contains(&ns) {
                        return Err(format!(
                            "unknown namespace `{ns}` (one of {})",
                            NAMESPACES.join(", ")
                        ));
                    }
                    list.push(ns.to_string());
                }
                if e.key == "lxc.namespace.clone" {
                    c.namespaces.clone.extend(list)
                } else {
                    c.namespaces.keep.extend(list)
                }
            }
            "lxc.cgroup.relative" => {
                values::parse_bool01(v)?;
                c.other
                    .insert(e.key.clone(), Sourced::new(v.to_string(), e.source.clone()));
            }
            k if k.starts_with("lxc.namespace.share.") => {
                let ns = &k["lxc.namespace.share.".len()..];
                if !NAMESPACES.contains(&ns) {
                    return Err(format!("unknown namespace `{ns}`"));
                }
                c.namespaces.share.insert(ns.to_string(), v.to_string());
            }
            k if k.starts_with("lxc.prlimit.") => {
                let name = &k["lxc.prlimit.".len()..];
                let resource = values::parse_rlimit_name(name)?;
                let (soft, hard) = values::parse_prlimit_value(v)?;
                c.prlimits.push(Prlimit {
                    name: name.to_string(),
                    resource,
                    soft,
                    hard,
                    source: e.source.clone(),
                });
            }
            k if k.starts_with("lxc.sysctl.") => c.sysctls.push(KeyValue {
                name: k["lxc.sysctl.".len()..].to_string(),
                value: v.to_string(),
                source: e.source.clone(),
            }),
            k if k.starts_with("lxc.proc.") => c.proc.push(KeyValue {
                name: k["lxc.proc.".len()..].to_string(),
                value: v.to_string(),
                source: e.source.clone(),
            }),
            k if (k.starts_with("lxc.cgroup.") || k.starts_with("lxc.cgroup2."))
                && crate::keys::is_list_key(k) =>
            {
                let (version, sub) = match k.strip_prefix("lxc.cgroup2.") {
                    Some(s) => (CgroupVersion::V2, s),
                    None => (CgroupVersion::V1, &k["lxc.cgroup.".len()..]),
                };
                if sub == "devices.allow" || sub == "devices.deny" {
                    values::check_device_rule(v, version == CgroupVersion::V1)?;
                }
                c.cgroup.push(CgroupSetting {
                    version,
                    key: sub.to_string(),
                    value: v.to_string(),
                    source: e.source.clone(),
                });
            }
            _ => {
                c.other
                    .insert(e.key.clone(), Sourced::new(v.to_string(), e.source.clone()));
            }
        }
        Ok(())
    }

    fn net(&mut self, nics: &mut BTreeMap<u32, NetInterface>, e: &Entry) -> VResult<()> {
        let rest = &e.key["lxc.net.".len()..];
        let Some((idx, sub)) = rest.split_once('.') else {
            return Ok(());
        };
        let index: u32 = idx.parse().map_err(|_| "bad NIC index".to_string())?;
        let v = e.value.as_str();
        if sub == "type" {
            nics.insert(
                index,
                NetInterface::new(index, NetType::parse(v)?, e.source.clone()),
            );
            return Ok(());
        }
        let Some(n) = nics.get_mut(&index) else {
            return Err(format!(
                "lxc.net.{index}.type must be set before other lxc.net.{index} keys"
            ));
        };
        match sub {
            "flags" => n.up = !v.is_empty(),
            "link" => n.link = Some(v.to_string()),
            "name" => {
                if v.len() >= 16 {
                    return Err("interface names are at most 15 bytes".into());
                }
                n.name = Some(v.to_string())
            }
            "hwaddr" => {
                // `x` left in a config read (e.g. from an include) is randomised at each load.
                let mac = if v.contains(['x', 'X']) {
                    crate::hwaddr::expand_hwaddr(v)
                } else {
                    v.to_string()
                };
                n.hwaddr = Some(crate::hwaddr::parse_mac(&mac)?);
            }
            "mtu" => {
                let m = values::parse_u32(v)?;
                if m == 0 {
                    return Err("mtu must be positive".into());
                }
                n.mtu = Some(m)
            }
            "ipv4.address" => {
                let (addr, prefix, broadcast) = values::parse_ipv4_address(v)?;
                n.ipv4.push(Ipv4Net {
                    addr,
                    prefix,
                    broadcast,
                });
            }
            "ipv6.address" => {
                let (addr, prefix) = values::parse_ipv6_address(v)?;
                n.ipv6.push(Ipv6Net { addr, prefix });
            }
            "ipv4.gateway" => n.ipv4_gateway = Some(parse_gateway(v)?),
            "ipv6.gateway" => n.ipv6_gateway = Some(parse_gateway(v)?),
            "script.up" => n.script_up = Some(v.to_string()),
            "script.down" => n.script_down = Some(v.to_string()),
            "veth.pair" => {
                if v.len() >= 16 {
                    return Err("interface names are at most 15 bytes".into());
                }
                n.veth_pair = Some(v.to_string())
            }
            "veth.mode" => {
                n.veth_mode = Some(match v {
                    "bridge" => VethMode::Bridge,
                    "router" => VethMode::Router,
                    _ => return Err("veth.mode is bridge or router".into()),
                })
            }
            "veth.ipv4.route" => {
                let (addr, prefix, b) = values::parse_ipv4_address(v)?;
                if b.is_some() || !v.contains('/') {
                    return Err("expected `address/prefix`".into());
                }
                n.veth_ipv4_routes.push(Ipv4Net {
                    addr,
                    prefix,
                    broadcast: None,
                });
            }
            "veth.ipv6.route" => {
                if !v.contains('/') {
                    return Err("expected `address/prefix`".into());
                }
                let (addr, prefix) = values::parse_ipv6_address(v)?;
                n.veth_ipv6_routes.push(Ipv6Net { addr, prefix });
            }
            "veth.vlan.id" => {
                n.veth_vlan = Some(if v == "none" {
                    VlanSetting::None
                } else {
                    VlanSetting::Id(parse_vlan(v)?)
                })
            }
            "veth.vlan.tagged.id" => n.veth_vlan_tagged.push(parse_vlan(v)?),
            "veth.n_rxqueues" => n.veth_rx_queues = Some(parse_positive(v)?),
            "veth.n_txqueues" => n.veth_tx_queues = Some(parse_positive(v)?),
            "macvlan.mode" => {
                n.macvlan_mode = Some(match v {
                    "private" => MacvlanMode::Private,
                    "vepa" => MacvlanMode::Vepa,
                    "bridge" => MacvlanMode::Bridge,
                    "passthru" => MacvlanMode::Passthru,
                    _ => return Err("macvlan.mode is private, vepa, bridge or passthru".into()),
                })
            }
            "ipvlan.mode" => {
                n.ipvlan_mode = Some(match v {
                    "l3" => IpvlanMode::L3,
                    "l3s" => IpvlanMode::L3s,
                    "l2" => IpvlanMode::L2,
                    _ => return Err("ipvlan.mode is l3, l3s or l2".into()),
                })
            }
            "ipvlan.isolation" => {
                n.ipvlan_isolation = Some(match v {
                    "bridge" => IpvlanIsolation::Bridge,
                    "private" => IpvlanIsolation::Private,
                    "vepa" => IpvlanIsolation::Vepa,
                    _ => return Err("ipvlan.isolation is bridge, private or vepa".into()),
                })
            }
            "vlan.id" => n.vlan_id = Some(parse_vlan(v)?),
            "l2proxy" => n.l2proxy = values::parse_bool01(v)?,
            _ => return Err(format!("unknown network subkey `{sub}`")),
        }
        Ok(())
    }
}

fn parse_vlan(v: &str) -> VResult<u16> {
    match v.parse::<u16>() {
        Ok(n) if n <= 4094 => Ok(n),
        _ => Err("VLAN id must be 0..4094".into()),
    }
}

fn parse_positive(v: &str) -> VResult<u32> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive integer".into()),
    }
}
