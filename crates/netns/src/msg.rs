//! Pure builders and parsers of rtnetlink messages. No I/O: the unit tests serialize what
//! these build and check the attributes, so link kinds this kernel lacks (vlan, ipvlan) are
//! still covered.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanFlags, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use crate::error::{NetError, Result};
use crate::types::{
    ipv4_broadcast, validate_ifname, Address, IpvlanIsolation, IpvlanMode, IpvlanSpec, Link,
    LinkId, LinkOpts, MacvlanMode, MacvlanSpec, NsRef, Route, RouteSpec, Scope, VethSpec, VlanSpec,
};

/// What a RTM_SETLINK changes.
#[derive(Clone, Copy, Debug)]
pub enum LinkChange<'a> {
    Up,
    Down,
    Mtu(u32),
    Mac(crate::MacAddr),
    /// Attach to the bridge with this ifindex.
    Master(u32),
    /// Detach from its bridge.
    NoMaster,
    /// New name (the link must be given by index).
    Rename(&'a str),
    /// Move to another namespace, optionally renaming it in the same message (the link must be
    /// given by index when renaming).
    Move(NsRef<'a>, Option<&'a str>),
}

fn target(msg: &mut LinkMessage, id: LinkId<'_>) {
    match id {
        LinkId::Index(i) => msg.header.index = i,
        LinkId::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.to_string())),
    }
}

fn ns_attr(ns: NsRef<'_>) -> LinkAttribute {
    match ns {
        NsRef::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
        NsRef::Pid(p) => LinkAttribute::NetNsPid(p),
    }
}

/// A RTM_NEWLINK body with the name and the common options; `info` is the IFLA_LINKINFO.
fn new_link(
    name: &str,
    opts: &LinkOpts<'_>,
    parent: Option<u32>,
    info: Vec<LinkInfo>,
) -> Result<LinkMessage> {
    validate_ifname(name)?;
    let mut m = LinkMessage::default();
    if opts.up {
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
    }
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(p) = parent {
        m.attributes.push(LinkAttribute::Link(p));
    }
    if let Some(mtu) = opts.mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = opts.mac {
        m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(master) = opts.master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    if let Some(ns) = opts.netns {
        m.attributes.push(ns_attr(ns));
    }
    if !info.is_empty() {
        m.attributes.push(LinkAttribute::LinkInfo(info));
    }
    Ok(m)
}

/// RTM_NEWLINK for a bridge.
pub fn bridge(name: &str, opts: &LinkOpts<'_>) -> Result<LinkMessage> {
    new_link(name, opts, None, vec![LinkInfo::Kind(InfoKind::Bridge)])
}

/// RTM_NEWLINK for a veth pair; the peer's own ifinfomsg carries its name, MAC, MTU and
/// namespace (IFLA_NET_NS_FD), so the kernel creates it directly over there.
///
/// The peer cannot be created up: the kernel opens it before the pair is linked and fails with
/// ENOTCONN, so `spec.peer.up` is refused here; set it up afterwards (in its namespace).
pub fn veth(spec: &VethSpec<'_>) -> Result<LinkMessage> {
    if spec.peer.up {
        return Err(NetError::invalid(
            "veth peer option",
            spec.peer_name,
            "a veth peer cannot be created up (the kernel answers ENOTCONN): set it up after creation",
        ));
    }
    if spec.peer.master.is_some() && spec.peer.netns.is_some() {
        return Err(NetError::invalid(
            "veth peer option",
            spec.peer_name,
            "a peer created in another namespace cannot be attached to a bridge of this one",
        ));
    }
    let peer = new_link(spec.peer_name, &spec.peer, None, vec![])?;
    new_link(
        spec.name,
        &spec.opts,
        None,
        vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ],
    )
}

