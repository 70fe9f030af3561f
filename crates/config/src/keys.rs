//! The key table: current keys (§1.6), prefix families, legacy names (§1.7), system keys.

/// Current keys matched exactly.
pub const EXACT_KEYS: &[&str] = &[
    "lxc.include",
    "lxc.arch",
    "lxc.uts.name",
    "lxc.signal.halt",
    "lxc.signal.reboot",
    "lxc.signal.stop",
    "lxc.execute.cmd",
    "lxc.init.cmd",
    "lxc.init.cwd",
    "lxc.init.uid",
    "lxc.init.gid",
    "lxc.init.groups",
    "lxc.sched.core",
    "lxc.ephemeral",
    "lxc.net",
    "lxc.pty.max",
    "lxc.console.buffer.size",
    "lxc.console.size",
    "lxc.console.logfile",
    "lxc.console.rotate",
    "lxc.console.path",
    "lxc.tty.max",
    "lxc.tty.dir",
    "lxc.autodev",
    "lxc.autodev.tmpfs.size",
    "lxc.mount.fstab",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.rootfs.path",
    "lxc.rootfs.mount",
    "lxc.rootfs.options",
    "lxc.rootfs.managed",
    "lxc.cgroup",
    "lxc.cgroup2",
    "lxc.cgroup.dir",
    "lxc.cgroup.dir.container",
    "lxc.cgroup.dir.monitor",
    "lxc.cgroup.dir.monitor.pivot",
    "lxc.cgroup.dir.container.inner",
    "lxc.cgroup.relative",
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.namespace.clone",
    "lxc.namespace.keep",
    "lxc.time.offset.boot",
    "lxc.time.offset.monotonic",
    "lxc.prlimit",
    "lxc.sysctl",
    "lxc.proc",
    "lxc.apparmor.profile",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.selinux.context",
    "lxc.selinux.context.keyring",
    "lxc.keyring.session",
    "lxc.seccomp.profile",
    "lxc.seccomp.allow_nesting",
    "lxc.seccomp.notify.proxy",
    "lxc.seccomp.notify.cookie",
    "lxc.no_new_privs",
    "lxc.idmap",
    "lxc.hook",
    "lxc.hook.version",
    "lxc.hook.pre-start",
    "lxc.hook.pre-mount",
    "lxc.hook.mount",
    "lxc.hook.autodev",
    "lxc.hook.start-host",
    "lxc.hook.start",
    "lxc.hook.stop",
    "lxc.hook.post-stop",
    "lxc.hook.clone",
    "lxc.hook.destroy",
    "lxc.log.level",
    "lxc.log.file",
    "lxc.log.syslog",
    "lxc.start.auto",
    "lxc.start.delay",
    "lxc.start.order",
    "lxc.group",
    "lxc.monitor.unshare",
    "lxc.monitor.signal.pdeath",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
];

/// Keys whose lines accumulate (an empty value clears them).
pub const LIST_KEYS: &[&str] = &[
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.group",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.idmap",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
    "lxc.apparmor.raw",
    "lxc.init.groups",
    "lxc.namespace.clone",
    "lxc.namespace.keep",
];

/// Subkeys of `lxc.net.N.`.
pub const NET_SUBKEYS: &[&str] = &[
    "type",
    "flags",
    "link",
    "name",
    "hwaddr",
    "mtu",
    "ipv4.address",
    "ipv4.gateway",
    "ipv6.address",
    "ipv6.gateway",
    "script.up",
    "script.down",
    "veth.pair",
    "veth.mode",
    "veth.ipv4.route",
    "veth.ipv6.route",
    "veth.vlan.id",
    "veth.vlan.tagged.id",
    "veth.n_rxqueues",
    "veth.n_txqueues",
    "macvlan.mode",
    "ipvlan.mode",
    "ipvlan.isolation",
    "vlan.id",
    "l2proxy",
];

/// Net subkeys that accumulate.
pub const NET_LIST_SUBKEYS: &[&str] = &[
    "ipv4.address",
    "ipv6.address",
    "veth.ipv4.route",
    "veth.ipv6.route",
    "veth.vlan.tagged.id",
];

/// Legacy scalar renames (§1.7), excluding the network family and `lxc.limit.*`.
pub const LEGACY_RENAMES: &[(&str, &str)] = &[
    ("lxc.rootfs", "lxc.rootfs.path"),
    ("lxc.id_map", "lxc.idmap"),
    ("lxc.pts", "lxc.pty.max"),
    ("lxc.tty", "lxc.tty.max"),
    ("lxc.devttydir", "lxc.tty.dir"),
    ("lxc.aa_profile", "lxc.apparmor.profile"),
    ("lxc.aa_allow_incomplete", "lxc.apparmor.allow_incomplete"),
    ("lxc.se_context", "lxc.selinux.context"),
    ("lxc.mount", "lxc.mount.fstab"),
    ("lxc.utsname", "lxc.uts.name"),
    ("lxc.seccomp", "lxc.seccomp.profile"),
    ("lxc.console", "lxc.console.path"),
    ("lxc.haltsignal", "lxc.signal.halt"),
    ("lxc.rebootsignal", "lxc.signal.reboot"),
    ("lxc.stopsignal", "lxc.signal.stop"),
    ("lxc.syslog", "lxc.log.syslog"),
    ("lxc.loglevel", "lxc.log.level"),
    ("lxc.logfile", "lxc.log.file"),
    ("lxc.init_cmd", "lxc.init.cmd"),
    ("lxc.init_uid", "lxc.init.uid"),
    ("lxc.init_gid", "lxc.init.gid"),
    ("lxc.network", "lxc.net"),
];

