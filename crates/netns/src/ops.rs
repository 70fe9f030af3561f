//! The seam for callers' unit tests: [`NetOps`] is what the runtime needs from netlink,
//! implemented by [`Netlink`] (the kernel) and by [`RecordingNet`] (a fake that records each
//! call as one line and answers from a script), so network setup/teardown sequencing is
//! unit-testable without root.

use std::net::IpAddr;

use crate::error::{NetError, Result};
use crate::msg::LinkChange;
use crate::netlink::Netlink;
use crate::types::{
    Address, IpvlanSpec, Link, LinkId, LinkOpts, MacvlanSpec, NsRef, RouteSpec, VethSpec, VlanSpec,
};

/// The netlink operations of one namespace.
pub trait NetOps {
    fn create_bridge(&mut self, name: &str, opts: &LinkOpts<'_>) -> Result<()>;
    fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<()>;
    fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<()>;
    fn create_vlan(&mut self, spec: &VlanSpec<'_>) -> Result<()>;
    fn create_ipvlan(&mut self, spec: &IpvlanSpec<'_>) -> Result<()>;
    /// Up/down/MTU/MAC/master/rename/move (renames need an index: see [`Netlink::index_of`]).
    fn change_link(&mut self, link: LinkId<'_>, change: LinkChange<'_>) -> Result<()>;
    fn delete_link(&mut self, link: LinkId<'_>) -> Result<()>;
    fn link(&mut self, link: LinkId<'_>) -> Result<Link>;
    fn links(&mut self) -> Result<Vec<Link>>;
    fn addresses(&mut self) -> Result<Vec<Address>>;
    fn add_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()>;
    fn del_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()>;
    fn add_route(&mut self, spec: &RouteSpec) -> Result<()>;
}

impl NetOps for Netlink {
    fn create_bridge(&mut self, name: &str, opts: &LinkOpts<'_>) -> Result<()> {
        Netlink::create_bridge(self, name, opts)
    }
    fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        Netlink::create_veth(self, spec)
    }
    fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<()> {
        Netlink::create_macvlan(self, spec)
    }
    fn create_vlan(&mut self, spec: &VlanSpec<'_>) -> Result<()> {
        Netlink::create_vlan(self, spec)
    }
    fn create_ipvlan(&mut self, spec: &IpvlanSpec<'_>) -> Result<()> {
        Netlink::create_ipvlan(self, spec)
    }
    fn change_link(&mut self, link: LinkId<'_>, change: LinkChange<'_>) -> Result<()> {
        Netlink::change_link(self, link, change)
    }
    fn delete_link(&mut self, link: LinkId<'_>) -> Result<()> {
        Netlink::delete_link(self, link)
    }
    fn link(&mut self, link: LinkId<'_>) -> Result<Link> {
        Netlink::link(self, link)
    }
    fn links(&mut self) -> Result<Vec<Link>> {
        Netlink::links(self)
    }
    fn addresses(&mut self) -> Result<Vec<Address>> {
        Netlink::addresses(self)
    }
    fn add_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()> {
        Netlink::add_address(self, link, addr, prefix)
    }
    fn del_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()> {
        Netlink::del_address(self, link, addr, prefix)
    }
    fn add_route(&mut self, spec: &RouteSpec) -> Result<()> {
        Netlink::add_route(self, spec)
    }
}

/// A fake [`NetOps`]: records every call as one line (e.g. `create veth vethX mtu=1500
/// master=3 up peer eth0 netns=fd`), answers lookups from `links`/`addrs`, and fails calls whose
/// line starts with a scripted prefix with the scripted errno.
#[derive(Debug, Default)]
pub struct RecordingNet {
    pub calls: Vec<String>,
    pub links: Vec<Link>,
    pub addrs: Vec<Address>,
    failures: Vec<(String, i32)>,
}

fn opts_text(o: &LinkOpts<'_>) -> String {
    let mut s = String::new();
    if let Some(m) = o.mac {
        s.push_str(&format!(" mac={m}"));
    }
    if let Some(m) = o.mtu {
        s.push_str(&format!(" mtu={m}"));
    }
    if let Some(m) = o.master {
        s.push_str(&format!(" master={m}"));
    }
    if let Some(ns) = o.netns {
        s.push_str(&ns_text(ns));
    }
    if o.up {
        s.push_str(" up");
    }
    s
}

fn ns_text(ns: NsRef<'_>) -> String {
    match ns {
        NsRef::Fd(_) => " netns=fd".into(),
        NsRef::Pid(p) => format!(" netns=pid:{p}"),
    }
}

impl RecordingNet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls whose recorded line starts with `prefix` fail with `errno`.
    pub fn fail_on(&mut self, prefix: &str, errno: i32) -> &mut Self {
        self.failures.push((prefix.to_string(), errno));
        self
    }

    fn record(&mut self, op: &'static str, line: String) -> Result<()> {
        let failure = self
            .failures
            .iter()
            .find(|(p, _)| line.starts_with(p.as_str()))
            .map(|(_, e)| *e);
        self.calls.push(line.clone());
        match failure {
            Some(errno) => Err(NetError::Kernel {
                op,
                target: line,
                errno,
                detail: None,
            }),
            None => Ok(()),
        }
    }
}

impl NetOps for RecordingNet {
    fn create_bridge(&mut self, name: &str, opts: &LinkOpts<'_>) -> Result<()> {
        self.record(
            "create bridge",
            format!("create bridge {name}{}", opts_text(opts)),
        )
    }
    fn create_veth(&mut self, s: &VethSpec<'_>) -> Result<()> {
        let line = format!(
            "create veth {}{} peer {}{}",
            s.name,
            opts_text(&s.opts),
            s.peer_name,
            opts_text(&s.peer)
        );
        self.record("create veth", line)
    }
    fn create_macvlan(&mut self, s: &MacvlanSpec<'_>) -> Result<()> {
        let line = format!(
            "create macvlan {} parent={} mode={:?}{}",
            s.name,
            s.parent,
            s.mode,
            opts_text(&s.opts)
        );
        self.record("create macvlan", line)
    }
    fn create_vlan(&mut self, s: &VlanSpec<'_>) -> Result<()> {
        let line = format!(
            "create vlan {} parent={} id={}{}",
            s.name,
            s.parent,
            s.id,
            opts_text(&s.opts)
        );
        self.record("create vlan", line)
    }
    fn create_ipvlan(&mut self, s: &IpvlanSpec<'_>) -> Result<()> {
        let line = format!(
            "create ipvlan {} parent={} mode={:?} isolation={:?}{}",
            s.name,
            s.parent,
            s.mode,
            s.isolation,
            opts_text(&s.opts)
        );
        self.record("create ipvlan", line)
    }
    fn change_link(&mut self, link: LinkId<'_>, change: LinkChange<'_>) -> Result<()> {
        let what = match change {
            LinkChange::Up => "up".to_string(),
            LinkChange::Down => "down".to_string(),
            LinkChange::Mtu(m) => format!("mtu {m}"),
            LinkChange::Mac(m) => format!("mac {m}"),
            LinkChange::Master(m) => format!("master {m}"),
            LinkChange::NoMaster => "nomaster".to_string(),
            LinkChange::Rename(n) => format!("name {n}"),
            LinkChange::Move(ns, n) => format!(
                "move{}{}",
                ns_text(ns),
                n.map(|n| format!(" name {n}")).unwrap_or_default()
            ),
        };
        self.record("set link", format!("set {link} {what}"))
    }
    fn delete_link(&mut self, link: LinkId<'_>) -> Result<()> {
        self.record("delete link", format!("delete {link}"))
    }
    fn link(&mut self, link: LinkId<'_>) -> Result<Link> {
        self.record("get link", format!("get {link}"))?;
        self.links
            .iter()
            .find(|l| match link {
                LinkId::Name(n) => l.name == n,
                LinkId::Index(i) => l.index == i,
            })
            .cloned()
            .ok_or(NetError::Kernel {
                op: "get link",
                target: link.to_string(),
                errno: libc::ENODEV,
                detail: None,
            })
    }
    fn links(&mut self) -> Result<Vec<Link>> {
        self.record("list links", "list links".into())?;
        Ok(self.links.clone())
    }
    fn addresses(&mut self) -> Result<Vec<Address>> {
        self.record("list addresses", "list addresses".into())?;
        Ok(self.addrs.clone())
    }
    fn add_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()> {
        self.record("add address", format!("add address {addr}/{prefix} {link}"))
    }
    fn del_address(&mut self, link: LinkId<'_>, addr: IpAddr, prefix: u8) -> Result<()> {
        self.record(
            "delete address",
            format!("delete address {addr}/{prefix} {link}"),
        )
    }
    fn add_route(&mut self, s: &RouteSpec) -> Result<()> {
        let mut line = "add route".to_string();
        match s.dest {
            Some((d, p)) => line.push_str(&format!(" {d}/{p}")),
            None => line.push_str(" default"),
        }
        if let Some(g) = s.gateway {
            line.push_str(&format!(" via {g}"));
        }
        if let Some(o) = s.oif {
            line.push_str(&format!(" dev {o}"));
        }
        self.record("add route", line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MacAddr;

    /// What a caller's unit test looks like: sequencing and error handling without root.
    fn setup(net: &mut dyn NetOps) -> Result<()> {
        let br = net.link(LinkId::Name("lxcbr0"))?;
        net.create_veth(&VethSpec {
            name: "vethAAAAAA",
            opts: LinkOpts {
                master: Some(br.index),
                mtu: Some(br.mtu),
                up: true,
                ..Default::default()
            },
            peer_name: "eth0",
            peer: LinkOpts {
                mac: Some(MacAddr([0, 0x16, 0x3e, 0, 0, 1])),
                netns: Some(NsRef::Pid(7)),
                ..Default::default()
            },
        })?;
        net.change_link(LinkId::Name("eth0"), LinkChange::Up)?;
        net.add_route(&RouteSpec {
            dest: None,
            gateway: Some("10.0.3.1".parse().unwrap()),
            oif: None,
        })
    }

    fn bridge() -> Link {
        Link {
            index: 3,
            name: "lxcbr0".into(),
            kind: Some("bridge".into()),
            mac: None,
            mtu: 1500,
            flags: 1,
            master: None,
            parent: None,
        }
    }

    #[test]
    fn records_the_sequence() {
        let mut f = RecordingNet::new();
        f.links.push(bridge());
        setup(&mut f).unwrap();
        assert_eq!(
            f.calls,
            [
                "get lxcbr0",
                "create veth vethAAAAAA mtu=1500 master=3 up peer eth0 mac=00:16:3e:00:00:01 netns=pid:7",
                "set eth0 up",
                "add route default via 10.0.3.1",
            ]
        );
    }

    #[test]
    fn scripted_failures_and_missing_links() {
        let mut f = RecordingNet::new();
        let e = setup(&mut f).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "get link lxcbr0: no such device (ENODEV, errno 19)"
        );

        let mut f = RecordingNet::new();
        f.links.push(bridge());
        f.fail_on("create veth", libc::EEXIST);
        let e = setup(&mut f).unwrap_err();
        assert!(e.is_exists());
        assert_eq!(
            f.calls.len(),
            2,
            "stopped after the failing call: {:?}",
            f.calls
        );
    }
}
