//! Container networking end to end with the real binary, inside a network namespace each test
//! creates as its "host": the walkthrough's three interfaces (veth with a fixed MAC, veth with a
//! random one, a phys device moved in and handed back at stop and after a killed monitor),
//! static IPv4/IPv6 with gateways, macvlan, a missing bridge, vlan/ipvlan refused on this
//! kernel. After every test: no veth on the host, no pin mount, nothing of the container left.

mod net_common;
use lxrs_netns::MacAddr;
use net_common::*;

fn host_veths(env: &Env) -> Vec<lxrs_netns::Link> {
    env.nl()
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name.starts_with("veth"))
        .collect()
}

/// The walkthrough's container (legacy keys, as written there).
const WALKTHROUGH: &str = "\
lxc.network.type = veth
lxc.network.hwaddr = 00:16:3e:3a:f1:c1
lxc.network.flags = up
lxc.network.link = lxcbr0
lxc.network.name = eth0

lxc.network.type = veth
lxc.network.link = virbr0
lxc.network.name = virt0

lxc.network.type = phys
lxc.network.link = eth2
lxc.network.name = eth1
";

#[test]
fn walkthrough_three_interfaces_and_phys_comes_back() {
    let env = Env::new();
    env.bridge("lxcbr0", Some(1400), &[("10.0.3.1", 24)]);
    env.bridge("virbr0", None, &[]);
    // The host's "eth2": one end of a veth pair whose other end stays on the host, so we can
    // tell it was handed back rather than destroyed and recreated.
    env.veth_pair("eth2", "eth2peer", Some(1480));
    let before = env.host_links();
    let eth2_index = env.nl().link("eth2").unwrap().index;
    env.create("w1", WALKTHROUGH);

    for round in 0..2 {
        let out = env.start("w1");
        assert!(out.status.success(), "start: {}", text(&out.stderr));
        let init = env.init_pid("w1");
        let mut ct = ct_nl(init);
        let eth0 = ct.link("eth0").unwrap();
        assert_eq!(
            eth0.mac,
            Some("00:16:3e:3a:f1:c1".parse::<MacAddr>().unwrap())
        );
        assert!(eth0.is_up(), "flags = up");
        assert_eq!(eth0.mtu, 1400, "MTU of the bridge");
        let virt0 = ct.link("virt0").unwrap();
        let vmac = virt0.mac.unwrap();
        assert_eq!(
            vmac.0[0] & 0x03,
            0x02,
            "random locally administered MAC: {vmac}"
        );
        assert!(!virt0.is_up(), "no flags: down");
        let eth1 = ct.link("eth1").unwrap();
        assert_eq!(
            eth1.index, eth2_index,
            "the host's eth2, moved in and renamed"
        );
        assert!(ct.link("lo").unwrap().is_up(), "lo is always up");
        // On the host: eth2 is gone, one veth host end per bridge, MAC fe:..., up.
        let links = env.host_links();
        assert!(
            !links.contains(&"eth2".to_string()),
            "eth2 moved out of the host: {links:?}"
        );
        let veths = host_veths(&env);
        assert_eq!(veths.len(), 2, "{veths:?}");
        let mut nl = env.nl();
        let br = nl.link("lxcbr0").unwrap().index;
        let vbr = nl.link("virbr0").unwrap().index;
        let mut masters: Vec<u32> = veths.iter().map(|v| v.master.unwrap()).collect();
        masters.sort();
        assert_eq!(masters, [br.min(vbr), br.max(vbr)]);
        for v in &veths {
            assert_eq!(
                v.mac.unwrap().0[0],
                0xfe,
                "host end MAC starts with fe: {v:?}"
            );
            assert!(v.is_up());
            assert_eq!(v.name.len(), 10, "vethXXXXXX: {}", v.name);
        }
        drop(ct);
        // init's namespace was made ahead by the starter and init cloned into it: init is in
        // a namespace of its own, the monitor (which entered it for the clone) back in ours.
        let ns_of = |pid: i32| lxrs_netns::NetNs::open(format!("/proc/{pid}/ns/net")).unwrap();
        let mon = env.monitors("w1");
        assert_eq!(mon.len(), 1);
        assert!(
            ns_of(mon[0]).same_as(&env.host).unwrap(),
            "monitor in the host namespace"
        );
        assert!(
            !ns_of(init).same_as(&env.host).unwrap(),
            "init in a namespace of its own"
        );

        if round == 0 {
            // Clean stop: phys back under its name, veths gone, pin gone.
            env.ok(&["stop", "-n", "w1", "-t", "20"]);
        } else {
            // A killed monitor: the pinned namespace keeps eth2 until the next command looks.
            let mon = env.monitors("w1");
            assert_eq!(mon.len(), 1);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(mon[0]),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            env.wait_for("init to die with its monitor", 10, || {
                !alive(init) && !alive(mon[0])
            });
            assert!(
                !env.host_links().contains(&"eth2".to_string()),
                "still in the pinned namespace"
            );
            assert!(
                !env.mounts().is_empty(),
                "the container namespace is pinned"
            );
            let ls = env.ok(&["ls"]);
            assert!(ls.contains("w1"), "{ls}");
        }
        assert_eq!(
            env.host_links(),
            before,
            "round {round}: host links as before (eth2 back, no veth)"
        );
        let eth2 = env.nl().link("eth2").unwrap();
        assert_eq!(eth2.index, eth2_index, "the same device");
        assert_eq!(eth2.mtu, 1480, "original MTU");
        assert!(env.mounts().is_empty(), "pin unmounted: {:?}", env.mounts());
        assert_eq!(env.state("w1"), "STOPPED");
    }
}

