//! The host side of a container's network (LXC's `network.c`): called by the monitor after
//! init is cloned into its new network namespace and before it is released.
//!
//! Everything is done from the monitor through netlink: one socket in the host namespace (the
//! namespace lxrs runs in) and one bound in the container's (`Netlink::in_ns`). veth peers,
//! macvlan, ipvlan and vlan devices are created directly in the container namespace with their
//! final name, MAC and MTU; `phys` devices are moved in and renamed in one message. Then, inside:
//! `lo` up, addresses, `flags = up`, gateways. `script.up` runs once the host side of an
//! interface exists, `script.down` at teardown before the host side goes.
//!
//! Teardown items ([`CleanupItem`]): `Link` (a host veth end, deleted; deleting one the kernel
//! already removed with the namespace is fine), `Mount`/`File` (the netns pin, generic),
//! and `Other { backend: "net" }` ([`NetItem`]: a phys device to hand back, a down script).
//!
//! phys devices and crashes: the host is lxrs's own network namespace, not init's, so when the
//! container namespace dies a moved device would not come back here (a virtual one would be
//! destroyed). A container with `phys` interfaces therefore gets its namespace pinned (a bind
//! mount of `/proc/<init>/ns/net` under `<rundir>/netns/<lxcpath>/<name>`) before the first
//! device moves in; teardown — at stop or in the leftover cleanup after a killed monitor — opens
//! the pin, moves every phys device back under its original name and MTU, then unmounts the pin.