/// Legacy keys without replacement (ignored with a warning; `upgrade` deletes them).
pub const LEGACY_DELETED: &[&str] = &["lxc.rootfs.backend", "lxc.pivotdir", "lxc.kmsg"];

/// Keys of the system configuration (`/etc/lxrs/lxrs.conf`).
pub const SYSTEM_KEYS: &[&str] = &[
    "lxc.lxcpath",
    "lxc.default_config",
    "lxc.cgroup.use",
    "lxc.cgroup.pattern",
    "lxc.bdev.lvm.vg",
    "lxc.bdev.lvm.thin_pool",
    "lxc.bdev.zfs.root",
    "lxc.bdev.rbd.rbdpool",
    "lxc.bdev.rbd.rbduser",
];

/// Largest valid NIC index + 1 (INT_MAX).
pub const NET_INDEX_LIMIT: u64 = i32::MAX as u64;

/// How a NIC is addressed by a network key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicRef {
    /// `lxc.net.N.*`
    Index(u32),
    /// Legacy `lxc.network.type`: starts a new NIC.
    LegacyNew,
    /// Legacy `lxc.network.<sub>`: the last NIC.
    LegacyLast,
    /// Legacy `lxc.network.<N>.<sub>`: the N-th defined NIC (0-based position).
    LegacyPosition(u32),
}

/// A key, resolved to its family. Legacy names are mapped to current ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A current exact key (possibly reached from a legacy name).
    Exact(&'static str),
    /// `lxc.net.N` (empty subkey: remove NIC N).
    NetNic(u32),
    /// A NIC subkey (canonical modern subkey).
    Net {
        nic: NicRef,
        sub: &'static str,
    },
    /// `lxc.cgroup.<k>` (v1) / `lxc.cgroup2.<k>` (v2).
    Cgroup {
        v2: bool,
        sub: String,
    },
    Prlimit(String),
    Sysctl(String),
    Proc(String),
    NamespaceShare(String),
    /// Legacy key with no replacement.
    Deleted(&'static str),
}

/// Result of resolving a key: family plus whether the spelling was a legacy one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub key: KeyRef,
    pub legacy: bool,
}

/// Why a key did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub suggestion: Option<String>,
    /// Extra detail (e.g. "index out of range").
    pub detail: Option<String>,
}

fn net_sub(sub: &str, legacy: bool) -> Option<&'static str> {
    if let Some(s) = NET_SUBKEYS.iter().find(|s| **s == sub) {
        return Some(s);
    }
    if legacy {
        return match sub {
            "ipv4" => Some("ipv4.address"),
            "ipv6" => Some("ipv6.address"),
            _ => None,
        };
    }
    None
}

fn unknown(key: &str, detail: Option<String>) -> UnknownKey {
    UnknownKey {
        suggestion: suggest(key),
        detail,
    }
}

/// All spellings a suggestion may point at.
fn all_known_keys() -> impl Iterator<Item = String> {
    EXACT_KEYS
        .iter()
        .map(|s| s.to_string())
        .chain(NET_SUBKEYS.iter().map(|s| format!("lxc.net.0.{s}")))
        .chain(
            [
                "lxc.cgroup2.memory.max",
                "lxc.prlimit.nofile",
                "lxc.sysctl.net.ipv4.ip_forward",
            ]
            .map(String::from),
        )
}

/// The closest valid key, if any is close enough.
pub fn suggest(key: &str) -> Option<String> {
    // Network keys: suggest within the NIC subkeys, keeping the user's index.
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        if let Some((idx, sub)) = rest.split_once('.') {
            if idx.bytes().all(|b| b.is_ascii_digit()) && !idx.is_empty() {
                let best = NET_SUBKEYS
                    .iter()
                    .map(|s| (strsim::jaro_winkler(sub, s), s))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((score, s)) = best {
                    if score > 0.7 {
                        return Some(format!("lxc.net.{idx}.{s}"));
                    }
                }
            }
        }
    }
    for (old, new) in LEGACY_RENAMES {
        if *old == key {
            return Some(new.to_string());
        }
    }
    let best = all_known_keys()
        .map(|k| (strsim::jaro_winkler(key, &k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, k)) if score > 0.85 => Some(k),
        _ => None,
    }
}

fn parse_index(s: &str) -> Option<Result<u32, String>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match s.parse::<u64>() {
        Ok(n) if n < NET_INDEX_LIMIT => Some(Ok(n as u32)),
        _ => Some(Err(format!(
            "network index {s} out of range (must be < {NET_INDEX_LIMIT})"
        ))),
    }
}

