//! The blocking rtnetlink handle: one `NETLINK_ROUTE` socket bound in one namespace.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{ErrorList, NetError, Result};
use crate::msg::{self, LinkChange};
use crate::ns::NetNs;
use crate::types::{
    Address, IpvlanSpec, Link, LinkId, LinkOpts, MacAddr, MacvlanSpec, NsRef, Route, RouteSpec,
    VethSpec, VlanSpec,
};

/// Receive buffer: the kernel fills dump replies up to 32 KiB per datagram.
const RECV_BUF: usize = 64 * 1024;

/// A netlink socket bound in one network namespace. Every call is one request and its reply,
/// blocking; no threads, no runtime, nothing alive after drop — safe to hold across fork.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

impl Netlink {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self> {
        let sock_err = |op| move |source| NetError::Socket { op, source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(sock_err("socket(NETLINK_ROUTE)"))?;
        socket.bind_auto().map_err(sock_err("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(sock_err("connect"))?;
        // Extended acks give the kernel's own words ("Unknown device type"); capped acks
        // keep error replies small. Both are best effort (old kernels lack them).
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// A socket bound in namespace `ns`: the calling thread enters it, opens the socket and
    /// switches back. The socket keeps acting on `ns` for its whole life.
    pub fn in_ns(ns: BorrowedFd<'_>) -> Result<Self> {
        let orig = NetNs::current()?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            NetError::Namespace {
                op: "setns",
                path: format!("fd {}", std::os::fd::AsRawFd::as_raw_fd(&ns)),
                source: e.into(),
            }
        })?;
        let nl = Self::new();
        orig.restore();
        nl
    }

    /// A socket in the namespace of process `pid`.
    pub fn for_pid(pid: u32) -> Result<Self> {
        let ns = NetNs::from_pid(pid)?;
        Self::in_ns(ns.as_fd())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send one request and collect its reply messages. Dumps end with NLMSG_DONE, other
    /// requests with their ACK (or NACK).
    fn request(
        &mut self,
        body: RouteNetlinkMessage,
        flags: u16,
        op: &'static str,
        target: &dyn std::fmt::Display,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut nl = NetlinkMessage::from(body);
        nl.header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        let seq = self.next_seq();
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        tracing::trace!(op, %target, seq, "netlink request");
        let sock_err = |op| move |source| NetError::Socket { op, source };
        self.socket.send(&out, 0).map_err(sock_err("send"))?;

        let proto = |reason: String| NetError::Protocol {
            op,
            target: target.to_string(),
            reason,
        };
        let mut replies = Vec::new();
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(sock_err("recv"))?;
            if n > self.buf.len() {
                return Err(proto(format!("reply of {n} bytes truncated")));
            }
            let mut off = 0;
            while off < n {
                let m: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&self.buf[off..n])
                        .map_err(|e| proto(e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Err(proto("zero-length message".into()));
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    tracing::debug!(
                        op,
                        got = m.header.sequence_number,
                        want = seq,
                        "stale netlink reply skipped"
                    );
                    continue;
                }
                let outer_flags = m.header.flags;
                match m.payload {
                    NetlinkPayload::Done(d) => {
                        if d.code != 0 {
                            return Err(NetError::Kernel {
                                op,
                                target: target.to_string(),
                                errno: -d.code,
                                detail: None,
                            });
                        }
                        return Ok(replies);
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(NetError::Kernel {
                                op,
                                target: target.to_string(),
                                errno: -code.get(),
                                detail: msg::ext_ack_message(outer_flags, &e.header),
                            }),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    NetlinkPayload::Overrun(_) => return Err(proto("overrun".into())),
                    _ => {}
                }
            }
        }
    }

    fn new_link(&mut self, m: LinkMessage, op: &'static str, name: &str) -> Result<()> {
        tracing::debug!(op, name, "create link");
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            op,
            &name,
        )?;
        Ok(())
    }

    /// Create a bridge.
    pub fn create_bridge(&mut self, name: &str, opts: &LinkOpts<'_>) -> Result<()> {
        self.new_link(msg::bridge(name, opts)?, "create bridge", name)
    }

    /// Create a veth pair in one message; the peer is born in `spec.peer.netns` with its
    /// final name, MAC and MTU.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        let target = format!("{} (peer {})", spec.name, spec.peer_name);
        self.new_link(msg::veth(spec)?, "create veth", &target)
    }

    /// Create a macvlan on `spec.parent`.
    pub fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<()> {
        self.new_link(msg::macvlan(spec)?, "create macvlan", spec.name)
    }

    /// Create a VLAN device on `spec.parent`.
    pub fn create_vlan(&mut self, spec: &VlanSpec<'_>) -> Result<()> {
        self.new_link(msg::vlan(spec)?, "create vlan", spec.name)
    }