/// RTM_NEWLINK for a macvlan on its parent.
pub fn macvlan(spec: &MacvlanSpec<'_>) -> Result<LinkMessage> {
    let mode = match spec.mode {
        MacvlanMode::Private => MacVlanMode::Private,
        MacvlanMode::Vepa => MacVlanMode::Vepa,
        MacvlanMode::Bridge => MacVlanMode::Bridge,
        MacvlanMode::Passthru => MacVlanMode::Passthrough,
    };
    new_link(
        spec.name,
        &spec.opts,
        Some(spec.parent),
        vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
        ],
    )
}

/// RTM_NEWLINK for a VLAN device on its parent.
pub fn vlan(spec: &VlanSpec<'_>) -> Result<LinkMessage> {
    if spec.id == 0 || spec.id >= 4095 {
        return Err(NetError::invalid(
            "VLAN id",
            spec.id.to_string(),
            "expected 1..4094",
        ));
    }
    new_link(
        spec.name,
        &spec.opts,
        Some(spec.parent),
        vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(spec.id)])),
        ],
    )
}

/// RTM_NEWLINK for an ipvlan on its parent.
pub fn ipvlan(spec: &IpvlanSpec<'_>) -> Result<LinkMessage> {
    let mode = match spec.mode {
        IpvlanMode::L2 => IpVlanMode::L2,
        IpvlanMode::L3 => IpVlanMode::L3,
        IpvlanMode::L3s => IpVlanMode::L3S,
    };
    let flags = match spec.isolation {
        IpvlanIsolation::Bridge => IpVlanFlags::empty(),
        IpvlanIsolation::Private => IpVlanFlags::Private,
        IpvlanIsolation::Vepa => IpVlanFlags::Vepa,
    };
    new_link(
        spec.name,
        &spec.opts,
        Some(spec.parent),
        vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(vec![
                InfoIpVlan::Mode(mode),
                InfoIpVlan::Flags(flags),
            ])),
        ],
    )
}

/// RTM_SETLINK body.
pub fn set_link(id: LinkId<'_>, change: LinkChange<'_>) -> Result<LinkMessage> {
    let mut m = LinkMessage::default();
    let renames = matches!(change, LinkChange::Rename(_) | LinkChange::Move(_, Some(_)));
    if renames && matches!(id, LinkId::Name(_)) {
        return Err(NetError::invalid(
            "link",
            id.to_string(),
            "a rename needs the link's index",
        ));
    }
    target(&mut m, id);
    match change {
        LinkChange::Up => {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        LinkChange::Down => {
            m.header.flags = LinkFlags::empty();
            m.header.change_mask = LinkFlags::Up;
        }
        LinkChange::Mtu(mtu) => m.attributes.push(LinkAttribute::Mtu(mtu)),
        LinkChange::Mac(mac) => m.attributes.push(LinkAttribute::Address(mac.0.to_vec())),
        LinkChange::Master(i) => m.attributes.push(LinkAttribute::Controller(i)),
        LinkChange::NoMaster => m.attributes.push(LinkAttribute::Controller(0)),
        LinkChange::Rename(n) => {
            validate_ifname(n)?;
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
        }
        LinkChange::Move(ns, name) => {
            if let Some(n) = name {
                validate_ifname(n)?;
                m.attributes.push(LinkAttribute::IfName(n.to_string()));
            }
            m.attributes.push(ns_attr(ns));
        }
    }
    Ok(m)
}

/// RTM_GETLINK / RTM_DELLINK body for one link.
pub fn link_ref(id: LinkId<'_>) -> Result<LinkMessage> {
    if let LinkId::Name(n) = id {
        validate_ifname(n)?;
    }
    let mut m = LinkMessage::default();
    target(&mut m, id);
    Ok(m)
}

/// RTM_NEWADDR / RTM_DELADDR body. IPv4 gets IFA_LOCAL = IFA_ADDRESS and the broadcast
/// [`ipv4_broadcast`] computes (LXC's rule), IPv6 only IFA_ADDRESS.
pub fn address(index: u32, addr: IpAddr, prefix: u8) -> Result<AddressMessage> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetError::invalid(
            "prefix length",
            format!("{addr}/{prefix}"),
            format!("at most {max}"),
        ));
    }
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = prefix;
    m.header.scope = AddressScope::Universe;
    match addr {
        IpAddr::V4(a) => {
            m.header.family = AddressFamily::Inet;
            m.attributes.push(AddressAttribute::Local(addr));
            m.attributes.push(AddressAttribute::Address(addr));
            let b = ipv4_broadcast(a, prefix);
            if !b.is_unspecified() {
                m.attributes.push(AddressAttribute::Broadcast(b));
            }
        }
        IpAddr::V6(_) => {
            m.header.family = AddressFamily::Inet6;
            m.attributes.push(AddressAttribute::Address(addr));
        }
    }
    Ok(m)
}