/// Resolve a container-config key.
pub fn resolve(key: &str) -> Result<Resolved, UnknownKey> {
    let cur = |k| {
        Ok(Resolved {
            key: k,
            legacy: false,
        })
    };
    let old = |k| {
        Ok(Resolved {
            key: k,
            legacy: true,
        })
    };
    if let Some(k) = EXACT_KEYS.iter().find(|k| **k == key) {
        return cur(KeyRef::Exact(k));
    }
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        let (idx, sub) = match rest.split_once('.') {
            Some((i, s)) => (i, Some(s)),
            None => (rest, None),
        };
        let n = match parse_index(idx) {
            Some(Ok(n)) => n,
            Some(Err(d)) => {
                return Err(UnknownKey {
                    suggestion: None,
                    detail: Some(d),
                })
            }
            None => return Err(unknown(key, None)),
        };
        return match sub {
            None => cur(KeyRef::NetNic(n)),
            Some(s) => match net_sub(s, false) {
                Some(s) => cur(KeyRef::Net {
                    nic: NicRef::Index(n),
                    sub: s,
                }),
                None => Err(unknown(key, None)),
            },
        };
    }
    if let Some(rest) = key.strip_prefix("lxc.network.") {
        if let Some((idx, sub)) = rest.split_once('.') {
            if let Some(n) = parse_index(idx) {
                let n = n.map_err(|d| UnknownKey {
                    suggestion: None,
                    detail: Some(d),
                })?;
                return match net_sub(sub, true) {
                    Some(s) => old(KeyRef::Net {
                        nic: NicRef::LegacyPosition(n),
                        sub: s,
                    }),
                    None => Err(unknown(key, None)),
                };
            }
        }
        return match net_sub(rest, true) {
            Some("type") => old(KeyRef::Net {
                nic: NicRef::LegacyNew,
                sub: "type",
            }),
            Some(s) => old(KeyRef::Net {
                nic: NicRef::LegacyLast,
                sub: s,
            }),
            None => Err(unknown(key, None)),
        };
    }
    for (prefix, v2) in [("lxc.cgroup2.", true), ("lxc.cgroup.", false)] {
        if let Some(sub) = key.strip_prefix(prefix) {
            if sub.is_empty() {
                return Err(unknown(key, Some("empty cgroup subkey".into())));
            }
            return cur(KeyRef::Cgroup {
                v2,
                sub: sub.to_string(),
            });
        }
    }
    type Family = (&'static str, fn(String) -> KeyRef, bool);
    let families: [Family; 5] = [
        ("lxc.prlimit.", KeyRef::Prlimit, false),
        ("lxc.limit.", KeyRef::Prlimit, true),
        ("lxc.sysctl.", KeyRef::Sysctl, false),
        ("lxc.proc.", KeyRef::Proc, false),
        ("lxc.namespace.share.", KeyRef::NamespaceShare, false),
    ];
    for (prefix, make, legacy) in families {
        if let Some(sub) = key.strip_prefix(prefix) {
            if sub.is_empty() {
                return Err(unknown(key, Some("empty subkey".into())));
            }
            return Ok(Resolved {
                key: make(sub.to_string()),
                legacy,
            });
        }
    }
    for (o, n) in LEGACY_RENAMES {
        if *o == key {
            let n = EXACT_KEYS
                .iter()
                .find(|k| *k == n)
                .copied()
                .unwrap_or("lxc.net");
            return old(KeyRef::Exact(n));
        }
    }
    if let Some(k) = LEGACY_DELETED.iter().find(|k| **k == key) {
        return old(KeyRef::Deleted(k));
    }
    Err(unknown(key, None))
}

/// True for keys whose value is a MAC address (`lxc.net.N.hwaddr`, `lxc.network.hwaddr`).
pub fn is_hwaddr_key(key: &str) -> bool {
    matches!(
        resolve(key),
        Ok(Resolved {
            key: KeyRef::Net { sub: "hwaddr", .. },
            ..
        })
    )
}

/// True if `key` (current spelling) accumulates values.
pub fn is_list_key(key: &str) -> bool {
    if LIST_KEYS.contains(&key) || key.starts_with("lxc.hook.") && key != "lxc.hook.version" {
        return true;
    }
    if key.starts_with("lxc.cgroup.") || key.starts_with("lxc.cgroup2.") {
        return !EXACT_KEYS.contains(&key);
    }
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        if let Some((_, sub)) = rest.split_once('.') {
            return NET_LIST_SUBKEYS.contains(&sub);
        }
    }
    false
}

/// Type-specific subkeys: `Some(type)` if `sub` only applies to NICs of that type.
pub fn net_sub_type(sub: &str) -> Option<&'static str> {
    if sub.starts_with("veth.") {
        Some("veth")
    } else if sub.starts_with("macvlan.") {
        Some("macvlan")
    } else if sub.starts_with("ipvlan.") {
        Some("ipvlan")
    } else if sub == "vlan.id" {
        Some("vlan")
    } else {
        None
    }
}
