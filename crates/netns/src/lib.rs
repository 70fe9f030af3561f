//! lxrs-netns: the netlink plumbing of lxrs containers.
//!
//! A [`Netlink`] is one blocking `NETLINK_ROUTE` socket bound in one network namespace
//! (`Netlink::new()` for the calling thread's, `Netlink::in_ns(fd)` for another). It creates
//! bridges, veth pairs (peer born directly in the container's namespace), macvlan, vlan and
//! ipvlan links, moves/renames links, sets MAC/MTU/up/master, adds addresses and routes, and
//! lists links, addresses and routes. [`ns_addresses`] is the cheap read for `ls --fancy`/`info`.
//!
//! No threads and no async runtime: nothing of this crate is alive across a fork except fds.

mod error;
mod msg;
mod netlink;
mod ns;
mod ops;
mod query;
pub mod service;
mod types;

pub use error::{ErrorList, NetError, Result};
pub use msg::LinkChange;
pub use netlink::Netlink;
pub use ns::{disable_ipv6, read_net_sysctl, write_net_sysctl, NetNs};
pub use ops::{NetOps, RecordingNet};
pub use query::{ns_addresses, ns_addresses_in, NsAddress};
pub use types::{
    classful_prefix, ipv4_broadcast, network_of, random_ifname, validate_ifname, Address,
    IpvlanIsolation, IpvlanMode, IpvlanSpec, Link, LinkId, LinkOpts, MacAddr, MacvlanMode,
    MacvlanSpec, NsRef, Route, RouteSpec, Scope, VethSpec, VlanSpec, IFNAME_MAX,
};

/// Message builders, public so callers can inspect exactly what would be sent.
pub mod messages {
    pub use crate::msg::{
        address, bridge, ext_ack_message, ipvlan, link_ref, macvlan, parse_address, parse_link,
        parse_route, route, set_link, veth, vlan,
    };
}
