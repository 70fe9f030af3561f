//! Plain data: what callers pass in (specs) and what listing returns.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;
use std::str::FromStr;

use rand::Rng;

use crate::error::{NetError, Result};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Check an interface name the way the kernel's `dev_valid_name` does.
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = |reason: &str| Err(NetError::invalid("interface name", name, reason));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > IFNAME_MAX {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("contains '/', ':' or whitespace");
    }
    Ok(())
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A random locally administered unicast address (what `lxc.net.N.hwaddr = xx:..` expands
    /// to, minus any fixed prefix).
    pub fn random() -> Self {
        let mut b: [u8; 6] = rand::thread_rng().gen();
        b[0] = (b[0] & 0xfe) | 0x02;
        MacAddr(b)
    }

    /// This address with its first octet replaced: LXC forces `0xfe` on the host end of a veth
    /// so that a bridge, which takes the lowest port MAC, keeps the host's own address.
    pub fn with_first_octet(mut self, octet: u8) -> Self {
        self.0[0] = octet;
        self
    }

    /// The octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            NetError::invalid(
                "MAC address",
                s,
                "expected six hex octets like 00:16:3e:aa:bb:cc",
            )
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl TryFrom<&[u8]> for MacAddr {
    type Error = ();
    fn try_from(b: &[u8]) -> std::result::Result<Self, ()> {
        <[u8; 6]>::try_from(b).map(MacAddr).map_err(|_| ())
    }
}

/// A link named by name or by index (indexes are per namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkId<'a> {
    Name(&'a str),
    Index(u32),
}

impl<'a> From<&'a str> for LinkId<'a> {
    fn from(s: &'a str) -> Self {
        LinkId::Name(s)
    }
}

impl<'a> From<&'a String> for LinkId<'a> {
    fn from(s: &'a String) -> Self {
        LinkId::Name(s)
    }
}

impl From<u32> for LinkId<'_> {
    fn from(i: u32) -> Self {
        LinkId::Index(i)
    }
}

impl fmt::Display for LinkId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkId::Name(n) => f.write_str(n),
            LinkId::Index(i) => write!(f, "ifindex {i}"),
        }
    }
}

/// A network namespace to move or create a link into.
#[derive(Clone, Copy, Debug)]
pub enum NsRef<'a> {
    /// An open `/proc/<pid>/ns/net` (or bind mount) file (IFLA_NET_NS_FD).
    Fd(BorrowedFd<'a>),
    /// The namespace of a process (IFLA_NET_NS_PID).
    Pid(u32),
}

impl fmt::Display for NsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::fd::AsRawFd;
        match self {
            NsRef::Fd(fd) => write!(f, "netns fd {}", fd.as_raw_fd()),
            NsRef::Pid(p) => write!(f, "netns of pid {p}"),
        }
    }
}

/// Attributes every new link may get in its creation message.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkOpts<'a> {
    pub mac: Option<MacAddr>,
    pub mtu: Option<u32>,
    /// Create the link directly in this namespace (the parent, if any, stays where it is).
    pub netns: Option<NsRef<'a>>,
    /// Attach to this bridge (ifindex in the namespace the link is created in).
    pub master: Option<u32>,
    /// Bring the link up as part of its creation.
    pub up: bool,
}

/// A veth pair: `name` here, `peer_name` in `peer.netns` (or here when `None`).
#[derive(Clone, Copy, Debug)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub opts: LinkOpts<'a>,
    pub peer_name: &'a str,
    pub peer: LinkOpts<'a>,
}

/// `lxc.net.N.macvlan.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    #[default]
    Private,
    Vepa,
    Bridge,
    Passthru,
}

impl FromStr for MacvlanMode {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "private" => Self::Private,
            "vepa" => Self::Vepa,
            "bridge" => Self::Bridge,
            "passthru" => Self::Passthru,
            _ => {
                return Err(NetError::invalid(
                    "macvlan mode",
                    s,
                    "expected private, vepa, bridge or passthru",
                ))
            }
        })
    }
}

/// A macvlan on `parent` (ifindex in the current namespace).
#[derive(Clone, Copy, Debug)]
pub struct MacvlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: MacvlanMode,
    pub opts: LinkOpts<'a>,
}

/// A VLAN device with `id` on `parent`.
#[derive(Clone, Copy, Debug)]
pub struct VlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub id: u16,
    pub opts: LinkOpts<'a>,
}

/// `lxc.net.N.ipvlan.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpvlanMode {
    L2,
    #[default]
    L3,
    L3s,
}

impl FromStr for IpvlanMode {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "l2" => Self::L2,
            "l3" => Self::L3,
            "l3s" => Self::L3s,
            _ => {
                return Err(NetError::invalid(
                    "ipvlan mode",
                    s,
                    "expected l3, l3s or l2",
                ))
            }
        })
    }
}

/// `lxc.net.N.ipvlan.isolation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpvlanIsolation {
    #[default]
    Bridge,
    Private,
    Vepa,
}

impl FromStr for IpvlanIsolation {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "bridge" => Self::Bridge,
            "private" => Self::Private,
            "vepa" => Self::Vepa,
            _ => {
                return Err(NetError::invalid(
                    "ipvlan isolation",
                    s,
                    "expected bridge, private or vepa",
                ))
            }
        })
    }
}

/// An ipvlan on `parent`.
#[derive(Clone, Copy, Debug)]
pub struct IpvlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: IpvlanMode,
    pub isolation: IpvlanIsolation,
    pub opts: LinkOpts<'a>,
}