use crate::host::{CleanupItem, HostError};
use crate::paths::{normalize_lxcpath, RunDir};
use crate::spec::{Gateway, NetInterface, NetKind, StartSpec};
use lxrs_netns::{
    IpvlanIsolation, IpvlanMode, IpvlanSpec, LinkChange, LinkId, LinkOpts, MacAddr, MacvlanMode,
    MacvlanSpec, NetError, NetNs, NetOps, Netlink, NsRef, RouteSpec, VethSpec, VlanSpec,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

/// The `backend` of this module's [`CleanupItem::Other`] items.
pub const BACKEND: &str = "net";

/// How many random host veth names are tried before giving up.
const VETH_NAME_TRIES: usize = 16;

/// What [`CleanupItem::Other`] with backend `"net"` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum NetItem {
    /// A host device moved into the container: hand it back at teardown.
    Phys {
        /// Config key prefix, e.g. `lxc.net.2` (for messages).
        key: String,
        /// The pinned container namespace (bind mount of its nsfs file).
        pin: PathBuf,
        /// Its name and ifindex inside the container.
        ct_name: String,
        ct_index: u32,
        /// Its name, ifindex and MTU on the host before it moved.
        host_name: String,
        host_index: u32,
        mtu: u32,
    },
    /// `script.down` to run at teardown (before the interface's host side goes).
    ScriptDown {
        key: String,
        script: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
}

impl NetItem {
    fn into_cleanup(self) -> CleanupItem {
        CleanupItem::Other {
            backend: BACKEND.into(),
            data: serde_json::to_value(self).expect("NetItem serialises"),
        }
    }
}

/// Where the network namespace of container `name` is pinned:
/// `<rundir>/netns/<lxcpath, nested>/<name>`.
pub fn pin_path(rundir: &RunDir, lxcpath: &Path, name: &str) -> PathBuf {
    let rel: PathBuf = normalize_lxcpath(lxcpath)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    rundir.root().join("netns").join(rel).join(name)
}

fn other(message: String) -> HostError {
    HostError::Other {
        op: "network",
        message,
    }
}

/// Side effects besides netlink, behind a seam for unit tests.
pub trait NetSys {
    /// Bind-mount `/proc/<pid>/ns/net` on `path`, pushing the `File` and `Mount` items.
    fn pin_netns(
        &mut self,
        pid: i32,
        path: &Path,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError>;
    /// Disable IPv6 on a bridged host veth end (best effort, as LXC).
    fn disable_ipv6(&mut self, ifname: &str);
    /// Run a `script.up`/`script.down` hook; non-zero exit is an error naming `key`.
    fn run_script(
        &mut self,
        key: &str,
        script: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<(), HostError>;
}

/// The real [`NetSys`].
#[derive(Debug, Default)]
pub struct RealSys;

impl NetSys for RealSys {
    fn pin_netns(
        &mut self,
        pid: i32,
        path: &Path,
        created: &mut Vec<CleanupItem>,
    ) -> Result<(), HostError> {
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |source| HostError::Io {
                op,
                path: p,
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        }
        // A stale pin of an earlier run (its cleanup lost): unmount it first.
        let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("create netns pin", path))?;
        created.push(CleanupItem::File {
            path: path.to_path_buf(),
        });
        let src = PathBuf::from(format!("/proc/{pid}/ns/net"));
        nix::mount::mount(
            Some(&src),
            path,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| HostError::Io {
            op: "pin the container network namespace (bind mount) on",
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        created.push(CleanupItem::Mount {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn disable_ipv6(&mut self, ifname: &str) {
        if let Err(e) = lxrs_netns::disable_ipv6(None, ifname) {
            tracing::debug!("disable IPv6 on {ifname}: {e}");
        }
    }

    fn run_script(
        &mut self,
        key: &str,
        script: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<(), HostError> {
        run_script(key, script, args, env)
    }
}

/// Run a network hook as LXC does: `sh -c "exec <script> <args…>"` (the script string may carry
/// its own arguments), stdout logged at DEBUG, non-zero exit an error.
pub fn run_script(
    key: &str,
    script: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<(), HostError> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {script} \"$@\""))
        .arg("sh")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| other(format!("{key}: cannot run {script:?}: {e}")))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        tracing::debug!("{key} {script}: {line}");
    }
    if !out.status.success() {
        return Err(other(format!(
            "{key}: {script:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Set up the host side of `spec`'s network for `child_pid` (cloned with `CLONE_NEWNET`,
/// blocked). Every object is pushed onto `created` as soon as it exists.
pub fn prepare(
    spec: &StartSpec,
    child_pid: i32,
    created: &mut Vec<CleanupItem>,
) -> Result<(), HostError> {
    if spec.share_host_net {
        return Ok(());
    }
    if spec.net.is_empty() {
        // Loopback only: the child brings `lo` up itself.
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let kerr = |what: &'static str| move |e: NetError| other(format!("{what}: {e}"));
    let ct_ns = NetNs::from_pid(child_pid as u32).map_err(kerr("container network namespace"))?;
    let mut ct = Netlink::in_ns(ct_ns.as_fd()).map_err(kerr("container netlink socket"))?;
    let mut host = Netlink::new().map_err(kerr("host netlink socket"))?;
    let pin = pin_path(&RunDir::default(), &spec.lxcpath, &spec.name);
    setup(
        spec,
        child_pid,
        &mut host,
        &mut ct,
        NsRef::Fd(ct_ns.as_fd()),
        &mut RealSys,
        &pin,
        created,
    )?;
    tracing::debug!(
        "network: {} interface(s) of {} set up in {:?}",
        spec.net.len(),
        spec.name,
        t0.elapsed()
    );
    Ok(())
}

/// One interface after its creation: what the in-container configuration needs.
struct Made<'s> {
    n: &'s NetInterface,
    key: String,
    ct_name: String,
    /// The link bridge or parent on the host (for `gateway = auto`).
    host_link: Option<u32>,
}

/// The sequencing of [`prepare`], over the netlink seam.
#[allow(clippy::too_many_arguments)]
pub fn setup(
    spec: &StartSpec,
    child_pid: i32,
    host: &mut dyn NetOps,
    ct: &mut dyn NetOps,
    ct_ref: NsRef<'_>,
    sys: &mut dyn NetSys,
    pin: &Path,
    created: &mut Vec<CleanupItem>,
) -> Result<(), HostError> {
    let nics: Vec<&NetInterface> = spec
        .net
        .iter()
        .filter(|n| !matches!(n.kind, NetKind::Empty | NetKind::None))
        .collect();
    // Names: explicit ones (phys defaults to its link) first, then `ethN` for the rest in
    // index order, the lowest free N (what the kernel's `eth%d` would pick).
    let mut used: HashSet<String> = HashSet::new();
    let mut names: Vec<Option<String>> = Vec::with_capacity(nics.len());
    for n in &nics {
        let key = format!("lxc.net.{}", n.index);
        let explicit = match n.kind {
            NetKind::Phys => n.name.clone().or_else(|| n.link.clone()),
            _ => n.name.clone(),
        };
        if let Some(name) = &explicit {
            lxrs_netns::validate_ifname(name).map_err(|e| other(format!("{key}.name: {e}")))?;
            if name == "lo" {
                return Err(other(format!(
                    "{key}.name: lo is the container's loopback device"
                )));
            }
            if !used.insert(name.clone()) {
                return Err(other(format!(
                    "{key}.name: interface name {name} is used twice in the container"
                )));
            }
        }
        names.push(explicit);
    }
    if names.iter().any(Option::is_none) {
        for l in ct
            .links()
            .map_err(|e| other(format!("list container links: {e}")))?
        {
            used.insert(l.name);
        }
    }
    let mut next = 0u32;
    for name in names.iter_mut().filter(|n| n.is_none()) {
        while used.contains(&format!("eth{next}")) {
            next += 1;
        }
        let n = format!("eth{next}");
        used.insert(n.clone());
        *name = Some(n);
    }
    let mut order: Vec<usize> = (0..nics.len()).collect();
    order.sort_by_key(|&i| {
        (
            nics[i].name.is_none() && nics[i].kind != NetKind::Phys,
            nics[i].index,
        )
    });

    if nics.iter().any(|n| n.kind == NetKind::Phys) {
        sys.pin_netns(child_pid, pin, created)?;
    }

    let mut made = Vec::with_capacity(nics.len());
    for i in order {
        let n = nics[i];
        let ct_name = names[i].clone().expect("named above");
        made.push(create_one(
            spec, n, ct_name, host, ct, ct_ref, sys, pin, created,
        )?);
    }

    // Inside the container (`lo` is the child's own business).
    let mut bridge_addrs = None;
    for m in &made {
        configure_inside(m, host, ct, &mut bridge_addrs)?;
    }
    Ok(())
}

fn lookup(
    host: &mut dyn NetOps,
    key: &str,
    n: &NetInterface,
    what: &str,
) -> Result<lxrs_netns::Link, HostError> {
    let Some(link) = n.link.as_deref().filter(|l| !l.is_empty()) else {
        return Err(other(format!(
            "{key}.link: required for type {}",
            kind_name(n.kind)
        )));
    };
    host.link(LinkId::Name(link)).map_err(|e| {
        if e.is_not_found() {
            other(format!("{key}.link: {what} {link} does not exist"))
        } else {
            other(format!("{key}.link: look up {what} {link}: {e}"))
        }
    })
}

fn kind_name(k: NetKind) -> &'static str {
    match k {
        NetKind::Veth => "veth",
        NetKind::Macvlan => "macvlan",
        NetKind::Ipvlan => "ipvlan",
        NetKind::Vlan => "vlan",
        NetKind::Phys => "phys",
        NetKind::Empty => "empty",
        NetKind::None => "none",
    }
}

/// Arguments and environment of a network hook (hook version 0: `<name> net up|down <type>
/// <type args…>`; the `LXC_*` variables of version 1 are set as well).
fn hook(
    spec: &StartSpec,
    n: &NetInterface,
    updown: &str,
    host_veth: Option<&str>,
) -> (Vec<String>, Vec<(String, String)>) {
    let kind = kind_name(n.kind);
    let mut args = vec![spec.name.clone(), "net".into(), updown.into(), kind.into()];
    let mut env = vec![
        ("LXC_NAME".to_string(), spec.name.clone()),
        (
            "LXC_CONFIG_FILE".into(),
            spec.config_path.display().to_string(),
        ),
        ("LXC_HOOK_TYPE".into(), updown.into()),
        ("LXC_HOOK_SECTION".into(), "net".into()),
        ("LXC_NET_TYPE".into(), kind.into()),
    ];
    if let Some(l) = n.link.as_deref().filter(|l| !l.is_empty()) {
        args.push(l.into());
        env.push(("LXC_NET_PARENT".into(), l.into()));
    }
    if let Some(v) = host_veth {
        args.push(v.into());
        env.push(("LXC_NET_PEER".into(), v.into()));
    }
    (args, env)
}

#[allow(clippy::too_many_arguments)]
fn create_one<'s>(
    spec: &StartSpec,
    n: &'s NetInterface,
    ct_name: String,
    host: &mut dyn NetOps,
    ct: &mut dyn NetOps,
    ct_ref: NsRef<'_>,
    sys: &mut dyn NetSys,
    pin: &Path,
    created: &mut Vec<CleanupItem>,
) -> Result<Made<'s>, HostError> {
    let key = format!("lxc.net.{}", n.index);
    let mac = n.hwaddr.map(MacAddr);
    let mut host_veth = None;
    let mut host_link = None;
    match n.kind {
        NetKind::Veth => {
            let bridge = match n.link.as_deref().filter(|l| !l.is_empty()) {
                Some(_) => {
                    let b = lookup(host, &key, n, "bridge")?;
                    if b.kind.as_deref() != Some("bridge") {
                        return Err(other(format!(
                            "{key}.link: {} is not a bridge (kind {})",
                            b.name,
                            b.kind.as_deref().unwrap_or("physical")
                        )));
                    }
                    Some(b)
                }
                None => None,
            };
            host_link = bridge.as_ref().map(|b| b.index);
            let mtu = n.mtu.or(bridge.as_ref().map(|b| b.mtu));
            let mut tries = 0;
            let name = loop {
                let name = n
                    .veth_pair
                    .clone()
                    .unwrap_or_else(|| lxrs_netns::random_ifname("veth"));
                let r = host.create_veth(&VethSpec {
                    name: &name,
                    opts: LinkOpts {
                        mac: Some(MacAddr::random().with_first_octet(0xfe)),
                        mtu,
                        master: bridge.as_ref().map(|b| b.index),
                        up: true,
                        netns: None,
                    },
                    peer_name: &ct_name,
                    peer: LinkOpts {
                        mac: Some(mac.unwrap_or_else(MacAddr::random)),
                        mtu,
                        netns: Some(ct_ref),
                        ..Default::default()
                    },
                });
                match r {
                    Ok(()) => break name,
                    Err(e) if e.is_exists() && n.veth_pair.is_none() && tries < VETH_NAME_TRIES => {
                        tries += 1;
                    }
                    Err(e) if e.is_exists() && n.veth_pair.is_some() => {
                        return Err(other(format!(
                            "{key}.veth.pair: host interface {name} already exists: {e}"
                        )))
                    }
                    Err(e) => {
                        return Err(other(format!(
                            "{key}: create veth {name} (container side {ct_name}){}: {e}",
                            bridge
                                .as_ref()
                                .map(|b| format!(" on bridge {}", b.name))
                                .unwrap_or_default()
                        )))
                    }
                }
            };
            created.push(CleanupItem::Link { name: name.clone() });
            if bridge.is_some() {
                sys.disable_ipv6(&name);
            }
            host_veth = Some(name);
        }
        NetKind::Macvlan => {
            let parent = lookup(host, &key, n, "macvlan parent")?;
            host_link = Some(parent.index);
            let mode: MacvlanMode = n
                .macvlan_mode
                .as_deref()
                .unwrap_or("private")
                .parse()
                .map_err(|e| other(format!("{key}.macvlan.mode: {e}")))?;
            host.create_macvlan(&MacvlanSpec {
                name: &ct_name,
                parent: parent.index,
                mode,
                opts: LinkOpts {
                    mac,
                    mtu: n.mtu,
                    netns: Some(ct_ref),
                    ..Default::default()
                },
            })
            .map_err(|e| {
                other(format!(
                    "{key}: create macvlan {ct_name} on {}: {e}",
                    parent.name
                ))
            })?;
        }
        NetKind::Ipvlan => {
            let parent = lookup(host, &key, n, "ipvlan parent")?;
            host_link = Some(parent.index);
            let mode: IpvlanMode = n
                .ipvlan_mode
                .as_deref()
                .unwrap_or("l3")
                .parse()
                .map_err(|e| other(format!("{key}.ipvlan.mode: {e}")))?;
            host.create_ipvlan(&IpvlanSpec {
                name: &ct_name,
                parent: parent.index,
                mode,
                isolation: IpvlanIsolation::Bridge,
                opts: LinkOpts {
                    mtu: n.mtu,
                    netns: Some(ct_ref),
                    ..Default::default()
                },
            })
            .map_err(|e| {
                other(format!(
                    "{key}.type = ipvlan: cannot create ipvlan {ct_name} on {} (does this kernel have ipvlan?): {e}",
                    parent.name
                ))
            })?;
        }
        NetKind::Vlan => {
            let Some(id) = n.vlan_id else {
                return Err(other(format!("{key}.vlan.id: required for type vlan")));
            };
            let parent = lookup(host, &key, n, "vlan parent")?;
            host_link = Some(parent.index);
            host.create_vlan(&VlanSpec {
                name: &ct_name,
                parent: parent.index,
                id,
                opts: LinkOpts {
                    mac,
                    mtu: n.mtu,
                    netns: Some(ct_ref),
                    ..Default::default()
                },
            })
            .map_err(|e| {
                other(format!(
                    "{key}.type = vlan: cannot create VLAN {id} on {} (does this kernel have 802.1Q/8021q?): {e}",
                    parent.name
                ))
            })?;
        }
        NetKind::Phys => {
            let dev = lookup(host, &key, n, "phys device")?;
            host.change_link(
                LinkId::Index(dev.index),
                LinkChange::Move(ct_ref, Some(&ct_name)),
            )
            .map_err(|e| {
                other(format!(
                    "{key}.link: move phys device {} into the container as {ct_name}: {e}",
                    dev.name
                ))
            })?;
            // Where it landed (usually the same ifindex).
            let ct_index = match ct.link(LinkId::Name(&ct_name)) {
                Ok(l) => l.index,
                Err(_) => dev.index,
            };
            created.push(
                NetItem::Phys {
                    key: key.clone(),
                    pin: pin.to_path_buf(),
                    ct_name: ct_name.clone(),
                    ct_index,
                    host_name: dev.name.clone(),
                    host_index: dev.index,
                    mtu: dev.mtu,
                }
                .into_cleanup(),
            );
        }
        NetKind::Empty | NetKind::None => {}
    }
    if let Some(script) = &n.script_up {
        let (args, env) = hook(spec, n, "up", host_veth.as_deref());
        sys.run_script(&format!("{key}.script.up"), script, &args, &env)?;
    }
    if let Some(script) = &n.script_down {
        let (args, env) = hook(spec, n, "down", host_veth.as_deref());
        created.push(
            NetItem::ScriptDown {
                key: format!("{key}.script.down"),
                script: script.clone(),
                args,
                env,
            }
            .into_cleanup(),
        );
    }
    Ok(Made {
        n,
        key,
        ct_name,
        host_link,
    })
}

fn configure_inside(
    m: &Made<'_>,
    host: &mut dyn NetOps,
    ct: &mut dyn NetOps,
    bridge_addrs: &mut Option<Vec<lxrs_netns::Address>>,
) -> Result<(), HostError> {
    let (n, key, name) = (m.n, m.key.as_str(), m.ct_name.as_str());
    let idx = ct
        .link(LinkId::Name(name))
        .map_err(|e| other(format!("{key}: find {name} in the container: {e}")))?
        .index;
    let link = LinkId::Index(idx);
    if n.kind == NetKind::Phys {
        if let Some(mac) = n.hwaddr {
            ct.change_link(link, LinkChange::Mac(MacAddr(mac)))
                .map_err(|e| other(format!("{key}.hwaddr: set MAC of {name}: {e}")))?;
        }
        if let Some(mtu) = n.mtu {
            ct.change_link(link, LinkChange::Mtu(mtu))
                .map_err(|e| other(format!("{key}.mtu: set MTU of {name}: {e}")))?;
        }
    }
    for (a, p) in &n.ipv4 {
        ct.add_address(link, IpAddr::V4(*a), *p)
            .map_err(|e| other(format!("{key}.ipv4.address: {a}/{p} on {name}: {e}")))?;
    }
    for (a, p) in &n.ipv6 {
        ct.add_address(link, IpAddr::V6(*a), *p)
            .map_err(|e| other(format!("{key}.ipv6.address: {a}/{p} on {name}: {e}")))?;
    }
    if n.up {
        ct.change_link(link, LinkChange::Up)
            .map_err(|e| other(format!("{key}.flags: bring up {name}: {e}")))?;
    }
    if let Some(gw) = n.ipv4_gateway {
        let gkey = format!("{key}.ipv4.gateway");
        if !n.up {
            return Err(other(format!("{gkey}: needs {key}.flags = up")));
        }
        let gw = match gw {
            Gateway::Dev => None,
            Gateway::Addr(a) => Some(IpAddr::V4(a)),
            Gateway::Auto => Some(auto_gateway(m, host, bridge_addrs, false, &gkey)?),
        };
        if gw.is_some() && n.ipv4.is_empty() {
            return Err(other(format!("{gkey}: needs an {key}.ipv4.address")));
        }
        add_gateway(ct, idx, gw, false, name, &gkey)?;
    }
    if let Some(gw) = n.ipv6_gateway {
        let gkey = format!("{key}.ipv6.gateway");
        if !n.up {
            return Err(other(format!("{gkey}: needs {key}.flags = up")));
        }
        let gw = match gw {
            Gateway::Dev => None,
            Gateway::Addr(a) => Some(IpAddr::V6(a)),
            Gateway::Auto => Some(auto_gateway(m, host, bridge_addrs, true, &gkey)?),
        };
        add_gateway(ct, idx, gw, true, name, &gkey)?;
    }
    Ok(())
}

/// `gateway = auto`: the primary address of the interface's link bridge on the host.
fn auto_gateway(
    m: &Made<'_>,
    host: &mut dyn NetOps,
    cache: &mut Option<Vec<lxrs_netns::Address>>,
    v6: bool,
    gkey: &str,
) -> Result<IpAddr, HostError> {
    let link = m.n.link.as_deref().unwrap_or("");
    let Some(bridge) = m
        .host_link
        .filter(|_| m.n.kind != NetKind::Phys && m.n.kind != NetKind::Vlan)
    else {
        return Err(other(format!(
            "{gkey} = auto: needs a veth, macvlan or ipvlan interface with a link"
        )));
    };
    if cache.is_none() {
        *cache = Some(
            host.addresses()
                .map_err(|e| other(format!("{gkey} = auto: list host addresses: {e}")))?,
        );
    }
    cache
        .as_ref()
        .expect("filled above")
        .iter()
        .filter(|a| a.index == bridge && a.addr.is_ipv6() == v6)
        .find(|a| !v6 || a.scope == lxrs_netns::Scope::Global)
        .map(|a| a.addr)
        .ok_or_else(|| {
            other(format!(
                "{gkey} = auto: {link} has no {} address",
                if v6 { "global IPv6" } else { "IPv4" }
            ))
        })
}

/// A default route via `gw` on link `idx` (`None` = a device route). If the direct add fails,
/// a host route to the gateway is added first and the default route tried again (LXC).
fn add_gateway(
    ct: &mut dyn NetOps,
    idx: u32,
    gw: Option<IpAddr>,
    v6: bool,
    name: &str,
    gkey: &str,
) -> Result<(), HostError> {
    let any: IpAddr = if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let Some(gw) = gw else {
        return ct
            .add_route(&RouteSpec {
                dest: Some((any, 0)),
                gateway: None,
                oif: Some(idx),
            })
            .map_err(|e| other(format!("{gkey} = dev: default route on {name}: {e}")));
    };
    let route = RouteSpec {
        dest: None,
        gateway: Some(gw),
        oif: Some(idx),
    };
    if let Err(first) = ct.add_route(&route) {
        let host_route = RouteSpec {
            dest: Some((gw, if v6 { 128 } else { 32 })),
            gateway: None,
            oif: Some(idx),
        };
        ct.add_route(&host_route)
            .and_then(|()| ct.add_route(&route))
            .map_err(|e| {
                other(format!(
                    "{gkey}: default route via {gw} on {name}: {first}; with a host route to it: {e}"
                ))
            })?;
    }
    Ok(())
}

/// True for the items [`Teardown::undo`] handles: host links and `Other { backend: "net" }`.
pub fn owns(item: &CleanupItem) -> bool {
    match item {
        CleanupItem::Link { .. } => true,
        CleanupItem::Other { backend, .. } => backend == BACKEND,
        _ => false,
    }
}

/// How long [`Teardown::finish`] lets the kernel remove host links on its own before
/// deleting the rest itself.
pub const HOST_LINK_GONE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Undoes network items; opens the host netlink socket on first use.
///
/// Host ends of veth pairs ([`CleanupItem::Link`]) are collected and handled last, in
/// [`Teardown::finish`]: once the container's processes are gone its network namespace dies
/// and the kernel removes every veth pair with an end in it, in one batch, in the background;
/// the host end is unlisted within a few milliseconds. Deleting it ourselves instead would
/// make us wait for the kernel's whole unregistration (RCU barriers: about 20 ms per link
/// here), and would race with the namespace's own clean-up. So `finish` waits (bounded by
/// [`HOST_LINK_GONE_WAIT`]) for them to go, and deletes whatever is still there (a namespace
/// kept alive by someone else).
#[derive(Debug, Default)]
pub struct Teardown {
    host: Option<Netlink>,
    links: Vec<String>,
}

impl Teardown {
    pub fn new() -> Self {
        Self::default()
    }

    fn host(&mut self) -> Result<&mut Netlink, HostError> {
        if self.host.is_none() {
            self.host =
                Some(Netlink::new().map_err(|e| other(format!("host netlink socket: {e}")))?);
        }
        Ok(self.host.as_mut().expect("opened above"))
    }

    fn undo_phys(&mut self, it: &NetItem) -> Result<(), HostError> {
        let NetItem::Phys {
            key,
            pin,
            ct_name,
            host_name,
            ..
        } = it
        else {
            return Ok(());
        };
        let host_ns =
            NetNs::current().map_err(|e| other(format!("host network namespace: {e}")))?;
        let ct = NetNs::open(pin).and_then(|ns| Netlink::in_ns(ns.as_fd()));
        let host = self.host()?;
        match ct {
            Ok(mut ct) => give_back_phys(&mut ct, host, NsRef::Fd(host_ns.as_fd()), it),
            // No pin (or its namespace is gone): fine if the device is home already.
            Err(_) if host.link(LinkId::Name(host_name)).is_ok() => Ok(()),
            Err(e) => Err(other(format!(
                "{key}.link: cannot hand phys device {host_name} (in the container: {ct_name}) back: {e}"
            ))),
        }
    }

    /// Undo one item this module [`owns`].
    pub fn undo(&mut self, item: &CleanupItem) -> Result<(), HostError> {
        match item {
            CleanupItem::Link { name } => {
                self.links.push(name.clone());
                Ok(())
            }
            CleanupItem::Other { backend, data } if backend == BACKEND => {
                let it: NetItem = serde_json::from_value(data.clone())
                    .map_err(|e| other(format!("unreadable network cleanup item {data}: {e}")))?;
                match it {
                    NetItem::ScriptDown {
                        key,
                        script,
                        args,
                        env,
                    } => run_script(&key, &script, &args, &env),
                    NetItem::Phys { .. } => self.undo_phys(&it),
                }
            }
            other_item => Err(other(format!("not a network item: {other_item:?}"))),
        }
    }
}

impl Teardown {
    /// The host links collected by [`Teardown::undo`]: wait for the kernel to remove them with
    /// the container's namespace, then delete what is left. Every error is collected.
    pub fn finish(&mut self) -> Vec<HostError> {
        let mut links = std::mem::take(&mut self.links);
        if links.is_empty() {
            return Vec::new();
        }
        let host = match self.host() {
            Ok(h) => h,
            Err(e) => return vec![e],
        };
        let t0 = std::time::Instant::now();
        let spawned = DELETER_WIRED.load(std::sync::atomic::Ordering::Relaxed)
            && match spawn_link_deleter(&links) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("network: no link deleter ({e}); the kernel removes them");
                    false
                }
            };
        let left = wait_links_gone(host, &mut links, HOST_LINK_GONE_WAIT);
        let mut errors = Vec::new();
        for name in &left {
            if let Err(e) = delete_host_link(host, name) {
                errors.push(e);
            }
        }
        tracing::debug!(
            "network: host links gone in {:?} (deleter {}, {} deleted by us)",
            t0.elapsed(),
            if spawned { "spawned" } else { "none" },
            left.len()
        );
        errors
    }
}

/// argv[0] of the helper process that deletes host links ([`spawn_link_deleter`]).
pub const DELETER_TITLE: &str = "[lxrs netdel]";

/// Whether this binary answers to [`DELETER_TITLE`] (its `main` called
/// [`run_if_link_deleter`]); another program using this library (a test binary) is never
/// re-executed as the deleter, and leaves host links to the kernel.
static DELETER_WIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Delete the host links `names` from a detached helper: this binary re-executed with the
/// title [`DELETER_TITLE`] ([`run_if_link_deleter`]), double-forked (nobody reaps it but
/// init), its descriptors closed.
///
/// A delete unlists the link at once, but the request only returns after the kernel's RCU
/// barrier (about 20 ms here); so does moving it to another namespace. The helper waits for
/// that instead of us: [`Teardown::finish`] only polls until the links are unlisted. Leaving
/// them to the dead namespace's own clean-up instead is as slow back to back: the kernel
/// cleans namespaces one batch at a time, each ending in an RCU barrier, so a stop right
/// after a start waited 12-22 ms for the previous stop's clean-up.
pub fn spawn_link_deleter(names: &[String]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(DELETER_TITLE)
        .args(names)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (close_range, setsid, fork, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            // Nothing of the caller's (client connections above all: their EOF means "the
            // monitor is gone") may live on in the helper.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::setsid();
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = cmd.spawn()?;
    child.wait()?;
    Ok(())
}

/// The link deleter's `main` ([`spawn_link_deleter`]) when this process is one: delete each
/// link named in the arguments, then leave the shared monitor cgroup it was born in and remove
/// that if no monitor is left in it (the stop that saw the last monitor go could not, with
/// the helper inside). `None` for any other process. Call it first thing in `main` (before
/// the monitor's entry point: the monitor spawns the deleter).
pub fn run_if_link_deleter() -> Option<i32> {
    DELETER_WIRED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut args = std::env::args_os();
    if args.next()? != DELETER_TITLE {
        return None;
    }
    let mut code = 0;
    match Netlink::new() {
        Ok(mut host) => {
            for name in args.filter_map(|a| a.into_string().ok()) {
                if delete_host_link(&mut host, &name).is_err() {
                    code = 1;
                }
            }
        }
        Err(_) => code = 1,
    }
    crate::cgroups::leave_monitor_cgroup();
    crate::cgroups::prune_monitor_cgroup(None);
    Some(code)
}

/// Poll (backing off from 200 µs to 5 ms) until none of `names` exists on the host or
/// `within` has passed; returns the names still there. A lookup error other than "no such
/// device" counts as still there.
pub fn wait_links_gone(
    host: &mut dyn NetOps,
    names: &mut Vec<String>,
    within: std::time::Duration,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + within;
    let mut step = std::time::Duration::from_micros(200);
    loop {
        names.retain(|n| match host.link(LinkId::Name(n)) {
            Ok(_) => true,
            Err(e) => !e.is_not_found(),
        });
        if names.is_empty() || std::time::Instant::now() >= deadline {
            return std::mem::take(names);
        }
        std::thread::sleep(step);
        step = (step * 2).min(std::time::Duration::from_millis(5));
    }
}

/// Delete a host link by name; already gone (removed with its namespace) is success.
pub fn delete_host_link(host: &mut dyn NetOps, name: &str) -> Result<(), HostError> {
    match host.delete_link(LinkId::Name(name)) {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(other(format!("delete host link {name}: {e}"))),
    }
}

/// Move a phys device back from the container namespace (`ct`) to the host (`host_ns`) under
/// its original name, then restore its MTU.
pub fn give_back_phys(
    ct: &mut dyn NetOps,
    host: &mut dyn NetOps,
    host_ns: NsRef<'_>,
    item: &NetItem,
) -> Result<(), HostError> {
    let NetItem::Phys {
        key,
        ct_name,
        ct_index,
        host_name,
        mtu,
        ..
    } = item
    else {
        return Ok(());
    };
    let found = match ct.link(LinkId::Name(ct_name)) {
        Ok(l) => Some(l),
        Err(_) => ct.link(LinkId::Index(*ct_index)).ok(),
    };
    let Some(dev) = found else {
        if host.link(LinkId::Name(host_name)).is_ok() {
            return Ok(());
        }
        return Err(other(format!(
            "{key}.link: phys device {host_name} is neither in the container (as {ct_name}) nor on the host"
        )));
    };
    let _ = ct.change_link(LinkId::Index(dev.index), LinkChange::Down);
    ct.change_link(
        LinkId::Index(dev.index),
        LinkChange::Move(host_ns, Some(host_name)),
    )
    .map_err(|e| {
        other(format!(
            "{key}.link: move phys device {} back to the host as {host_name}: {e}",
            dev.name
        ))
    })?;
    if dev.mtu != *mtu {
        host.change_link(LinkId::Name(host_name), LinkChange::Mtu(*mtu))
            .map_err(|e| other(format!("{key}.link: restore MTU {mtu} of {host_name}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::*;
    use lxrs_netns::{Link, RecordingNet};

    fn base_spec() -> StartSpec {
        let mut s = StartSpec::new("c1", std::path::Path::new("/nonexistent-lxrs/lxc"));
        s.init.env = vec![];
        s.console = ConsoleSpec {
            enabled: false,
            logfile: None,
            buffer_size: 0,
        };
        s.log.level = "warn".into();
        s
    }

    fn nic(index: u32, kind: NetKind, link: Option<&str>, name: Option<&str>) -> NetInterface {
        NetInterface {
            index,
            kind,
            link: link.map(Into::into),
            name: name.map(Into::into),
            up: true,
            hwaddr: None,
            mtu: None,
            ipv4: vec![],
            ipv4_gateway: None,
            ipv6: vec![],
            ipv6_gateway: None,
            veth_pair: None,
            macvlan_mode: None,
            ipvlan_mode: None,
            vlan_id: None,
            script_up: None,
            script_down: None,
        }
    }

    fn link(index: u32, name: &str, kind: Option<&str>, mtu: u32) -> Link {
        Link {
            index,
            name: name.into(),
            kind: kind.map(Into::into),
            mac: None,
            mtu,
            flags: 0,
            master: None,
            parent: None,
        }
    }

    /// A host with bridges lxcbr0 (3, MTU 1450) and br1 (4) and a device eth2 (5, MTU 1400);
    /// a container namespace that knows the names the setup creates.
    fn nets() -> (RecordingNet, RecordingNet) {
        let mut host = RecordingNet::new();
        host.links = vec![
            link(1, "lo", None, 65536),
            link(3, "lxcbr0", Some("bridge"), 1450),
            link(4, "br1", Some("bridge"), 1500),
            link(5, "eth2", Some("veth"), 1400),
        ];
        host.addrs = vec![lxrs_netns::Address {
            index: 3,
            addr: "10.0.3.1".parse().unwrap(),
            prefix: 24,
            scope: lxrs_netns::Scope::Global,
            broadcast: None,
            label: None,
        }];
        let mut ct = RecordingNet::new();
        ct.links = vec![
            link(1, "lo", None, 65536),
            link(10, "eth0", Some("veth"), 1450),
            link(11, "virt0", Some("veth"), 1500),
            link(12, "eth1", None, 1400),
            link(13, "mv0", Some("macvlan"), 1500),
        ];
        (host, ct)
    }

    #[derive(Default)]
    struct FakeSys {
        calls: Vec<String>,
        fail_script: bool,
    }

    impl NetSys for FakeSys {
        fn pin_netns(
            &mut self,
            pid: i32,
            path: &Path,
            created: &mut Vec<CleanupItem>,
        ) -> Result<(), HostError> {
            self.calls.push(format!("pin {pid} {}", path.display()));
            created.push(CleanupItem::File { path: path.into() });
            created.push(CleanupItem::Mount { path: path.into() });
            Ok(())
        }
        fn disable_ipv6(&mut self, ifname: &str) {
            self.calls.push(format!("disable_ipv6 {ifname}"));
        }
        fn run_script(
            &mut self,
            key: &str,
            script: &str,
            args: &[String],
            env: &[(String, String)],
        ) -> Result<(), HostError> {
            let peer = env
                .iter()
                .find(|(k, _)| k == "LXC_NET_PEER")
                .map(|(_, v)| v.as_str());
            self.calls.push(format!(
                "script {key} {script} {} peer={peer:?}",
                args.join(" ")
            ));
            if self.fail_script {
                return Err(other(format!("{key}: {script:?} failed (exit status: 1)")));
            }
            Ok(())
        }
    }

    fn run(
        spec: &StartSpec,
        host: &mut RecordingNet,
        ct: &mut RecordingNet,
        sys: &mut FakeSys,
    ) -> (Result<(), HostError>, Vec<CleanupItem>) {
        let mut created = Vec::new();
        let r = setup(
            spec,
            7,
            host,
            ct,
            NsRef::Pid(7),
            sys,
            Path::new("/run/x/netns/lxc/c1"),
            &mut created,
        );
        (r, created)
    }

    /// The walkthrough's container: eth0 veth on lxcbr0 with a fixed MAC, virt0 veth on br1,
    /// eth1 = the host's eth2 moved in.
    #[test]
    fn walkthrough_three_interfaces() {
        let mut spec = base_spec();
        let mut eth0 = nic(0, NetKind::Veth, Some("lxcbr0"), Some("eth0"));
        eth0.hwaddr = Some([0x00, 0x16, 0x3e, 0x3a, 0xf1, 0xc1]);
        let mut virt0 = nic(1, NetKind::Veth, Some("br1"), Some("virt0"));
        virt0.up = false;
        let eth1 = nic(2, NetKind::Phys, Some("eth2"), Some("eth1"));
        spec.net = vec![eth0, virt0, eth1];
        let (mut host, mut ct) = nets();
        let mut sys = FakeSys::default();
        let (r, created) = run(&spec, &mut host, &mut ct, &mut sys);
        r.unwrap();

        assert_eq!(host.calls.len(), 6, "{:#?}", host.calls);
        assert_eq!(host.calls[0], "get lxcbr0");
        let c = &host.calls[1];
        assert!(c.starts_with("create veth veth"), "{c}");
        assert!(c.contains(" mac=fe:"), "host end MAC starts with fe: {c}");
        assert!(
            c.contains(
                " mtu=1450 master=3 up peer eth0 mac=00:16:3e:3a:f1:c1 mtu=1450 netns=pid:7"
            ),
            "{c}"
        );
        let veth0 = c.split(' ').nth(2).unwrap().to_string();
        assert_eq!(veth0.len(), 10);
        assert_eq!(host.calls[2], "get br1");
        assert!(
            host.calls[3].contains(" mtu=1500 master=4 up peer virt0 mac="),
            "{}",
            host.calls[3]
        );
        let virt_mac = host.calls[3].split("peer virt0 mac=").nth(1).unwrap();
        assert!(!virt_mac.starts_with("00:16:3e:3a"), "random MAC for virt0");
        assert_eq!(host.calls[4], "get eth2");
        assert_eq!(host.calls[5], "set ifindex 5 move netns=pid:7 name eth1");

        assert_eq!(
            ct.calls,
            [
                "get eth1",
                "get eth0",
                "set ifindex 10 up",
                "get virt0",
                "get eth1",
                "set ifindex 12 up",
            ]
        );
        assert_eq!(
            sys.calls[0], "pin 7 /run/x/netns/lxc/c1",
            "pinned before phys moves"
        );
        assert!(sys.calls[1].starts_with("disable_ipv6 veth"));

        // Teardown order (reverse): phys back, host veth ends, then the pin.
        let kinds: Vec<String> = created
            .iter()
            .map(|i| match i {
                CleanupItem::Link { name } => format!("link {}", &name[..4]),
                CleanupItem::File { .. } => "file".into(),
                CleanupItem::Mount { .. } => "mount".into(),
                CleanupItem::Other { data, .. } => {
                    format!("net {}", data["what"].as_str().unwrap())
                }
                CleanupItem::Cgroup { .. } => "cgroup".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            ["file", "mount", "link veth", "link veth", "net phys"]
        );
        let CleanupItem::Other { data, .. } = &created[4] else {
            panic!()
        };
        let item: NetItem = serde_json::from_value(data.clone()).unwrap();
        assert_eq!(
            item,
            NetItem::Phys {
                key: "lxc.net.2".into(),
                pin: "/run/x/netns/lxc/c1".into(),
                ct_name: "eth1".into(),
                ct_index: 12,
                host_name: "eth2".into(),
                host_index: 5,
                mtu: 1400,
            }
        );
        assert!(owns(&created[4]) && owns(&created[2]) && !owns(&created[0]));
    }

    #[test]
    fn unnamed_interfaces_get_the_lowest_free_eth_numbers_after_named_ones() {
        let mut spec = base_spec();
        spec.net = vec![
            nic(0, NetKind::Veth, Some("lxcbr0"), None),
            nic(1, NetKind::Veth, Some("lxcbr0"), Some("eth0")),
            nic(5, NetKind::Macvlan, Some("eth2"), None),
        ];
        let (mut host, mut ct) = nets();
        // A fresh namespace: only lo. (The fake does not add what it creates, so the inside
        // configuration then fails to find eth0; the names are what this test is about.)
        ct.links.truncate(1);
        let (r, _) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        assert!(r.is_err());
        assert_eq!(ct.calls[0], "list links");
        let creates: Vec<&String> = host
            .calls
            .iter()
            .filter(|c| c.starts_with("create"))
            .collect();
        assert!(
            creates[0].contains("peer eth0 "),
            "explicit name first: {creates:?}"
        );
        assert!(creates[1].contains("peer eth1 "), "{creates:?}");
        assert!(
            creates[2].starts_with("create macvlan eth2 parent=5 mode=Private netns=pid:7"),
            "{creates:?}"
        );
    }

    #[test]
    fn missing_bridge_names_it_and_the_key() {
        let mut spec = base_spec();
        spec.net = vec![
            nic(0, NetKind::Veth, Some("lxcbr0"), Some("eth0")),
            nic(1, NetKind::Veth, Some("virbr0"), Some("eth1")),
        ];
        let (mut host, mut ct) = nets();
        let (r, created) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        let e = r.unwrap_err().to_string();
        assert_eq!(e, "network: lxc.net.1.link: bridge virbr0 does not exist");
        // What exists already is in `created` for the caller's teardown.
        assert_eq!(created.len(), 1);
        assert!(matches!(&created[0], CleanupItem::Link { name } if name.starts_with("veth")));

        let mut spec = base_spec();
        spec.net = vec![nic(3, NetKind::Phys, Some("eth9"), None)];
        let (mut host, mut ct) = nets();
        let (r, _) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        assert_eq!(
            r.unwrap_err().to_string(),
            "network: lxc.net.3.link: phys device eth9 does not exist"
        );
    }

    #[test]
    fn vlan_and_ipvlan_refusals_are_clear() {
        let mut spec = base_spec();
        let mut v = nic(0, NetKind::Vlan, Some("eth2"), Some("eth0"));
        v.vlan_id = Some(100);
        spec.net = vec![v];
        let (mut host, mut ct) = nets();
        host.fail_on("create vlan", libc::EOPNOTSUPP);
        let (r, _) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        let e = r.unwrap_err().to_string();
        assert!(
            e.starts_with("network: lxc.net.0.type = vlan: cannot create VLAN 100 on eth2"),
            "{e}"
        );
        spec.net[0].vlan_id = None;
        let (r, _) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        assert_eq!(
            r.unwrap_err().to_string(),
            "network: lxc.net.0.vlan.id: required for type vlan"
        );
    }

    #[test]
    fn addresses_and_gateways() {
        let mut spec = base_spec();
        let mut n = nic(0, NetKind::Veth, Some("lxcbr0"), Some("eth0"));
        n.ipv4 = vec![("10.0.3.50".parse().unwrap(), 24)];
        n.ipv4_gateway = Some(Gateway::Auto);
        n.ipv6 = vec![("fd00::50".parse().unwrap(), 64)];
        n.ipv6_gateway = Some(Gateway::Addr("fd00::1".parse().unwrap()));
        spec.net = vec![n];
        let (mut host, mut ct) = nets();
        // The direct IPv6 default route fails: LXC adds a host route first and retries.
        ct.fail_on("add route default via fd00::1 dev 10", libc::ENETUNREACH);
        let (r, _) = run(&spec, &mut host, &mut ct, &mut FakeSys::default());
        // The retry fails too in this fake (same line), and the error says both.
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("lxc.net.0.ipv6.gateway: default route via fd00::1 on eth0"),
            "{e}"
        );
        assert_eq!(
            &ct.calls[1..],
            [
                "add address 10.0.3.50/24 ifindex 10",
                "add address fd00::50/64 ifindex 10",
                "set ifindex 10 up",
                "add route default via 10.0.3.1 dev 10",
                "add route default via fd00::1 dev 10",
                "add route fd00::1/128 dev 10",
                "add route default via fd00::1 dev 10",
            ]
        );
        assert!(
            host.calls.contains(&"list addresses".to_string()),
            "auto reads the bridge"
        );

        // gateway = dev; gateway without flags=up.
        let mut spec = base_spec();
        let mut n = nic(0, NetKind::Veth, Some("lxcbr0"), Some("eth0"));
        n.ipv4 = vec![("10.0.3.50".parse().unwrap(), 24)];
        n.ipv4_gateway = Some(Gateway::Dev);
        spec.net = vec![n.clone()];
        let (mut host, mut ct) = nets();
        run(&spec, &mut host, &mut ct, &mut FakeSys::default())
            .0
            .unwrap();
        assert_eq!(ct.calls.last().unwrap(), "add route 0.0.0.0/0 dev 10");
        n.up = false;
        spec.net = vec![n];
        let (mut host, mut ct) = nets();
        let e = run(&spec, &mut host, &mut ct, &mut FakeSys::default())
            .0
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "network: lxc.net.0.ipv4.gateway: needs lxc.net.0.flags = up"
        );
    }

    #[test]
    fn scripts_get_lxc_arguments_and_down_is_recorded() {
        let mut spec = base_spec();
        let mut n = nic(0, NetKind::Veth, Some("lxcbr0"), Some("eth0"));
        n.veth_pair = Some("vethc1".into());
        n.script_up = Some("/usr/local/bin/up".into());
        n.script_down = Some("/usr/local/bin/down".into());
        let mut m = nic(1, NetKind::Macvlan, Some("eth2"), Some("mv0"));
        m.script_up = Some("/bin/mvup".into());
        spec.net = vec![n, m];
        let (mut host, mut ct) = nets();
        let mut sys = FakeSys::default();
        let (r, created) = run(&spec, &mut host, &mut ct, &mut sys);
        r.unwrap();
        assert!(host.calls[1].starts_with("create veth vethc1 "));
        assert_eq!(
            sys.calls[1],
            "script lxc.net.0.script.up /usr/local/bin/up c1 net up veth lxcbr0 vethc1 peer=Some(\"vethc1\")"
        );
        assert_eq!(
            sys.calls[2],
            "script lxc.net.1.script.up /bin/mvup c1 net up macvlan eth2 peer=None"
        );
        let CleanupItem::Other { data, .. } = &created[1] else {
            panic!("{created:?}")
        };
        let NetItem::ScriptDown { key, args, .. } = serde_json::from_value(data.clone()).unwrap()
        else {
            panic!()
        };
        assert_eq!(key, "lxc.net.0.script.down");
        assert_eq!(args, ["c1", "net", "down", "veth", "lxcbr0", "vethc1"]);

        // A failing up script aborts the start, after its interface was recorded.
        let (mut host, mut ct) = nets();
        let mut sys = FakeSys {
            fail_script: true,
            ..Default::default()
        };
        let (r, created) = run(&spec, &mut host, &mut ct, &mut sys);
        assert!(r.unwrap_err().to_string().contains("lxc.net.0.script.up"));
        assert_eq!(
            created,
            [CleanupItem::Link {
                name: "vethc1".into()
            }]
        );
    }

    #[test]
    fn phys_goes_back_under_its_name_and_mtu() {
        let item = NetItem::Phys {
            key: "lxc.net.2".into(),
            pin: "/run/x/netns/lxc/c1".into(),
            ct_name: "eth1".into(),
            ct_index: 12,
            host_name: "eth2".into(),
            host_index: 5,
            mtu: 1400,
        };
        let (mut host, mut ct) = nets();
        ct.links[3].mtu = 9000;
        give_back_phys(&mut ct, &mut host, NsRef::Pid(1), &item).unwrap();
        assert_eq!(
            ct.calls,
            [
                "get eth1",
                "set ifindex 12 down",
                "set ifindex 12 move netns=pid:1 name eth2"
            ]
        );
        assert_eq!(host.calls, ["set eth2 mtu 1400"]);

        // Already home (the kernel gave it back): nothing to do.
        let (mut host, mut ct) = nets();
        ct.links.retain(|l| l.name != "eth1");
        give_back_phys(&mut ct, &mut host, NsRef::Pid(1), &item).unwrap();
        // Lost: an error naming it and the key.
        host.links.retain(|l| l.name != "eth2");
        let e = give_back_phys(&mut ct, &mut host, NsRef::Pid(1), &item).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network: lxc.net.2.link: phys device eth2 is neither in the container (as eth1) nor on the host"
        );
    }

    #[test]
    fn deleting_a_host_link_the_kernel_removed_is_fine() {
        let mut host = RecordingNet::new();
        host.fail_on("delete vethA", libc::ENODEV);
        host.fail_on("delete vethB", libc::EPERM);
        delete_host_link(&mut host, "vethA").unwrap();
        let e = delete_host_link(&mut host, "vethB").unwrap_err();
        assert!(e.to_string().contains("delete host link vethB"), "{e}");
    }

    #[test]
    fn host_links_are_left_to_the_kernel_within_a_bound() {
        let (mut host, _) = nets();
        // eth2 stays (a namespace someone else keeps alive); vethGone is already gone.
        let mut names = vec!["vethGone".to_string(), "eth2".to_string()];
        let t0 = std::time::Instant::now();
        let left = wait_links_gone(&mut host, &mut names, std::time::Duration::from_millis(30));
        assert_eq!(left, ["eth2"]);
        assert!(t0.elapsed() >= std::time::Duration::from_millis(30));
        // Only lookups: nothing deleted while waiting.
        assert!(
            host.calls.iter().all(|c| c.starts_with("get ")),
            "{:?}",
            host.calls
        );
        // A lookup failure other than "no such device" is not taken for "gone".
        let mut names = vec!["eth2".to_string()];
        host.fail_on("get eth2", libc::EPERM);
        let left = wait_links_gone(&mut host, &mut names, std::time::Duration::from_millis(1));
        assert_eq!(left, ["eth2"]);
    }

    #[test]
    fn pin_path_nests_the_lxcpath() {
        let rd = RunDir::new("/run/x");
        assert_eq!(
            pin_path(&rd, Path::new("/nonexistent-lxrs/a/../lxc/"), "c1"),
            Path::new("/run/x/netns/nonexistent-lxrs/lxc/c1")
        );
    }
}