#[test]
fn static_ipv4_ipv6_and_gateways() {
    let env = Env::new();
    env.bridge("lxcbr0", None, &[("10.0.3.1", 24), ("fd42::1", 64)]);
    env.bridge("br2", None, &[("172.20.0.1", 24)]);
    let before = env.host_links();
    // Not eth0: the busybox template runs udhcpc (which flushes addresses) on eth0.
    env.create(
        "s1",
        "lxc.net.0.type = veth\n\
         lxc.net.0.link = lxcbr0\n\
         lxc.net.0.name = st0\n\
         lxc.net.0.flags = up\n\
         lxc.net.0.ipv4.address = 10.0.3.50/24\n\
         lxc.net.0.ipv4.gateway = auto\n\
         lxc.net.0.ipv6.address = fd42::50/64\n\
         lxc.net.0.ipv6.gateway = fd42::1\n\
         lxc.net.1.type = veth\n\
         lxc.net.1.link = br2\n\
         lxc.net.1.name = st1\n\
         lxc.net.1.flags = up\n\
         lxc.net.1.ipv4.address = 192.168.99.7/32\n\
         lxc.net.1.veth.pair = vethst1\n",
    );
    let out = env.start("s1");
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    let init = env.init_pid("s1");
    let mut ct = ct_nl(init);
    let st0 = ct.link("st0").unwrap().index;
    let addrs: Vec<String> = ct
        .addresses()
        .unwrap()
        .into_iter()
        .filter(|a| a.index == st0)
        .map(|a| {
            format!(
                "{}/{}{}",
                a.addr,
                a.prefix,
                a.broadcast.map(|b| format!(" brd {b}")).unwrap_or_default()
            )
        })
        .collect();
    assert!(
        addrs.contains(&"10.0.3.50/24 brd 10.0.3.255".to_string()),
        "{addrs:?}"
    );
    assert!(addrs.contains(&"fd42::50/64".to_string()), "{addrs:?}");
    let v4 = ct.routes(false).unwrap();
    assert!(
        v4.iter().any(|r| r.dest.is_none()
            && r.gateway == Some("10.0.3.1".parse().unwrap())
            && r.oif == Some(st0)),
        "default via the bridge address (gateway = auto): {v4:?}"
    );
    let v6 = ct.routes(true).unwrap();
    assert!(
        v6.iter()
            .any(|r| r.prefix == 0 && r.gateway == Some("fd42::1".parse().unwrap())),
        "{v6:?}"
    );
    // The /32 address has no broadcast; the host end is named as configured.
    let st1 = ct.link("st1").unwrap().index;
    let a1: Vec<_> = ct
        .addresses()
        .unwrap()
        .into_iter()
        .filter(|a| a.index == st1 && a.addr.is_ipv4())
        .collect();
    assert_eq!(a1.len(), 1);
    assert_eq!(
        a1[0].broadcast.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        std::net::Ipv4Addr::UNSPECIFIED
    );
    assert!(env.host_links().contains(&"vethst1".to_string()));
    drop(ct);

    // What users see.
    let info = env.ok(&["info", "-n", "s1", "-i"]);
    assert!(
        info.contains("10.0.3.50") && info.contains("fd42::50"),
        "{info}"
    );
    let ls = env.ok(&["ls", "--fancy"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("s1") && l.contains("10.0.3.50")),
        "{ls}"
    );
    // Traffic stays inside the namespaces of this test: container -> bridge address.
    let ping = env.exec_in("s1", &["ping", "-c1", "-W2", "10.0.3.1"]);
    assert!(
        ping.status.success(),
        "ping 10.0.3.1: {}{}",
        text(&ping.stdout),
        text(&ping.stderr)
    );

    env.ok(&["stop", "-n", "s1", "-k"]);
    assert_eq!(env.host_links(), before, "no host veth left");
}

