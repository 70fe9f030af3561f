//! The hot read of `ls --fancy` / `info`: a container's addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsFd;

use crate::error::Result;
use crate::netlink::Netlink;
use crate::ns::NetNs;
use crate::types::Scope;

/// One address of a container, with the interface it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsAddress {
    pub ifname: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// The addresses of the network namespace of `pid` (a container's init): every address not
/// on `lo`/loopback links, IPv4 ones and IPv6 ones of global scope only. One socket, one link
/// dump, one address dump. Ordered by interface index, then as the kernel lists them.
pub fn ns_addresses(pid: u32) -> Result<Vec<NsAddress>> {
    let ns = NetNs::from_pid(pid)?;
    let mut nl = Netlink::in_ns(ns.as_fd())?;
    ns_addresses_in(&mut nl)
}

/// [`ns_addresses`] over an existing socket.
pub fn ns_addresses_in(nl: &mut Netlink) -> Result<Vec<NsAddress>> {
    let links = nl.links()?;
    let names: HashMap<u32, (String, bool)> = links
        .into_iter()
        .map(|l| {
            let skip = l.is_loopback() || l.name == "lo";
            (l.index, (l.name, skip))
        })
        .collect();
    let mut out: Vec<(u32, NsAddress)> = Vec::new();
    for a in nl.addresses()? {
        let Some((name, skip)) = names.get(&a.index) else {
            continue;
        };
        if *skip {
            continue;
        }
        if a.addr.is_ipv6() && a.scope != Scope::Global {
            continue;
        }
        out.push((
            a.index,
            NsAddress {
                ifname: name.clone(),
                addr: a.addr,
                prefix: a.prefix,
            },
        ));
    }
    out.sort_by_key(|(i, a)| (*i, a.addr.is_ipv6()));
    Ok(out.into_iter().map(|(_, a)| a).collect())
}