    /// Create an ipvlan on `spec.parent`.
    pub fn create_ipvlan(&mut self, spec: &IpvlanSpec<'_>) -> Result<()> {
        self.new_link(msg::ipvlan(spec)?, "create ipvlan", spec.name)
    }

    /// Apply one [`LinkChange`] (the setters below are shorthands for it).
    pub fn change_link(&mut self, link: LinkId<'_>, change: LinkChange<'_>) -> Result<()> {
        let op = match change {
            LinkChange::Up => "set up",
            LinkChange::Down => "set down",
            LinkChange::Mtu(_) => "set mtu",
            LinkChange::Mac(_) => "set mac",
            LinkChange::Master(_) => "set master",
            LinkChange::NoMaster => "set nomaster",
            LinkChange::Rename(_) => "rename",
            LinkChange::Move(..) => "move link",
        };
        self.set_link(link, change, op)
    }

    fn set_link(&mut self, id: LinkId<'_>, change: LinkChange<'_>, op: &'static str) -> Result<()> {
        tracing::debug!(op, link = %id, ?change, "set link");
        let m = msg::set_link(id, change)?;
        self.request(RouteNetlinkMessage::SetLink(m), 0, op, &id)?;
        Ok(())
    }

    /// The ifindex of a link (one round trip for a name).
    pub fn index_of(&mut self, id: LinkId<'_>) -> Result<u32> {
        match id {
            LinkId::Index(i) => Ok(i),
            LinkId::Name(_) => Ok(self.link(id)?.index),
        }
    }

    /// Bring a link up.
    pub fn set_up<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<()> {
        self.set_link(link.into(), LinkChange::Up, "set up")
    }

    /// Bring a link down.
    pub fn set_down<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<()> {
        self.set_link(link.into(), LinkChange::Down, "set down")
    }

    /// Set the MTU.
    pub fn set_mtu<'a>(&mut self, link: impl Into<LinkId<'a>>, mtu: u32) -> Result<()> {
        self.set_link(link.into(), LinkChange::Mtu(mtu), "set mtu")
    }