#[test]
fn macvlan_is_created_inside_on_its_parent() {
    let env = Env::new();
    env.veth_pair("mvparent", "mvpeer", None);
    let before = env.host_links();
    env.create(
        "m1",
        "lxc.net.0.type = macvlan\n\
         lxc.net.0.macvlan.mode = bridge\n\
         lxc.net.0.link = mvparent\n\
         lxc.net.0.name = mv0\n\
         lxc.net.0.hwaddr = 00:16:3e:00:00:42\n\
         lxc.net.0.flags = up\n\
         lxc.net.0.ipv4.address = 10.9.0.2/24\n",
    );
    let out = env.start("m1");
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    let init = env.init_pid("m1");
    let mut ct = ct_nl(init);
    let mv = ct.link("mv0").unwrap();
    assert_eq!(mv.kind.as_deref(), Some("macvlan"));
    assert_eq!(mv.mac.unwrap().to_string(), "00:16:3e:00:00:42");
    assert!(mv.is_up());
    assert!(ct
        .addresses()
        .unwrap()
        .iter()
        .any(|a| a.index == mv.index && a.addr == "10.9.0.2".parse::<std::net::IpAddr>().unwrap()));
    drop(ct);
    assert_eq!(
        env.host_links(),
        before,
        "nothing new on the host: the macvlan was born inside"
    );
    env.ok(&["stop", "-n", "m1", "-k"]);
    assert_eq!(env.host_links(), before);
}

#[test]
fn missing_bridge_fails_naming_it_and_leaves_nothing() {
    let env = Env::new();
    env.bridge("lxcbr0", None, &[]);
    env.veth_pair("eth2", "eth2peer", None);
    let before = env.host_links();
    // The first NIC is made, the phys device moved in, before the second one fails.
    env.create(
        "b1",
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.name = eth0\n\
         lxc.net.1.type = phys\nlxc.net.1.link = eth2\n\
         lxc.net.2.type = veth\nlxc.net.2.link = virbr0\n",
    );
    let out = env.start("b1");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("lxc.net.2.link: bridge virbr0 does not exist"),
        "{err}"
    );
    assert_eq!(env.host_links(), before, "veth deleted, eth2 handed back");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(env.monitors("b1").is_empty());
    assert_eq!(env.state("b1"), "STOPPED");

    // A phys device that does not exist.
    env.create("b2", "lxc.net.0.type = phys\nlxc.net.0.link = eth7\n");
    let out = env.start("b2");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("lxc.net.0.link: phys device eth7 does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.host_links(), before);
    assert!(env.mounts().is_empty());
}

#[test]
fn vlan_and_ipvlan_are_refused_clearly_on_this_kernel() {
    let env = Env::new();
    env.veth_pair("trunk0", "trunkpeer", None);
    let before = env.host_links();
    env.create("v1", "lxc.net.0.type = vlan\nlxc.net.0.link = trunk0\nlxc.net.0.vlan.id = 100\nlxc.net.0.flags = up\n");
    let out = env.start("v1");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    // This kernel has no 8021q module; a kernel that has one would start the container.
    assert!(
        err.contains("lxc.net.0.type = vlan: cannot create VLAN 100 on trunk0"),
        "{err}"
    );
    assert!(err.contains("8021q"), "{err}");
    env.create("i1", "lxc.net.0.type = ipvlan\nlxc.net.0.link = trunk0\n");
    let out = env.start("i1");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("lxc.net.0.type = ipvlan: cannot create ipvlan eth0 on trunk0"),
        "{err}"
    );
    assert_eq!(env.host_links(), before);
    assert!(env.monitors("v1").is_empty() && env.monitors("i1").is_empty());
}

#[test]
fn script_up_and_down_run_on_the_host_with_lxc_arguments() {
    let env = Env::new();
    env.bridge("lxcbr0", None, &[]);
    let before = env.host_links();
    let log = env.dir.path().join("hooks.log");
    let hook = env.dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$* type=$LXC_NET_TYPE parent=$LXC_NET_PARENT peer=$LXC_NET_PEER\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let h = hook.display();
    env.create(
        "h1",
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.veth.pair = vethh1\n\
             lxc.net.0.script.up = {h}\nlxc.net.0.script.down = {h}\n"
        ),
    );
    let out = env.start("h1");
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "h1 net up veth lxcbr0 vethh1 type=veth parent=lxcbr0 peer=vethh1\n"
    );
    env.ok(&["stop", "-n", "h1", "-k"]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "h1 net up veth lxcbr0 vethh1 type=veth parent=lxcbr0 peer=vethh1\n\
         h1 net down veth lxcbr0 vethh1 type=veth parent=lxcbr0 peer=vethh1\n"
    );
    assert_eq!(env.host_links(), before);

    // A failing script.up aborts the start; what was made is undone.
    env.create(
        "h2",
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.script.up = /bin/false\n",
    );
    let out = env.start("h2");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("lxc.net.0.script.up"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.host_links(), before);
    assert!(env.monitors("h2").is_empty());
}