fn route_addr(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

/// RTM_NEWROUTE body for the main table. Routes without a gateway are link-scoped (device and
/// host routes), routes via a gateway universe-scoped.
pub fn route(spec: &RouteSpec) -> Result<RouteMessage> {
    let fam_of = |a: &IpAddr| a.is_ipv4();
    let v4 = match (
        spec.dest.as_ref().map(|d| fam_of(&d.0)),
        spec.gateway.as_ref().map(fam_of),
    ) {
        (Some(a), Some(b)) if a != b => {
            return Err(NetError::invalid(
                "route",
                format!("{spec:?}"),
                "destination and gateway families differ",
            ))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(NetError::invalid(
                "route",
                format!("{spec:?}"),
                "needs a destination or a gateway",
            ))
        }
    };
    if spec.gateway.is_none() && spec.oif.is_none() {
        return Err(NetError::invalid(
            "route",
            format!("{spec:?}"),
            "needs a gateway or an output device",
        ));
    }
    let mut m = RouteMessage::default();
    m.header.address_family = if v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.kind = RouteType::Unicast;
    m.header.scope = if spec.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if let Some((d, p)) = spec.dest {
        let max = if v4 { 32 } else { 128 };
        if p > max {
            return Err(NetError::invalid(
                "prefix length",
                format!("{d}/{p}"),
                format!("at most {max}"),
            ));
        }
        m.header.destination_prefix_length = p;
        m.attributes
            .push(RouteAttribute::Destination(route_addr(d)));
    }
    if let Some(g) = spec.gateway {
        m.attributes.push(RouteAttribute::Gateway(route_addr(g)));
    }
    if let Some(o) = spec.oif {
        m.attributes.push(RouteAttribute::Oif(o));
    }
    Ok(m)
}

fn scope_of(s: u8) -> Scope {
    match s {
        0 => Scope::Global,
        200 => Scope::Site,
        253 => Scope::Link,
        254 => Scope::Host,
        255 => Scope::Nowhere,
        o => Scope::Other(o),
    }
}

/// A listed link.
pub fn parse_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        flags: m.header.flags.bits(),
        master: None,
        parent: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(b) => l.mac = crate::MacAddr::try_from(b.as_slice()).ok(),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Controller(v) if *v != 0 => l.master = Some(*v),
            LinkAttribute::Link(v) if *v != 0 => l.parent = Some(*v),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// A listed address (`None` for families other than IPv4/IPv6).
pub fn parse_address(m: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut broadcast = None;
    let mut label = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Broadcast(b) => broadcast = Some(*b),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    // On IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 only has IFA_ADDRESS.
    let addr = local.or(address)?;
    Some(Address {
        index: m.header.index,
        addr,
        prefix: m.header.prefix_len,
        scope: scope_of(u8::from(m.header.scope)),
        broadcast,
        label,
    })
}

/// A listed route.
pub fn parse_route(m: &RouteMessage) -> Option<Route> {
    let ip = |a: &RouteAddress| match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    };
    let mut r = Route {
        dest: None,
        prefix: m.header.destination_prefix_length,
        gateway: None,
        oif: None,
        scope: scope_of(u8::from(m.header.scope)),
        table: m.header.table as u32,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dest = ip(d),
            RouteAttribute::Gateway(g) => r.gateway = ip(g),
            RouteAttribute::Oif(o) => r.oif = Some(*o),
            RouteAttribute::Table(t) => r.table = *t,
            _ => {}
        }
    }
    Some(r)
}