    /// Set the MAC address.
    pub fn set_mac<'a>(&mut self, link: impl Into<LinkId<'a>>, mac: MacAddr) -> Result<()> {
        self.set_link(link.into(), LinkChange::Mac(mac), "set mac")
    }

    /// Attach a link to a bridge.
    pub fn set_master<'a, 'b>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        bridge: impl Into<LinkId<'b>>,
    ) -> Result<()> {
        let bridge = bridge.into();
        let b = self
            .index_of(bridge)
            .map_err(|e| context(e, "look up bridge"))?;
        self.set_link(link.into(), LinkChange::Master(b), "set master")
    }

    /// Detach a link from its bridge.
    pub fn set_nomaster<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<()> {
        self.set_link(link.into(), LinkChange::NoMaster, "set nomaster")
    }

    /// Rename a link (it must be down).
    pub fn rename<'a>(&mut self, link: impl Into<LinkId<'a>>, new_name: &str) -> Result<()> {
        let link = link.into();
        let i = self.index_of(link)?;
        self.set_link(LinkId::Index(i), LinkChange::Rename(new_name), "rename")
    }

    /// Move a link into another namespace, renamed to `new_name` in the same message
    /// (`ip link set DEV netns NS name NEW`).
    pub fn move_link<'a>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        to: NsRef<'_>,
        new_name: Option<&str>,
    ) -> Result<()> {
        let mut link = link.into();
        if new_name.is_some() {
            link = LinkId::Index(self.index_of(link)?);
        }
        self.set_link(link, LinkChange::Move(to, new_name), "move link")
    }

    /// Delete a link (deleting one end of a veth deletes both).
    pub fn delete_link<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<()> {
        let id = link.into();
        tracing::debug!(link = %id, "delete link");
        let m = msg::link_ref(id)?;
        self.request(RouteNetlinkMessage::DelLink(m), 0, "delete link", &id)?;
        Ok(())
    }

    /// Delete several links; every deletion is tried, every failure reported.
    pub fn delete_links(&mut self, links: &[LinkId<'_>]) -> Result<()> {
        let mut errs = ErrorList::new();
        for l in links {
            errs.keep(self.delete_link(*l));
        }
        errs.finish()
    }

    /// One link by name or index (the kernel's ENODEV when it does not exist: see
    /// [`NetError::is_not_found`]).
    pub fn link<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<Link> {
        let id = link.into();
        let m = msg::link_ref(id)?;
        let replies = self.request(RouteNetlinkMessage::GetLink(m), 0, "get link", &id)?;
        replies
            .iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(msg::parse_link(l)),
                _ => None,
            })
            .ok_or_else(|| NetError::Protocol {
                op: "get link",
                target: id.to_string(),
                reason: "no link in the reply".into(),
            })
    }

    /// Like [`Netlink::link`], `None` when there is no such link.
    pub fn find_link<'a>(&mut self, link: impl Into<LinkId<'a>>) -> Result<Option<Link>> {
        match self.link(link) {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace (one dump).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "list links",
            &"",
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(msg::parse_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Every IPv4 and IPv6 address of the namespace (one dump).
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            "list addresses",
            &"",
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) => msg::parse_address(a),
                _ => None,
            })
            .collect())
    }

    /// Add `addr/prefix` to a link (IPv4 with LXC's broadcast).
    pub fn add_address<'a>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<()> {
        let link = link.into();
        let i = self.index_of(link)?;
        let m = msg::address(i, addr, prefix)?;
        let target = format!("{addr}/{prefix} on {link}");
        tracing::debug!(%target, "add address");
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "add address",
            &target,
        )?;
        Ok(())
    }

    /// Remove `addr/prefix` from a link.
    pub fn del_address<'a>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<()> {
        let link = link.into();
        let i = self.index_of(link)?;
        let m = msg::address(i, addr, prefix)?;
        let target = format!("{addr}/{prefix} on {link}");
        tracing::debug!(%target, "delete address");
        self.request(
            RouteNetlinkMessage::DelAddress(m),
            0,
            "delete address",
            &target,
        )?;
        Ok(())
    }

    /// Add a route to the main table.
    pub fn add_route(&mut self, spec: &RouteSpec) -> Result<()> {
        let m = msg::route(spec)?;
        let target = route_target(spec);
        tracing::debug!(%target, "add route");
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "add route",
            &target,
        )?;
        Ok(())
    }

    /// `default via GW [dev LINK]`.
    pub fn add_default_route<'a>(
        &mut self,
        gateway: IpAddr,
        link: Option<LinkId<'a>>,
    ) -> Result<()> {
        let oif = link.map(|l| self.index_of(l)).transpose()?;
        self.add_route(&RouteSpec {
            dest: None,
            gateway: Some(gateway),
            oif,
        })
    }

    /// `default dev LINK` (`ipv4.gateway = dev`); `v6` picks the family.
    pub fn add_default_dev_route<'a>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        v6: bool,
    ) -> Result<()> {
        let oif = self.index_of(link.into())?;
        let any: IpAddr = if v6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        self.add_route(&RouteSpec {
            dest: Some((any, 0)),
            gateway: None,
            oif: Some(oif),
        })
    }

    /// `DEST/PREFIX dev LINK` (scope link).
    pub fn add_device_route<'a>(
        &mut self,
        link: impl Into<LinkId<'a>>,
        dest: IpAddr,
        prefix: u8,
    ) -> Result<()> {
        let oif = self.index_of(link.into())?;
        self.add_route(&RouteSpec {
            dest: Some((dest, prefix)),
            gateway: None,
            oif: Some(oif),
        })
    }

    /// `ADDR/32 dev LINK` (or /128): the host route LXC adds to reach a gateway outside the
    /// link's subnet.
    pub fn add_host_route<'a>(&mut self, link: impl Into<LinkId<'a>>, addr: IpAddr) -> Result<()> {
        let p = if addr.is_ipv4() { 32 } else { 128 };
        self.add_device_route(link, addr, p)
    }

    /// The main-table routes of one family.
    pub fn routes(&mut self, v6: bool) -> Result<Vec<Route>> {
        let mut m = RouteMessage::default();
        m.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let replies = self.request(
            RouteNetlinkMessage::GetRoute(m),
            NLM_F_DUMP,
            "list routes",
            &"",
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(r) => msg::parse_route(r),
                _ => None,
            })
            .filter(|r| r.table == 254)
            .collect())
    }
}

fn route_target(spec: &RouteSpec) -> String {
    let mut s = match spec.dest {
        Some((d, p)) if p == 0 && d.is_unspecified() => "default".to_string(),
        Some((d, p)) => format!("{d}/{p}"),
        None => "default".to_string(),
    };
    if let Some(g) = spec.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(o) = spec.oif {
        s.push_str(&format!(" dev ifindex {o}"));
    }
    s
}

/// Prefix the operation of a kernel error with what the caller was doing.
fn context(e: NetError, what: &'static str) -> NetError {
    match e {
        NetError::Kernel {
            target,
            errno,
            detail,
            ..
        } => NetError::Kernel {
            op: what,
            target,
            errno,
            detail,
        },
        other => other,
    }
}
