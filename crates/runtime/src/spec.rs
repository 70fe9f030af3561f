//! The fully resolved description of one container start.
//!
//! `StartSpec` is what the runtime consumes. It is built from the parsed lxc.conf(5) view
//! (`lxrs-config`) by the caller, validated there, and carries only resolved values (numbers,
//! parsed addresses, absolute paths). It is serialisable because the CLI hands it to the
//! monitor process over a pipe, so the monitor never re-parses configuration.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Everything needed to start one container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StartSpec {
    /// Container name.
    pub name: String,
    /// The lxcpath the container lives in (e.g. `/var/lib/lxrs`).
    pub lxcpath: PathBuf,
    /// The container's config file (for messages and re-reads on reboot).
    pub config_path: PathBuf,
    pub rootfs: RootfsSpec,
    /// `lxc.uts.name`; defaults to the container name.
    pub hostname: String,
    pub init: InitSpec,
    pub mount_auto: MountAuto,
    /// `lxc.mount.entry` and the lines of `lxc.mount.fstab`, in order.
    pub mounts: Vec<MountEntry>,
    /// `lxc.autodev`: a tmpfs `/dev` with the standard nodes.
    pub autodev: bool,
    pub tty: TtySpec,
    pub console: ConsoleSpec,
    pub caps: CapsSpec,
    /// `lxc.no_new_privs`.
    pub no_new_privs: bool,
    /// `lxc.prlimit.*`, in file order.
    pub prlimits: Vec<Prlimit>,
    /// `lxc.sysctl.*` as (`net.ipv4.ip_forward`, `1`), in file order.
    pub sysctls: Vec<(String, String)>,
    /// `lxc.proc.*` as (`oom_score_adj`, `10`), written to `/proc/<init>/<file>`.
    pub proc_writes: Vec<(String, String)>,
    /// `lxc.arch` resolved to a personality; `None` keeps the host's.
    pub personality: Option<Personality>,
    pub signals: Signals,
    /// Network interfaces in `lxc.net.N` index order. Empty means "loopback only"
    /// unless `share_host_net` is set.
    pub net: Vec<NetInterface>,
    /// `lxc.net.0.type = none`: stay in the host network namespace.
    pub share_host_net: bool,
    /// cgroup settings in file order (`lxc.cgroup.*` as V1, `lxc.cgroup2.*` as V2), including
    /// `devices.allow` / `devices.deny` rules.
    pub cgroup: Vec<CgroupSetting>,
    /// `lxc.hook.*` commands.
    pub hooks: Vec<Hook>,
    pub log: LogSpec,
    /// `lxc.monitor.signal.pdeath`-like behaviour is fixed: the container dies with its monitor.
    /// Extra `lxc.environment.runtime` is folded into `init.env`.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl StartSpec {
    /// The spec of container `name` in `lxcpath` with LXC's defaults and nothing configured:
    /// `<lxcpath>/<name>/rootfs`, hostname = name, `/sbin/init` as root in `/` with
    /// `container=lxc`, autodev, a console, no ttys, halt SIGPWR / reboot SIGINT / stop SIGKILL,
    /// log level error, loopback-only network. Callers set what their configuration says.
    pub fn new(name: &str, lxcpath: &std::path::Path) -> StartSpec {
        StartSpec {
            name: name.to_string(),
            lxcpath: lxcpath.to_path_buf(),
            config_path: lxcpath.join(name).join("config"),
            rootfs: RootfsSpec {
                path: lxcpath.join(name).join("rootfs"),
                readonly: false,
                options: vec![],
                overlay: None,
            },
            hostname: name.to_string(),
            init: InitSpec {
                argv: vec!["/sbin/init".into()],
                uid: 0,
                gid: 0,
                groups: vec![],
                cwd: "/".into(),
                env: vec![("container".into(), "lxc".into())],
            },
            mount_auto: MountAuto::default(),
            mounts: vec![],
            autodev: true,
            tty: TtySpec {
                count: 0,
                dir: None,
                pty_max: 0,
            },
            console: ConsoleSpec {
                enabled: true,
                logfile: None,
                buffer_size: 128 * 1024,
            },
            caps: CapsSpec::default(),
            no_new_privs: false,
            prlimits: vec![],
            sysctls: vec![],
            proc_writes: vec![],
            personality: None,
            signals: Signals {
                halt: libc::SIGPWR,
                reboot: libc::SIGINT,
                stop: libc::SIGKILL,
            },
            net: vec![],
            share_host_net: false,
            cgroup: vec![],
            hooks: vec![],
            log: LogSpec {
                file: None,
                level: "error".into(),
            },
            extra: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootfsSpec {
    /// Directory holding the root filesystem (after the backend has been resolved/mounted).
    pub path: PathBuf,
    /// `lxc.rootfs.options` contains `ro`.
    pub readonly: bool,
    /// Other `lxc.rootfs.options` entries (mount options for the rootfs bind).
    pub options: Vec<String>,
    /// An overlay rootfs (`lxc.rootfs.path = overlay:<lower>:<upper>`): the container child
    /// mounts it on `path` in its own mount namespace instead of binding `path`.
    #[serde(default)]
    pub overlay: Option<OverlaySpec>,
}

/// Directories of an overlay rootfs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OverlaySpec {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InitSpec {
    /// argv of init; default `["/sbin/init"]`.
    pub argv: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    /// `lxc.init.groups`.
    pub groups: Vec<u32>,
    /// `lxc.init.cwd`; default `/`.
    pub cwd: PathBuf,
    /// The complete environment of init (`container=lxc`, `lxc.environment`, ...), in order.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct MountAuto {
    pub proc: Option<ProcMode>,
    pub sys: Option<SysMode>,
    pub cgroup: Option<CgroupMountMode>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ProcMode {
    /// rw /proc, read-only /proc/sys and /proc/sysrq-trigger.
    Mixed,
    Rw,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SysMode {
    /// ro /sys, rw /sys/devices/virtual/net.
    Mixed,
    Ro,
    Rw,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CgroupMountMode {
    Mixed,
    Ro,
    Rw,
    /// `cgroup-full:*`
    FullMixed,
    FullRo,
    FullRw,
    /// `cgroup2`
    Cgroup2,
    Cgroup2Ro,
}

/// One fstab-style mount inside the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    /// Target path; relative to the rootfs (leading `/` stripped by the builder).
    pub target: String,
    pub fstype: String,
    /// Mount options without the lxrs-only ones (`create=`, `optional`, `relative`).
    pub options: Vec<String>,
    pub create: Option<CreateKind>,
    pub optional: bool,
    /// `relative`: source is relative to the container's rootfs.
    pub relative: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CreateKind {
    Dir,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TtySpec {
    /// `lxc.tty.max`
    pub count: u32,
    /// `lxc.tty.dir` (e.g. `lxc`): nodes live in `/dev/<dir>/` and `/dev/ttyN` are symlinks.
    pub dir: Option<String>,
    /// `lxc.pty.max` (devpts `max=`); 0 = kernel default.
    pub pty_max: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsoleSpec {
    /// `lxc.console.path != none`.
    pub enabled: bool,
    /// `lxc.console.logfile`.
    pub logfile: Option<PathBuf>,
    /// Ring buffer size in bytes replayed to a console client on attach.
    pub buffer_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CapsSpec {
    /// Capability numbers to drop from the bounding set (`lxc.cap.drop`).
    pub drop: Vec<u32>,
    /// If set, keep only these capability numbers (`lxc.cap.keep`); empty = drop all.
    pub keep: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prlimit {
    /// libc RLIMIT_* number.
    pub resource: u32,
    /// `None` = RLIM_INFINITY.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Personality {
    Linux32,
    Linux64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signals {
    /// default SIGPWR
    pub halt: i32,
    /// default SIGINT
    pub reboot: i32,
    /// default SIGKILL
    pub stop: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetInterface {
    /// `lxc.net.N` index.
    pub index: u32,
    pub kind: NetKind,
    /// `link`: bridge, parent or moved device.
    pub link: Option<String>,
    /// Name inside the container; `None` = kernel's `ethN` (phys: link name).
    pub name: Option<String>,
    pub up: bool,
    pub hwaddr: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    pub ipv4_gateway: Option<Gateway<Ipv4Addr>>,
    pub ipv6: Vec<(Ipv6Addr, u8)>,
    pub ipv6_gateway: Option<Gateway<Ipv6Addr>>,
    pub veth_pair: Option<String>,
    pub macvlan_mode: Option<String>,
    pub ipvlan_mode: Option<String>,
    pub vlan_id: Option<u16>,
    pub script_up: Option<String>,
    pub script_down: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum NetKind {
    Veth,
    Macvlan,
    Ipvlan,
    Vlan,
    Phys,
    Empty,
    None,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Gateway<A> {
    Addr(A),
    /// `auto`: the primary address of the link bridge.
    Auto,
    /// `dev`: a device route.
    Dev,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupSetting {
    pub version: CgroupVersion,
    /// e.g. `memory.limit_in_bytes` / `memory.max` / `devices.allow`.
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hook {
    /// `pre-start`, `start-host`, `start`, `stop`, `post-stop`, ...
    pub kind: String,
    pub command: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogSpec {
    pub file: Option<PathBuf>,
    /// tracing level name: `trace`, `debug`, `info`, `warn`, `error`.
    pub level: String,
}