const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The kernel's extended-ack text from an NLMSG_ERROR payload (`payload` = what follows the
/// error code: the original header, the original body unless capped, then TLVs).
pub fn ext_ack_message(outer_flags: u16, payload: &[u8]) -> Option<String> {
    if outer_flags & NLM_F_ACK_TLVS == 0 || payload.len() < 16 {
        return None;
    }
    let skip = if outer_flags & NLM_F_CAPPED != 0 {
        16
    } else {
        let len = u32::from_ne_bytes(payload[0..4].try_into().ok()?) as usize;
        (len + 3) & !3
    };
    let mut rest = payload.get(skip..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let v = &rest[4..len];
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            return Some(String::from_utf8_lossy(&v[..end]).into_owned());
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    None
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    //! Each message is serialized to the bytes the kernel would get and read back with a
    //! small independent NLA walker (not the library's parser), so an encoding mistake in
    //! either direction shows.
    use super::*;
    use crate::types::MacAddr;
    use netlink_packet_core::NetlinkMessage;
    use netlink_packet_route::RouteNetlinkMessage;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::fd::BorrowedFd;

    const IFLA_ADDRESS: u16 = 1;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const IFLA_LINK: u16 = 5;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_NET_NS_PID: u16 = 19;
    const IFLA_NET_NS_FD: u16 = 28;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_INFO_DATA: u16 = 2;
    const VETH_INFO_PEER: u16 = 1;

    /// The message body as sent (leaked: a test process is short-lived).
    fn wire(m: RouteNetlinkMessage) -> &'static [u8] {
        let mut nl = NetlinkMessage::from(m);
        nl.finalize();
        let mut b = vec![0; nl.buffer_len()];
        nl.serialize(&mut b);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        Box::leak(b[16..].to_vec().into_boxed_slice()) // drop nlmsghdr
    }

    /// Attributes of a buffer of NLAs: (type without flag bits, value).
    fn nlas(mut b: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = vec![];
        while b.len() >= 4 {
            let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
            let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
            assert!(len >= 4 && len <= b.len(), "bad nla length {len}");
            out.push((kind, &b[4..len]));
            b = &b[((len + 3) & !3).min(b.len())..];
        }
        out
    }

    fn get<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> &'a [u8] {
        let hits: Vec<_> = attrs.iter().filter(|(k, _)| *k == kind).collect();
        assert_eq!(
            hits.len(),
            1,
            "attribute {kind} present exactly once in {attrs:?}"
        );
        hits[0].1
    }

    fn has(attrs: &[(u16, &[u8])], kind: u16) -> bool {
        attrs.iter().any(|(k, _)| *k == kind)
    }

    fn cstr(v: &[u8]) -> &str {
        std::str::from_utf8(v.strip_suffix(&[0]).expect("NUL-terminated")).unwrap()
    }

    fn u32v(v: &[u8]) -> u32 {
        u32::from_ne_bytes(v.try_into().unwrap())
    }

    fn u16v(v: &[u8]) -> u16 {
        u16::from_ne_bytes(v.try_into().unwrap())
    }

    /// ifinfomsg: (index, flags, change) and the attributes after it.
    fn ifinfo(b: &[u8]) -> ((i32, u32, u32), Vec<(u16, &[u8])>) {
        let idx = i32::from_ne_bytes(b[4..8].try_into().unwrap());
        let flags = u32::from_ne_bytes(b[8..12].try_into().unwrap());
        let change = u32::from_ne_bytes(b[12..16].try_into().unwrap());
        ((idx, flags, change), nlas(&b[16..]))
    }

    fn linkinfo<'a>(attrs: &[(u16, &'a [u8])]) -> (String, Vec<(u16, &'a [u8])>) {
        let li = nlas(get(attrs, IFLA_LINKINFO));
        let kind = cstr(get(&li, IFLA_INFO_KIND)).to_string();
        let data = li
            .iter()
            .find(|(k, _)| *k == IFLA_INFO_DATA)
            .map(|(_, v)| nlas(v))
            .unwrap_or_default();
        (kind, data)
    }

    fn fake_fd() -> BorrowedFd<'static> {
        // SAFETY: fd 0 is only serialized as a number into a message, never used for I/O;
        // stdin is open for the whole test process.
        unsafe { BorrowedFd::borrow_raw(0) }
    }

    #[test]
    fn veth_peer_is_created_in_the_target_namespace() {
        let ns = fake_fd();
        let spec = VethSpec {
            name: "vethHOST01",
            opts: LinkOpts {
                mac: Some("fe:16:3e:00:00:01".parse().unwrap()),
                mtu: Some(1450),
                master: Some(7),
                up: true,
                netns: None,
            },
            peer_name: "eth0",
            peer: LinkOpts {
                mac: Some("00:16:3e:aa:bb:cc".parse().unwrap()),
                mtu: Some(1450),
                netns: Some(NsRef::Fd(ns)),
                master: None,
                up: false,
            },
        };
        let b = wire(RouteNetlinkMessage::NewLink(veth(&spec).unwrap()));
        let ((idx, flags, change), attrs) = ifinfo(b);
        assert_eq!(
            (idx, flags & 1, change & 1),
            (0, 1, 1),
            "host end created up"
        );
        assert_eq!(cstr(get(&attrs, IFLA_IFNAME)), "vethHOST01");
        assert_eq!(u32v(get(&attrs, IFLA_MTU)), 1450);
        assert_eq!(u32v(get(&attrs, IFLA_MASTER)), 7);
        assert_eq!(get(&attrs, IFLA_ADDRESS), &[0xfe, 0x16, 0x3e, 0, 0, 1]);
        assert!(!has(&attrs, IFLA_NET_NS_FD), "host end stays here");
        let (kind, data) = linkinfo(&attrs);
        assert_eq!(kind, "veth");
        let peer = get(&data, VETH_INFO_PEER);
        let ((pidx, pflags, _), pattrs) = ifinfo(peer);
        assert_eq!((pidx, pflags & 1), (0, 0));
        assert_eq!(cstr(get(&pattrs, IFLA_IFNAME)), "eth0");
        assert_eq!(
            get(&pattrs, IFLA_ADDRESS),
            &[0x00, 0x16, 0x3e, 0xaa, 0xbb, 0xcc]
        );
        assert_eq!(u32v(get(&pattrs, IFLA_MTU)), 1450);
        assert_eq!(
            u32v(get(&pattrs, IFLA_NET_NS_FD)),
            0,
            "the fd number travels in the peer"
        );
        assert!(!has(&pattrs, IFLA_MASTER));
    }

    #[test]
    fn bridge_message() {
        let m = bridge(
            "br-test",
            &LinkOpts {
                mtu: Some(9000),
                ..Default::default()
            },
        )
        .unwrap();
        let ((_, flags, change), attrs) = ifinfo(wire(RouteNetlinkMessage::NewLink(m)));
        assert_eq!((flags, change), (0, 0), "not brought up unless asked");
        assert_eq!(cstr(get(&attrs, IFLA_IFNAME)), "br-test");
        assert_eq!(u32v(get(&attrs, IFLA_MTU)), 9000);
        let (kind, data) = linkinfo(&attrs);
        assert_eq!(kind, "bridge");
        assert!(data.is_empty());
    }

    #[test]
    fn macvlan_modes_on_the_wire() {
        // linux/if_link.h: MACVLAN_MODE_PRIVATE 1, VEPA 2, BRIDGE 4, PASSTHRU 8.
        for (mode, want) in [
            (MacvlanMode::Private, 1u32),
            (MacvlanMode::Vepa, 2),
            (MacvlanMode::Bridge, 4),
            (MacvlanMode::Passthru, 8),
        ] {
            let spec = MacvlanSpec {
                name: "mcAbC123",
                parent: 42,
                mode,
                opts: LinkOpts {
                    netns: Some(NsRef::Pid(4242)),
                    ..Default::default()
                },
            };
            let (_, attrs) = ifinfo(wire(RouteNetlinkMessage::NewLink(macvlan(&spec).unwrap())));
            assert_eq!(u32v(get(&attrs, IFLA_LINK)), 42, "parent");
            assert_eq!(u32v(get(&attrs, IFLA_NET_NS_PID)), 4242);
            let (kind, data) = linkinfo(&attrs);
            assert_eq!(kind, "macvlan");
            assert_eq!(u32v(get(&data, 1)), want, "IFLA_MACVLAN_MODE for {mode:?}");
        }
    }

    #[test]
    fn vlan_message_carries_the_id() {
        let spec = VlanSpec {
            name: "vlan100-1",
            parent: 3,
            id: 100,
            opts: LinkOpts::default(),
        };
        let (_, attrs) = ifinfo(wire(RouteNetlinkMessage::NewLink(vlan(&spec).unwrap())));
        assert_eq!(cstr(get(&attrs, IFLA_IFNAME)), "vlan100-1");
        assert_eq!(u32v(get(&attrs, IFLA_LINK)), 3);
        let (kind, data) = linkinfo(&attrs);
        assert_eq!(kind, "vlan");
        assert_eq!(u16v(get(&data, 1)), 100, "IFLA_VLAN_ID");
        for bad in [0u16, 4095, 5000] {
            let e = vlan(&VlanSpec { id: bad, ..spec }).unwrap_err();
            assert!(e.to_string().contains("VLAN id"), "{e}");
        }
    }

    #[test]
    fn ipvlan_mode_and_isolation_on_the_wire() {
        // linux/if_link.h: IPVLAN_MODE_L2 0, L3 1, L3S 2; IPVLAN_F_PRIVATE 1, IPVLAN_F_VEPA 2.
        for (mode, iso, m, f) in [
            (IpvlanMode::L3, IpvlanIsolation::Bridge, 1u16, 0u16),
            (IpvlanMode::L2, IpvlanIsolation::Private, 0, 1),
            (IpvlanMode::L3s, IpvlanIsolation::Vepa, 2, 2),
        ] {
            let spec = IpvlanSpec {
                name: "ipv0",
                parent: 9,
                mode,
                isolation: iso,
                opts: LinkOpts::default(),
            };
            let (_, attrs) = ifinfo(wire(RouteNetlinkMessage::NewLink(ipvlan(&spec).unwrap())));
            assert_eq!(u32v(get(&attrs, IFLA_LINK)), 9);
            let (kind, data) = linkinfo(&attrs);
            assert_eq!(kind, "ipvlan");
            assert_eq!(u16v(get(&data, 1)), m, "IFLA_IPVLAN_MODE");
            assert_eq!(u16v(get(&data, 2)), f, "IFLA_IPVLAN_FLAGS");
        }
    }

    #[test]
    fn move_and_rename_in_one_message() {
        let m = set_link(
            LinkId::Index(12),
            LinkChange::Move(NsRef::Pid(77), Some("eth1")),
        )
        .unwrap();
        let ((idx, _, change), attrs) = ifinfo(wire(RouteNetlinkMessage::SetLink(m)));
        assert_eq!((idx, change), (12, 0));
        assert_eq!(cstr(get(&attrs, IFLA_IFNAME)), "eth1");
        assert_eq!(u32v(get(&attrs, IFLA_NET_NS_PID)), 77);

        let m = set_link(
            LinkId::Name("eth5"),
            LinkChange::Move(NsRef::Fd(fake_fd()), None),
        )
        .unwrap();
        let ((idx, _, _), attrs) = ifinfo(wire(RouteNetlinkMessage::SetLink(m)));
        assert_eq!(idx, 0, "by name");
        assert_eq!(cstr(get(&attrs, IFLA_IFNAME)), "eth5");
        assert!(has(&attrs, IFLA_NET_NS_FD));

        let e = set_link(LinkId::Name("eth5"), LinkChange::Rename("eth6")).unwrap_err();
        assert!(e.to_string().contains("index"), "{e}");
        let e = set_link(LinkId::Index(3), LinkChange::Rename("much-too-long-name")).unwrap_err();
        assert!(e.to_string().contains("much-too-long-name"), "{e}");
    }

    #[test]
    fn up_down_mtu_mac_master() {
        let flags = |c| {
            let ((_, f, ch), a) = ifinfo(wire(RouteNetlinkMessage::SetLink(
                set_link(LinkId::Index(4), c).unwrap(),
            )));
            (
                f,
                ch,
                a.iter().map(|(k, v)| (*k, v.to_vec())).collect::<Vec<_>>(),
            )
        };
        assert_eq!(flags(LinkChange::Up), (1, 1, vec![]));
        assert_eq!(flags(LinkChange::Down), (0, 1, vec![]));
        assert_eq!(
            flags(LinkChange::Mtu(1400)).2,
            vec![(IFLA_MTU, 1400u32.to_ne_bytes().to_vec())]
        );
        assert_eq!(
            flags(LinkChange::Master(9)).2,
            vec![(IFLA_MASTER, 9u32.to_ne_bytes().to_vec())]
        );
        assert_eq!(
            flags(LinkChange::NoMaster).2,
            vec![(IFLA_MASTER, 0u32.to_ne_bytes().to_vec())]
        );
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(
            flags(LinkChange::Mac(mac)).2,
            vec![(IFLA_ADDRESS, mac.0.to_vec())]
        );
    }

    /// ifaddrmsg: (family, prefix, scope, index) and attributes.
    fn ifaddr(b: &[u8]) -> ((u8, u8, u8, u32), Vec<(u16, &[u8])>) {
        let idx = u32::from_ne_bytes(b[4..8].try_into().unwrap());
        ((b[0], b[1], b[3], idx), nlas(&b[8..]))
    }

    #[test]
    fn ipv4_address_with_broadcast() {
        let m = address(5, "10.0.3.17".parse().unwrap(), 24).unwrap();
        let ((fam, p, scope, idx), attrs) = ifaddr(wire(RouteNetlinkMessage::NewAddress(m)));
        assert_eq!((fam, p, scope, idx), (libc::AF_INET as u8, 24, 0, 5));
        assert_eq!(get(&attrs, 2), &[10, 0, 3, 17], "IFA_LOCAL");
        assert_eq!(get(&attrs, 1), &[10, 0, 3, 17], "IFA_ADDRESS");
        assert_eq!(get(&attrs, 4), &[10, 0, 3, 255], "IFA_BROADCAST");

        let m = address(5, "10.0.3.17".parse().unwrap(), 32).unwrap();
        let (_, attrs) = ifaddr(wire(RouteNetlinkMessage::NewAddress(m)));
        assert!(!has(&attrs, 4), "no broadcast on a /32");

        let e = address(5, "10.0.3.17".parse().unwrap(), 33).unwrap_err();
        assert!(e.to_string().contains("10.0.3.17/33"), "{e}");
    }

    #[test]
    fn ipv6_address() {
        let a: Ipv6Addr = "fd42::10".parse().unwrap();
        let m = address(6, a.into(), 64).unwrap();
        let ((fam, p, _, idx), attrs) = ifaddr(wire(RouteNetlinkMessage::NewAddress(m)));
        assert_eq!((fam, p, idx), (libc::AF_INET6 as u8, 64, 6));
        assert_eq!(get(&attrs, 1), &a.octets());
        assert!(!has(&attrs, 2) && !has(&attrs, 4));
    }

    /// rtmsg: (family, dst_len, table, protocol, scope, type) and attributes.
    fn rtmsg(b: &[u8]) -> ((u8, u8, u8, u8, u8, u8), Vec<(u16, &[u8])>) {
        ((b[0], b[1], b[4], b[5], b[6], b[7]), nlas(&b[12..]))
    }

    #[test]
    fn routes_on_the_wire() {
        let gw: Ipv4Addr = "10.0.3.1".parse().unwrap();
        let m = route(&RouteSpec {
            dest: None,
            gateway: Some(gw.into()),
            oif: Some(3),
        })
        .unwrap();
        let ((fam, dl, table, proto, scope, kind), attrs) =
            rtmsg(wire(RouteNetlinkMessage::NewRoute(m)));
        assert_eq!(
            (fam, dl, table, proto, scope, kind),
            (libc::AF_INET as u8, 0, 254, 3, 0, 1)
        );
        assert_eq!(get(&attrs, 5), &gw.octets(), "RTA_GATEWAY");
        assert_eq!(u32v(get(&attrs, 4)), 3, "RTA_OIF");
        assert!(!has(&attrs, 1), "default route has no RTA_DST");

        let m = route(&RouteSpec {
            dest: Some((gw.into(), 32)),
            gateway: None,
            oif: Some(3),
        })
        .unwrap();
        let ((_, dl, _, _, scope, _), attrs) = rtmsg(wire(RouteNetlinkMessage::NewRoute(m)));
        assert_eq!((dl, scope), (32, 253), "host route is link-scoped");
        assert_eq!(get(&attrs, 1), &gw.octets());

        let g6: Ipv6Addr = "fe80::1".parse().unwrap();
        let m = route(&RouteSpec {
            dest: None,
            gateway: Some(g6.into()),
            oif: Some(2),
        })
        .unwrap();
        let ((fam, ..), attrs) = rtmsg(wire(RouteNetlinkMessage::NewRoute(m)));
        assert_eq!(fam, libc::AF_INET6 as u8);
        assert_eq!(get(&attrs, 5), &g6.octets());

        let bad = RouteSpec {
            dest: Some((gw.into(), 24)),
            gateway: Some(g6.into()),
            oif: None,
        };
        assert!(route(&bad)
            .unwrap_err()
            .to_string()
            .contains("families differ"));
        let bad = RouteSpec {
            dest: Some((gw.into(), 24)),
            gateway: None,
            oif: None,
        };
        assert!(route(&bad).is_err());
    }

    #[test]
    fn ext_ack_text_is_found() {
        // capped: original header (16 bytes), then NLMSGERR_ATTR_MSG "Unknown device type".
        let mut p = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = 4 + text.len();
        p.extend_from_slice(&(len as u16).to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(text);
        assert_eq!(
            ext_ack_message(0x300, &p).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_message(0x100, &p), None, "no TLV flag, no text");
    }

    #[test]
    fn kernel_error_message_names_everything() {
        let e = NetError::Kernel {
            op: "set master",
            target: "br-x".into(),
            errno: libc::ENODEV,
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "set master br-x: no such device (ENODEV, errno 19)"
        );
        assert!(e.is_not_found());
        let e = NetError::Kernel {
            op: "create vlan",
            target: "v0".into(),
            errno: libc::EOPNOTSUPP,
            detail: Some("Unknown device type".into()),
        };
        assert!(
            e.to_string()
                .ends_with("(EOPNOTSUPP, errno 95): Unknown device type"),
            "{e}"
        );
    }
}