/// One link as listed by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "veth", "bridge", "macvlan", ...; `None` for physical devices and lo.
    pub kind: Option<String>,
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// ifindex of the bridge this link is attached to.
    pub master: Option<u32>,
    /// ifindex of the parent link (`IFLA_LINK`: veth peer, macvlan parent); may be an index in
    /// another namespace.
    pub parent: Option<u32>,
}

impl Link {
    /// Administratively up (`IFF_UP`).
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
    /// The loopback device.
    pub fn is_loopback(&self) -> bool {
        self.flags & libc::IFF_LOOPBACK as u32 != 0
    }
}

/// Address scope (`ifa_scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

/// One address as listed by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// ifindex of the link the address is on.
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub scope: Scope,
    /// IPv4 broadcast address, when set.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label (usually the link name).
    pub label: Option<String>,
}

/// A route to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network and prefix; `None` = default route (family from `gateway`).
    pub dest: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    /// Output link (ifindex).
    pub oif: Option<u32>,
}

/// One route of the main table as listed by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dest: Option<IpAddr>,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub scope: Scope,
    pub table: u32,
}

/// The IPv4 broadcast address LXC sets for `addr/prefix`: all host bits set, or `0.0.0.0` for
/// /31 and /32 (point-to-point and host addresses have no broadcast).
pub fn ipv4_broadcast(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    if prefix >= 31 {
        return Ipv4Addr::UNSPECIFIED;
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    Ipv4Addr::from(u32::from(addr) | !mask)
}

/// The classful prefix LXC assumes when `ipv4.address` has none: A = /8, B = /16, C = /24
/// (D and E fall back to /32 as their class has no network part).
pub fn classful_prefix(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

/// The network address of `addr/prefix`.
pub fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32) as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128) as u32)
            };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// A random interface name `<prefix>` + 6 characters of `[0-9a-zA-Z]` (LXC's `vethXXXXXX`,
/// `mcXXXXXX`). The caller retries on EEXIST.
pub fn random_ifname(prefix: &str) -> String {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + 6);
    s.push_str(prefix);
    for _ in 0..6 {
        s.push(CHARS[rng.gen_range(0..CHARS.len())] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_the_prefix() {
        let a: Ipv4Addr = "10.0.3.17".parse().unwrap();
        assert_eq!(ipv4_broadcast(a, 24), Ipv4Addr::new(10, 0, 3, 255));
        assert_eq!(ipv4_broadcast(a, 16), Ipv4Addr::new(10, 0, 255, 255));
        assert_eq!(ipv4_broadcast(a, 28), Ipv4Addr::new(10, 0, 3, 31));
        assert_eq!(ipv4_broadcast(a, 30), Ipv4Addr::new(10, 0, 3, 19));
        assert_eq!(ipv4_broadcast(a, 31), Ipv4Addr::UNSPECIFIED);
        assert_eq!(ipv4_broadcast(a, 32), Ipv4Addr::UNSPECIFIED);
        assert_eq!(ipv4_broadcast(a, 0), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn classful_prefixes() {
        assert_eq!(classful_prefix("10.1.2.3".parse().unwrap()), 8);
        assert_eq!(classful_prefix("172.16.0.1".parse().unwrap()), 16);
        assert_eq!(classful_prefix("192.168.1.1".parse().unwrap()), 24);
        assert_eq!(classful_prefix("224.0.0.1".parse().unwrap()), 32);
    }

    #[test]
    fn network_masks_host_bits() {
        assert_eq!(
            network_of("10.0.3.17".parse().unwrap(), 24),
            "10.0.3.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network_of("fd00::1:2".parse().unwrap(), 64),
            "fd00::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network_of("1.2.3.4".parse().unwrap(), 0),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mac_parse_and_print() {
        let m: MacAddr = "00:16:3E:0a:bb:cc".parse().unwrap();
        assert_eq!(m.to_string(), "00:16:3e:0a:bb:cc");
        for bad in [
            "",
            "00:16:3e:0a:bb",
            "00:16:3e:0a:bb:cc:dd",
            "00:16:3e:0a:bb:zz",
            "001:16:3e:0a:bb:cc",
        ] {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(e.to_string().contains("MAC address"), "{e}");
        }
        let r = MacAddr::random();
        assert_eq!(r.0[0] & 0x03, 0x02, "locally administered unicast: {r}");
        assert_eq!(r.with_first_octet(0xfe).0[0], 0xfe);
    }

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("abcdefghijklmno").is_ok());
        let e = validate_ifname("abcdefghijklmnop").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid interface name \"abcdefghijklmnop\": longer than 15 bytes"
        );
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("a b").is_err());
        assert!(validate_ifname("..").is_err());
    }

    #[test]
    fn random_names_look_like_lxc() {
        let n = random_ifname("veth");
        assert_eq!(n.len(), 10);
        assert!(n.starts_with("veth"));
        assert!(n[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_ifname("veth"), random_ifname("veth"));
    }

    #[test]
    fn modes_parse() {
        assert_eq!(
            "passthru".parse::<MacvlanMode>().unwrap(),
            MacvlanMode::Passthru
        );
        assert_eq!("l3s".parse::<IpvlanMode>().unwrap(), IpvlanMode::L3s);
        assert_eq!(
            "vepa".parse::<IpvlanIsolation>().unwrap(),
            IpvlanIsolation::Vepa
        );
        let e = "bogus".parse::<MacvlanMode>().unwrap_err();
        assert!(e.to_string().contains("bogus"));
    }
}
