//! Root integration tests against the real kernel, each inside namespaces it creates.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use common::{NsProc, TestNs};
use lxrs_netns::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn link(nl: &mut Netlink, name: &str) -> Link {
    nl.link(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// "host" ns with an up bridge br0 (10.0.3.1/24) and a container ns with eth0 wired to it.
struct Pair {
    host: TestNs,
    ct: TestNs,
}

fn wired_pair() -> Pair {
    let mut host = TestNs::new();
    let mut ct = TestNs::new();
    host.nl
        .create_bridge(
            "br0",
            &LinkOpts {
                up: true,
                ..Default::default()
            },
        )
        .unwrap();
    let br = host.nl.link("br0").unwrap();
    let host_mac = MacAddr::random().with_first_octet(0xfe);
    let ct_mac: MacAddr = "00:16:3e:12:34:56".parse().unwrap();
    host.nl
        .create_veth(&VethSpec {
            name: "vethAbC123",
            opts: LinkOpts {
                mac: Some(host_mac),
                mtu: Some(1400),
                master: Some(br.index),
                up: true,
                netns: None,
            },
            peer_name: "eth0",
            peer: LinkOpts {
                mac: Some(ct_mac),
                mtu: Some(1400),
                netns: Some(NsRef::Fd(ct.ns.as_fd())),
                master: None,
                up: false,
            },
        })
        .unwrap();
    host.nl.add_address("br0", ip("10.0.3.1"), 24).unwrap();
    let _ = &mut ct;
    Pair { host, ct }
}

#[test]
fn veth_peer_is_born_in_the_container_namespace() {
    let Pair { mut host, mut ct } = wired_pair();
    let br = link(&mut host.nl, "br0");
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert!(br.is_up());

    let v = link(&mut host.nl, "vethAbC123");
    assert_eq!(v.kind.as_deref(), Some("veth"));
    assert_eq!(v.master, Some(br.index), "attached to br0 at creation");
    assert_eq!(v.mtu, 1400);
    assert_eq!(v.mac.unwrap().0[0], 0xfe);
    assert!(v.is_up());
    assert!(
        host.nl.find_link("eth0").unwrap().is_none(),
        "the peer never appears on the host side"
    );

    let e = link(&mut ct.nl, "eth0");
    assert_eq!(e.kind.as_deref(), Some("veth"));
    assert_eq!(e.mac.unwrap().to_string(), "00:16:3e:12:34:56");
    assert_eq!(e.mtu, 1400);
    assert!(!e.is_up());
    let names: Vec<String> = ct.nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["lo", "eth0"]);
}

#[test]
fn addresses_routes_and_traffic_through_the_bridge() {
    let Pair { host, ct } = wired_pair();
    let mut nl = Netlink::in_ns(ct.ns.as_fd()).unwrap();
    let nl = &mut nl;
    nl.add_address("eth0", ip("10.0.3.17"), 24).unwrap();
    nl.add_address("eth0", ip("fd42::17"), 64).unwrap();
    nl.set_up("lo").unwrap();
    nl.set_up("eth0").unwrap();
    nl.add_default_route(ip("10.0.3.1"), None).unwrap();
    nl.add_host_route("eth0", ip("10.9.9.9")).unwrap();
    nl.add_device_route("eth0", ip("fd43::"), 64).unwrap();
    nl.add_default_route(ip("fd42::1"), Some(LinkId::Name("eth0")))
        .unwrap();

    let eth0 = link(nl, "eth0");
    let addrs = nl.addresses().unwrap();
    let v4 = addrs
        .iter()
        .find(|a| a.addr == ip("10.0.3.17"))
        .expect("v4 address listed");
    assert_eq!(
        (v4.index, v4.prefix, v4.scope),
        (eth0.index, 24, Scope::Global)
    );
    assert_eq!(
        v4.broadcast,
        Some(Ipv4Addr::new(10, 0, 3, 255)),
        "LXC's broadcast"
    );
    let v6 = addrs
        .iter()
        .find(|a| a.addr == ip("fd42::17"))
        .expect("v6 address listed");
    assert_eq!((v6.prefix, v6.scope), (64, Scope::Global));
    assert!(addrs
        .iter()
        .any(|a| a.addr == ip("127.0.0.1") && a.scope == Scope::Host));

    let r4 = nl.routes(false).unwrap();
    assert!(
        r4.iter()
            .any(|r| r.dest.is_none() && r.prefix == 0 && r.gateway == Some(ip("10.0.3.1"))),
        "default via 10.0.3.1 in {r4:?}"
    );
    assert!(r4.iter().any(|r| r.dest == Some(ip("10.9.9.9"))
        && r.prefix == 32
        && r.scope == Scope::Link
        && r.oif == Some(eth0.index)));
    let r6 = nl.routes(true).unwrap();
    assert!(
        r6.iter().any(|r| r.dest.is_none()
            && r.gateway == Some(ip("fd42::1"))
            && r.oif == Some(eth0.index)),
        "{r6:?}"
    );
    assert!(r6
        .iter()
        .any(|r| r.dest == Some(ip("fd43::")) && r.prefix == 64));

    let e = nl.add_default_route(ip("10.0.3.1"), None).unwrap_err();
    assert!(e.is_exists(), "second default route: {e}");

    // A TCP round trip container -> bridge address in the test's own "host" namespace.
    let listener = host.run(|| TcpListener::bind("10.0.3.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        s.write_all(b"pong").unwrap();
        (peer.ip(), b)
    });
    let reply = ct.run(|| {
        let mut s = TcpStream::connect_timeout(
            &SocketAddr::new(ip("10.0.3.1"), port),
            Duration::from_secs(10),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        b
    });
    assert_eq!(&reply, b"pong");
    let (peer, got) = server.join().unwrap();
    assert_eq!((peer, &got), (ip("10.0.3.17"), b"ping"));

    nl.del_address("eth0", ip("10.0.3.17"), 24).unwrap();
    assert!(!nl
        .addresses()
        .unwrap()
        .iter()
        .any(|a| a.addr == ip("10.0.3.17")));
    let e = nl.del_address("eth0", ip("10.0.3.17"), 24).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn move_rename_by_fd_and_by_pid_and_back() {
    let mut host = TestNs::new();
    let mut ct = TestNs::new();
    let init = NsProc::spawn(&ct.ns);
    host.nl
        .create_veth(&VethSpec {
            name: "va",
            opts: LinkOpts::default(),
            peer_name: "vb",
            peer: LinkOpts::default(),
        })
        .unwrap();
    host.nl
        .create_veth(&VethSpec {
            name: "vc",
            opts: LinkOpts::default(),
            peer_name: "vd",
            peer: LinkOpts::default(),
        })
        .unwrap();

    host.nl.set_up("vb").unwrap();
    host.nl
        .move_link("vb", NsRef::Fd(ct.ns.as_fd()), Some("eth1"))
        .unwrap();
    host.nl
        .move_link("vd", NsRef::Pid(init.pid()), Some("eth2"))
        .unwrap();
    assert!(host.nl.find_link("vb").unwrap().is_none());
    assert!(host.nl.find_link("vd").unwrap().is_none());
    let e1 = link(&mut ct.nl, "eth1");
    assert!(!e1.is_up(), "a move takes the link down");
    link(&mut ct.nl, "eth2");

    // Without a new name, by name only.
    host.nl
        .move_link("vc", NsRef::Fd(ct.ns.as_fd()), None)
        .unwrap();
    link(&mut ct.nl, "vc");

    // Back home under another name (lxc-device del).
    ct.nl
        .move_link("eth1", NsRef::Fd(host.ns.as_fd()), Some("vb-back"))
        .unwrap();
    assert_eq!(link(&mut host.nl, "vb-back").kind.as_deref(), Some("veth"));

    // Renaming onto a taken name fails and says which.
    let e = ct.nl.rename("eth2", "vc").unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(e.to_string().contains("rename"), "{e}");
    ct.nl.rename("eth2", "eth9").unwrap();
    link(&mut ct.nl, "eth9");
}

#[test]
fn setters_and_bridge_ports() {
    let mut h = TestNs::new();
    let nl = &mut h.nl;
    nl.create_bridge("br1", &LinkOpts::default()).unwrap();
    nl.create_veth(&VethSpec {
        name: "p0",
        opts: LinkOpts::default(),
        peer_name: "p1",
        peer: LinkOpts::default(),
    })
    .unwrap();
    let br = link(nl, "br1");
    nl.set_master("p0", "br1").unwrap();
    assert_eq!(link(nl, "p0").master, Some(br.index));
    nl.set_nomaster("p0").unwrap();
    assert_eq!(link(nl, "p0").master, None);
    let p0 = link(nl, "p0").index;
    nl.set_master(LinkId::Index(p0), LinkId::Index(br.index))
        .unwrap();
    assert_eq!(link(nl, "p0").master, Some(br.index));

    let mac: MacAddr = "02:aa:bb:cc:dd:ee".parse().unwrap();
    nl.set_mac("p1", mac).unwrap();
    nl.set_mtu("p1", 1280).unwrap();
    nl.set_up("p1").unwrap();
    let p1 = link(nl, "p1");
    assert_eq!((p1.mac, p1.mtu, p1.is_up()), (Some(mac), 1280, true));
    nl.set_down("p1").unwrap();
    assert!(!link(nl, "p1").is_up());
    nl.rename("p1", "renamed").unwrap();
    assert_eq!(link(nl, "renamed").index, p1.index);

    let e = nl.set_mtu("renamed", 10).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    assert!(
        e.to_string()
            .starts_with("set mtu renamed: invalid argument (EINVAL, errno 22)"),
        "{e}"
    );

    // Deleting one veth end removes both.
    nl.delete_link("p0").unwrap();
    assert!(nl.find_link("renamed").unwrap().is_none());
}

#[test]
fn macvlan_on_a_parent_in_every_mode_and_directly_in_a_container() {
    let mut h = TestNs::new();
    let mut ct = TestNs::new();
    let nl = &mut h.nl;
    nl.create_veth(&VethSpec {
        name: "up0",
        opts: LinkOpts {
            up: true,
            ..Default::default()
        },
        peer_name: "up1",
        peer: LinkOpts::default(),
    })
    .unwrap();
    let parent = link(nl, "up0").index;
    for (i, mode) in [MacvlanMode::Private, MacvlanMode::Vepa, MacvlanMode::Bridge]
        .into_iter()
        .enumerate()
    {
        let name = format!("mc{i}");
        nl.create_macvlan(&MacvlanSpec {
            name: &name,
            parent,
            mode,
            opts: LinkOpts::default(),
        })
        .unwrap();
        let l = link(nl, &name);
        assert_eq!(
            (l.kind.as_deref(), l.parent),
            (Some("macvlan"), Some(parent)),
            "{mode:?}"
        );
    }
    // passthru takes the parent over exclusively: a parent with macvlans already fails.
    let e = nl
        .create_macvlan(&MacvlanSpec {
            name: "mcpt",
            parent,
            mode: MacvlanMode::Passthru,
            opts: LinkOpts::default(),
        })
        .unwrap_err();
    assert!(e.to_string().contains("create macvlan mcpt"), "{e}");
    nl.create_veth(&VethSpec {
        name: "up2",
        opts: LinkOpts::default(),
        peer_name: "up3",
        peer: LinkOpts::default(),
    })
    .unwrap();
    let p2 = link(nl, "up2").index;
    nl.create_macvlan(&MacvlanSpec {
        name: "mcpt",
        parent: p2,
        mode: MacvlanMode::Passthru,
        opts: LinkOpts::default(),
    })
    .unwrap();
    assert_eq!(link(nl, "mcpt").kind.as_deref(), Some("macvlan"));

    // Born in the container namespace with its final name, MAC and MTU; the parent stays.
    let mac: MacAddr = "02:00:00:00:00:42".parse().unwrap();
    nl.create_macvlan(&MacvlanSpec {
        name: "eth0",
        parent,
        mode: MacvlanMode::Bridge,
        opts: LinkOpts {
            mac: Some(mac),
            mtu: Some(1400),
            netns: Some(NsRef::Fd(ct.ns.as_fd())),
            ..Default::default()
        },
    })
    .unwrap();
    assert!(nl.find_link("eth0").unwrap().is_none());
    let e0 = link(&mut ct.nl, "eth0");
    assert_eq!(
        (e0.kind.as_deref(), e0.mac, e0.mtu),
        (Some("macvlan"), Some(mac), 1400)
    );
}

#[test]
fn vlan_and_ipvlan_reach_the_kernel() {
    // This kernel has no vlan/ipvlan drivers: the request must come back as a clear error
    // naming the link, the operation and the errno. Where the drivers exist, the links appear.
    let mut h = TestNs::new();
    let nl = &mut h.nl;
    nl.create_veth(&VethSpec {
        name: "par0",
        opts: LinkOpts::default(),
        peer_name: "par1",
        peer: LinkOpts::default(),
    })
    .unwrap();
    let parent = link(nl, "par0").index;
    match nl.create_vlan(&VlanSpec {
        name: "vlan100-1",
        parent,
        id: 100,
        opts: LinkOpts::default(),
    }) {
        Ok(()) => assert_eq!(link(nl, "vlan100-1").kind.as_deref(), Some("vlan")),
        Err(e) => {
            let s = e.to_string();
            eprintln!("{s}");
            assert!(
                s.starts_with("create vlan vlan100-1: ") && s.contains("errno"),
                "{s}"
            );
            assert!(e.errno().is_some(), "{s}");
        }
    }
    let spec = IpvlanSpec {
        name: "ipvl0",
        parent,
        mode: IpvlanMode::L2,
        isolation: IpvlanIsolation::Private,
        opts: LinkOpts::default(),
    };
    match nl.create_ipvlan(&spec) {
        Ok(()) => assert_eq!(link(nl, "ipvl0").kind.as_deref(), Some("ipvlan")),
        Err(e) => {
            eprintln!("{e}");
            assert!(e.to_string().starts_with("create ipvlan ipvl0: "), "{e}")
        }
    }
}

#[test]
fn kernel_errors_name_the_link_and_errno() {
    let mut h = TestNs::new();
    let nl = &mut h.nl;
    nl.create_veth(&VethSpec {
        name: "x0",
        opts: LinkOpts::default(),
        peer_name: "x1",
        peer: LinkOpts::default(),
    })
    .unwrap();
    let e = nl.set_master("x0", "br-x").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "look up bridge br-x: no such device (ENODEV, errno 19)"
    );

    nl.create_bridge("br2", &LinkOpts::default()).unwrap();
    let e = nl.create_bridge("br2", &LinkOpts::default()).unwrap_err();
    assert!(e.is_exists());
    assert!(
        e.to_string()
            .starts_with("create bridge br2: file exists (EEXIST, errno 17)"),
        "{e}"
    );

    let e = nl
        .create_veth(&VethSpec {
            name: "x0",
            opts: LinkOpts::default(),
            peer_name: "x9",
            peer: LinkOpts::default(),
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("create veth x0 (peer x9): file exists"),
        "{e}"
    );

    assert!(nl.delete_link("nope0").unwrap_err().is_not_found());
    assert!(nl.find_link("nope0").unwrap().is_none());
    assert!(nl.find_link(LinkId::Index(99999)).unwrap().is_none());
    let e = nl
        .create_bridge("this-name-is-too-long", &LinkOpts::default())
        .unwrap_err();
    assert!(e.to_string().contains("this-name-is-too-long"), "{e}");
}

#[test]
fn teardown_tries_everything_and_reports_every_failure() {
    let mut h = TestNs::new();
    let nl = &mut h.nl;
    nl.create_bridge("brA", &LinkOpts::default()).unwrap();
    nl.create_bridge("brB", &LinkOpts::default()).unwrap();
    let e = nl
        .delete_links(&[
            LinkId::Name("gone1"),
            LinkId::Name("brA"),
            LinkId::Name("gone2"),
            LinkId::Name("brB"),
        ])
        .unwrap_err();
    assert!(
        nl.find_link("brA").unwrap().is_none() && nl.find_link("brB").unwrap().is_none(),
        "both deleted despite errors"
    );
    match &e {
        NetError::Teardown(list) => assert_eq!(list.len(), 2, "{e}"),
        other => panic!("expected a teardown error, got {other}"),
    }
    let s = e.to_string();
    assert!(
        s.starts_with("2 teardown step(s) failed: ") && s.contains("gone1") && s.contains("gone2"),
        "{s}"
    );
}

#[test]
fn ns_addresses_lists_what_ls_shows() {
    let Pair { host, mut ct } = wired_pair();
    let init = NsProc::spawn(&ct.ns);
    let nl = &mut ct.nl;
    nl.set_up("lo").unwrap();
    nl.add_address("eth0", ip("10.0.3.17"), 24).unwrap();
    nl.add_address("eth0", ip("fd42::17"), 64).unwrap();
    nl.set_up("eth0").unwrap();
    nl.create_bridge(
        "br9",
        &LinkOpts {
            up: true,
            ..Default::default()
        },
    )
    .unwrap();
    nl.add_address("br9", ip("192.168.77.1"), 24).unwrap();
    nl.add_address("br9", ip("fe80::77"), 64).unwrap();
    let got = ns_addresses(init.pid()).unwrap();
    let want = vec![
        NsAddress {
            ifname: "eth0".into(),
            addr: ip("10.0.3.17"),
            prefix: 24,
        },
        NsAddress {
            ifname: "eth0".into(),
            addr: ip("fd42::17"),
            prefix: 64,
        },
        NsAddress {
            ifname: "br9".into(),
            addr: ip("192.168.77.1"),
            prefix: 24,
        },
    ];
    assert_eq!(got, want, "no lo, no link-local IPv6");
    // The caller's own namespace is untouched by the setns round trip.
    let here = NetNs::current().unwrap();
    assert!(!here.same_as(&ct.ns).unwrap());
    drop(host);
    let e = ns_addresses(999_999_999).unwrap_err();
    assert!(e.to_string().contains("/proc/999999999/ns/net"), "{e}");
}

#[test]
fn creating_a_namespace_leaves_the_thread_where_it_was() {
    common::require_root();
    let before = NetNs::current().unwrap();
    let n = NetNs::create().unwrap();
    let after = NetNs::current().unwrap();
    assert!(before.same_as(&after).unwrap());
    assert!(!n.same_as(&after).unwrap());
    let inside = n.run(|| NetNs::current().unwrap()).unwrap();
    assert!(inside.same_as(&n).unwrap());
    assert!(NetNs::current().unwrap().same_as(&before).unwrap());
}

#[test]
fn veth_peer_cannot_be_born_up_but_the_host_end_can() {
    // The kernel opens the peer before the pair is linked (veth_open: ENOTCONN), so the
    // builder refuses `peer.up` with a message saying what to do instead.
    let mut h = TestNs::new();
    let ct = TestNs::new();
    let e =
        h.nl.create_veth(&VethSpec {
            name: "a0",
            opts: LinkOpts {
                up: true,
                ..Default::default()
            },
            peer_name: "b0",
            peer: LinkOpts {
                up: true,
                netns: Some(NsRef::Fd(ct.ns.as_fd())),
                ..Default::default()
            },
        })
        .unwrap_err();
    assert!(e.to_string().contains("set it up after creation"), "{e}");
    assert!(h.nl.find_link("a0").unwrap().is_none(), "nothing half-made");
    h.nl.create_veth(&VethSpec {
        name: "a0",
        opts: LinkOpts {
            up: true,
            ..Default::default()
        },
        peer_name: "b0",
        peer: LinkOpts {
            netns: Some(NsRef::Fd(ct.ns.as_fd())),
            ..Default::default()
        },
    })
    .unwrap();
    assert!(h.nl.link("a0").unwrap().is_up());
}

#[test]
fn kernel_numbered_names_and_ipv6_off_on_the_host_end() {
    let mut h = TestNs::new();
    let mut ct = TestNs::new();
    for host_end in ["vethK1", "vethK2"] {
        h.nl.create_veth(&VethSpec {
            name: host_end,
            opts: LinkOpts::default(),
            peer_name: "eth%d",
            peer: LinkOpts {
                netns: Some(NsRef::Fd(ct.ns.as_fd())),
                ..Default::default()
            },
        })
        .unwrap();
    }
    let names: Vec<String> = ct.nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        ["lo", "eth0", "eth1"],
        "the kernel numbers eth%d in the container namespace"
    );

    let path = "/proc/sys/net/ipv6/conf/vethK1/disable_ipv6";
    assert_eq!(read_net_sysctl(Some(&h.ns), path).unwrap(), "0");
    disable_ipv6(Some(&h.ns), "vethK1").unwrap();
    assert_eq!(read_net_sysctl(Some(&h.ns), path).unwrap(), "1");
    let e = disable_ipv6(Some(&h.ns), "nosuch0").unwrap_err();
    assert!(
        e.to_string()
            .contains("/proc/sys/net/ipv6/conf/nosuch0/disable_ipv6"),
        "{e}"
    );
}
