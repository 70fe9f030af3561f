//! The typed view: table tests per key family, the walkthrough snippets, validation errors.

use lxrs_config::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    ContainerConfig::from_document(
        &Document::parse(text, "/test/config"),
        ExpandOptions::default(),
    )
}

fn ok(text: &str) -> ContainerConfig {
    match parse(text) {
        Ok(l) => l.config,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

/// Every error message for `text` (joined).
fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("{text:?} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn walkthrough_legacy_three_interfaces() {
    let l = parse(
        "lxc.network.type = veth
lxc.network.link = lxcbr0
lxc.network.flags = up
lxc.network.hwaddr = 00:16:3e:3a:f1:c1
lxc.network.type = veth
lxc.network.link = virbr0
lxc.network.name = virt0
lxc.network.type = phys
lxc.network.link = eth2
lxc.network.name = eth1
",
    )
    .unwrap();
    let n = &l.config.net;
    assert_eq!(n.len(), 3);
    assert_eq!(
        (n[0].index, n[0].kind, n[0].link.as_deref(), n[0].up),
        (0, NetType::Veth, Some("lxcbr0"), true)
    );
    assert_eq!(n[0].hwaddr, Some([0x00, 0x16, 0x3e, 0x3a, 0xf1, 0xc1]));
    assert_eq!(n[0].name, None);
    assert_eq!(
        (
            n[1].index,
            n[1].kind,
            n[1].link.as_deref(),
            n[1].name.as_deref()
        ),
        (1, NetType::Veth, Some("virbr0"), Some("virt0"))
    );
    assert!(!n[1].up);
    assert_eq!(
        (
            n[2].index,
            n[2].kind,
            n[2].link.as_deref(),
            n[2].name.as_deref()
        ),
        (2, NetType::Phys, Some("eth2"), Some("eth1"))
    );
    assert_eq!(n[2].source.line, 8);
    // Legacy keys are accepted, with a warning naming the current key.
    assert_eq!(l.warnings.len(), 10);
    assert!(
        l.warnings[6].message.contains("lxc.net.1.name"),
        "{}",
        l.warnings[6]
    );
    // The expanded view uses current names.
    let shown = l.config.render_expanded();
    assert!(shown.contains("lxc.net.2.link = eth2\n"), "{shown}");
}

#[test]
fn walkthrough_start_policy_and_groups() {
    let c =
        ok("lxc.start.auto = 1\nlxc.start.delay = 5\nlxc.start.order = 100\nlxc.group = ubuntu\n");
    assert_eq!(
        c.start,
        StartPolicy {
            auto: true,
            delay: 5,
            order: 100
        }
    );
    assert_eq!(c.groups, vec!["ubuntu"]);
}

#[test]
fn start_family_table() {
    let good: &[(&str, StartPolicy)] = &[
        (
            "",
            StartPolicy {
                auto: false,
                delay: 0,
                order: 0,
            },
        ),
        (
            "lxc.start.auto = 0",
            StartPolicy {
                auto: false,
                delay: 0,
                order: 0,
            },
        ),
        (
            "lxc.start.order = -5",
            StartPolicy {
                auto: false,
                delay: 0,
                order: -5,
            },
        ),
        (
            "lxc.start.auto = 1\nlxc.start.auto = 0",
            StartPolicy {
                auto: false,
                delay: 0,
                order: 0,
            },
        ),
        (
            "lxc.start.delay = 5\nlxc.start.delay =",
            StartPolicy {
                auto: false,
                delay: 0,
                order: 0,
            },
        ),
    ];
    for (t, want) in good {
        assert_eq!(ok(t).start, *want, "{t}");
    }
    for bad in [
        "lxc.start.auto = 2",
        "lxc.start.auto = yes",
        "lxc.start.delay = -1",
        "lxc.start.order = x",
    ] {
        let e = err(bad);
        assert!(
            e.contains("/test/config:1:") && e.contains(bad.split(" =").next().unwrap()),
            "{e}"
        );
    }
}

#[test]
fn groups_split_on_whitespace_and_commas_and_clear() {
    assert_eq!(
        ok("lxc.group = g1, g2, g3\nlxc.group = g4\tg5,g6").groups,
        vec!["g1", "g2", "g3", "g4", "g5", "g6"]
    );
    assert_eq!(
        ok("lxc.group = a\nlxc.group =\nlxc.group = b").groups,
        vec!["b"]
    );
}

#[test]
fn net_family_table() {
    let c = ok("lxc.net.3.type = veth
lxc.net.3.link = br0
lxc.net.3.flags = up
lxc.net.3.mtu = 9000
lxc.net.3.ipv4.address = 10.1.2.3
lxc.net.3.ipv4.address = 172.16.0.5/12 172.31.255.255
lxc.net.3.ipv4.address = 192.168.1.10
lxc.net.3.ipv4.gateway = auto
lxc.net.3.ipv6.address = fd00::5
lxc.net.3.ipv6.address = fd00::6/120
lxc.net.3.ipv6.gateway = fd00::1
lxc.net.3.veth.pair = vethhost
lxc.net.3.veth.mode = router
lxc.net.3.veth.ipv4.route = 10.9.0.0/16
lxc.net.3.veth.vlan.id = none
lxc.net.3.veth.vlan.tagged.id = 10
lxc.net.3.script.up = /bin/up
lxc.net.3.script.down = /bin/down
lxc.net.1.type = macvlan
lxc.net.1.macvlan.mode = vepa
lxc.net.1.link = eth0
lxc.net.1.ipv4.gateway = dev
lxc.net.1.ipv4.address = 10.0.0.2/32
lxc.net.2.type = vlan
lxc.net.2.vlan.id = 42
lxc.net.5.type = ipvlan
lxc.net.5.ipvlan.mode = l2
lxc.net.6.type = empty
");
    let idx: Vec<u32> = c.net.iter().map(|n| n.index).collect();
    assert_eq!(idx, vec![1, 2, 3, 5, 6], "NICs sorted by index");
    let v = &c.net[2];
    assert_eq!(v.mtu, Some(9000));
    assert_eq!(
        v.ipv4
            .iter()
            .map(|a| (a.addr, a.prefix))
            .collect::<Vec<_>>(),
        vec![
            (Ipv4Addr::new(10, 1, 2, 3), 8),
            (Ipv4Addr::new(172, 16, 0, 5), 12),
            (Ipv4Addr::new(192, 168, 1, 10), 24)
        ],
        "classful default prefixes"
    );
    assert_eq!(v.ipv4[0].broadcast(), Ipv4Addr::new(10, 255, 255, 255));
    assert_eq!(v.ipv4[1].broadcast(), Ipv4Addr::new(172, 31, 255, 255));
    assert_eq!(v.ipv4_gateway, Some(Gateway::Auto));
    assert_eq!(
        v.ipv6[0],
        Ipv6Net {
            addr: "fd00::5".parse().unwrap(),
            prefix: 64
        }
    );
    assert_eq!(v.ipv6[1].prefix, 120);
    assert_eq!(
        v.ipv6_gateway,
        Some(Gateway::Addr("fd00::1".parse::<Ipv6Addr>().unwrap()))
    );
    assert_eq!(v.veth_pair.as_deref(), Some("vethhost"));
    assert_eq!(v.veth_mode, Some(VethMode::Router));
    assert_eq!(v.veth_ipv4_routes[0].prefix, 16);
    assert_eq!(v.veth_vlan, Some(VlanSetting::None));
    assert_eq!(v.veth_vlan_tagged, vec![10]);
    assert_eq!(v.script_up.as_deref(), Some("/bin/up"));
    assert_eq!(v.script_down.as_deref(), Some("/bin/down"));
    let m = &c.net[0];
    assert_eq!(
        (m.kind, m.macvlan_mode, m.ipv4_gateway),
        (
            NetType::Macvlan,
            Some(MacvlanMode::Vepa),
            Some(Gateway::Dev)
        )
    );
    assert_eq!(
        m.ipv4[0].broadcast(),
        Ipv4Addr::UNSPECIFIED,
        "/32 has no broadcast"
    );
    assert_eq!((c.net[1].kind, c.net[1].vlan_id), (NetType::Vlan, Some(42)));
    assert_eq!(
        (c.net[3].ipvlan_mode, c.net[3].ipvlan_isolation),
        (Some(IpvlanMode::L2), Some(IpvlanIsolation::Bridge))
    );
    assert_eq!(c.net[4].kind, NetType::Empty);
    // Defaults by type.
    assert_eq!(
        ok("lxc.net.0.type = veth").net[0].veth_mode,
        Some(VethMode::Bridge)
    );
    assert_eq!(
        ok("lxc.net.0.type = macvlan").net[0].macvlan_mode,
        Some(MacvlanMode::Private)
    );
    assert_eq!(
        ok("lxc.net.0.type = ipvlan").net[0].ipvlan_mode,
        Some(IpvlanMode::L3)
    );
}

#[test]
fn net_type_resets_the_nic_and_clears_work() {
    let c = ok("lxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.0.type = phys\nlxc.net.0.link = eth1\n");
    assert_eq!(
        (c.net[0].kind, c.net[0].link.as_deref()),
        (NetType::Phys, Some("eth1"))
    );
    let c = ok("lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.1/24\nlxc.net.0.ipv4.address =\nlxc.net.0.ipv4.address = 10.0.0.2/24");
    assert_eq!(c.net[0].ipv4.len(), 1);
    assert_eq!(c.net[0].ipv4[0].addr, Ipv4Addr::new(10, 0, 0, 2));
    let c = ok("lxc.net.0.type = veth\nlxc.net.1.type = veth\nlxc.net.0 =\n");
    assert_eq!(c.net.iter().map(|n| n.index).collect::<Vec<_>>(), vec![1]);
    assert!(
        ok("lxc.net.0.type = veth\nlxc.net.1.type = veth\nlxc.net =\n")
            .net
            .is_empty()
    );
    assert!(ok("lxc.network.type = veth\nlxc.network.type =\n")
        .net
        .is_empty());
    // Legacy and current keys mixed: the legacy block gets the next free index.
    let c = ok("lxc.net.4.type = phys\nlxc.net.4.link = eth3\nlxc.network.type = veth\nlxc.network.link = br0\nlxc.network.0.name = x0\n");
    assert_eq!(
        c.net
            .iter()
            .map(|n| (n.index, n.link.clone()))
            .collect::<Vec<_>>(),
        vec![(4, Some("eth3".into())), (5, Some("br0".into()))]
    );
    assert_eq!(
        c.net[0].name.as_deref(),
        Some("x0"),
        "lxc.network.<N> = N-th NIC"
    );
}

#[test]
fn net_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "lxc.net.0.type = veth\nlxc.net.0.macvlan.mode = bridge",
            "only applies to `macvlan`",
        ),
        (
            "lxc.net.0.macvlan.mode = bridge\nlxc.net.0.type = macvlan",
            "not set before it",
        ),
        (
            "lxc.net.0.type = vlan\nlxc.net.0.veth.pair = x",
            "only applies to `veth`",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:zz:00:00",
            "hex octet",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:00:00",
            "six",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.1/33",
            "prefix",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.256/24",
            "not an IPv4",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.ipv6.address = fd00::g/64",
            "not an IPv6",
        ),
        (
            "lxc.net.0.type = veth\nlxc.net.0.ipv4.gateway = nowhere",
            "auto",
        ),
        ("lxc.net.0.type = wifi", "type must be"),
        ("lxc.net.0.type = veth\nlxc.net.0.mtu = big", "integer"),
        ("lxc.net.2147483647.type = veth", "out of range"),
        ("lxc.net.99999999999.type = veth", "out of range"),
        ("lxc.net = x", "only takes an empty value"),
        ("lxc.network.link = br0", "lxc.network.type"),
        ("lxc.net.0.link = br0", "type must be set"),
        ("lxc.net.0.type = vlan\nlxc.net.0.vlan.id = 5000", "VLAN"),
        ("lxc.net.0.bogus = 1", "unknown configuration key"),
        ("lxc.net.0. = 1", "unknown configuration key"),
        ("lxc.network.3.link = br0", "no network interface number 3"),
    ];
    for (t, want) in cases {
        let e = err(t);
        assert!(e.contains(want), "{t:?}: {e}");
        assert!(e.contains("/test/config:"), "{e}");
    }
}

#[test]
fn unknown_key_suggests_closest() {
    let e = err("lxc.utsname2 = x");
    assert!(
        e.contains("/test/config:1: unknown configuration key `lxc.utsname2`"),
        "{e}"
    );
    let e = err("lxc.rootfs.pth = /x");
    assert!(e.contains("did you mean `lxc.rootfs.path`"), "{e}");
    let e = err("lxc.net.0.type = veth\nlxc.net.0.linc = br0");
    assert!(
        e.contains(":2:") && e.contains("did you mean `lxc.net.0.link`"),
        "{e}"
    );
    let e = err("lxc.cap.dorp = sys_time");
    assert!(e.contains("did you mean `lxc.cap.drop`"), "{e}");
}

#[test]
fn rootfs_family_table() {
    let table: &[(&str, Backend, &str, Option<&str>)] = &[
        (
            "lxc.rootfs.path = dir:/var/lib/lxrs/c/rootfs",
            Backend::Dir,
            "/var/lib/lxrs/c/rootfs",
            None,
        ),
        (
            "lxc.rootfs.path = /srv/root",
            Backend::Dir,
            "/srv/root",
            None,
        ),
        (
            "lxc.rootfs.path = overlay:/base:/delta",
            Backend::Overlay,
            "/base",
            Some("/delta"),
        ),
        (
            "lxc.rootfs.path = overlayfs:/base:/delta",
            Backend::Overlay,
            "/base",
            Some("/delta"),
        ),
        ("lxc.rootfs.path = loop:/img", Backend::Loop, "/img", None),
        ("lxc.rootfs = /old/style", Backend::Dir, "/old/style", None),
    ];
    for (t, b, p, up) in table {
        let r = ok(t).rootfs.unwrap();
        assert_eq!(
            (r.backend, r.path.as_str(), r.overlay_upper.as_deref()),
            (*b, *p, *up),
            "{t}"
        );
    }
    let r = ok("lxc.rootfs.path = /r\nlxc.rootfs.options = ro,noexec\nlxc.rootfs.mount = /mnt/x")
        .rootfs
        .unwrap();
    assert!(r.readonly);
    assert_eq!(r.options, vec!["ro", "noexec"]);
    assert_eq!(r.mount.as_deref(), Some(std::path::Path::new("/mnt/x")));
    assert_eq!(r.source.line, 1);
}

#[test]
fn identity_tty_console_log_family() {
    let c = ok("lxc.uts.name = web1\nlxc.arch = i686\nlxc.tty.max = 4\nlxc.tty.dir = lxc\nlxc.pty.max = 1024
lxc.console.path = none\nlxc.console.logfile = /var/log/c.log\nlxc.console.buffer.size = 1M
lxc.log.level = 3\nlxc.log.file = /tmp/l\nlxc.no_new_privs = 1\nlxc.autodev = 0\nlxc.ephemeral = 1
lxc.apparmor.profile = unconfined\nlxc.selinux.context = system_u:system_r:lxc_t:s0\nlxc.seccomp.profile = /x.seccomp\n");
    assert_eq!(c.uts_name.as_ref().map(|s| s.value.as_str()), Some("web1"));
    assert_eq!(c.uts_name.as_ref().unwrap().origin.line, 1);
    assert_eq!(c.arch.as_ref().map(|a| a.value), Some(Personality::Linux32));
    assert_eq!(
        c.tty,
        Tty {
            max: 4,
            dir: Some("lxc".into()),
            pty_max: 1024
        }
    );
    assert!(!c.console.enabled());
    assert_eq!(c.console.buffer_size, Some(1 << 20));
    assert_eq!(c.log.level, Some(LogLevel::Notice));
    assert!(c.no_new_privs && !c.autodev && c.ephemeral);
    assert_eq!(c.lsm.apparmor_profile.as_deref(), Some("unconfined"));
    assert!(c.lsm.selinux_context.is_some());
    assert_eq!(
        c.seccomp.profile.as_deref(),
        Some(std::path::Path::new("/x.seccomp"))
    );
    assert_eq!(ok("lxc.log.level = warn").log.level, Some(LogLevel::Warn));
    assert!(ok("").autodev, "autodev defaults to 1");
    assert!(ok("").console.enabled());
    assert!(err("lxc.arch = z80").contains("unknown architecture"));
    assert!(err("lxc.log.level = 9").contains("0..8"));
}

#[test]
fn signals_table() {
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    let table: &[(&str, i32)] = &[
        ("SIGPWR", libc::SIGPWR),
        ("SIGKILL", 9),
        ("sigterm", 15),
        ("SIGUSR1", libc::SIGUSR1),
        ("9", 9),
        ("SIGRTMIN", rtmin),
        ("SIGRTMIN+3", rtmin + 3),
        ("SIGRTMAX-1", rtmax - 1),
    ];
    for (v, n) in table {
        let c = ok(&format!("lxc.signal.halt = {v}"));
        assert_eq!(c.signals.halt, Some(*n), "{v}");
    }
    let c = ok("lxc.haltsignal = SIGINT\nlxc.stopsignal = 15\nlxc.rebootsignal = SIGTERM");
    assert_eq!(
        (c.signals.halt, c.signals.stop, c.signals.reboot),
        (Some(2), Some(15), Some(15))
    );
    assert_eq!(ok("").signals.halt_or_default(), libc::SIGPWR);
    for bad in [
        "PWR",
        "SIGNOPE",
        "0",
        "65",
        "SIGRTMIN+99",
        "SIGRTMAX-99",
        "SIGRTMIN-1",
    ] {
        let e = err(&format!("lxc.signal.stop = {bad}"));
        assert!(e.contains("lxc.signal.stop = "), "{bad}: {e}");
    }
}

#[test]
fn caps_table() {
    let c =
        ok("lxc.cap.drop = mac_admin mac_override sys_time sys_module sys_rawio\nlxc.cap.drop = 2");
    assert_eq!(c.caps.drop, vec![33, 32, 25, 16, 17, 2]);
    assert_eq!(ok("lxc.cap.drop = SYS_ADMIN").caps.drop, vec![21]);
    assert_eq!(ok("lxc.cap.keep = none").caps.keep, Some(vec![]));
    assert_eq!(
        ok("lxc.cap.keep = sys_admin net_admin").caps.keep,
        Some(vec![21, 12])
    );
    // Clearing one side makes both legal (userns.conf does this).
    assert_eq!(
        ok("lxc.cap.drop = sys_time\nlxc.cap.drop =\nlxc.cap.keep = kill")
            .caps
            .keep,
        Some(vec![5])
    );
    let e = err("lxc.cap.drop = sys_time\nlxc.cap.keep = kill");
    assert!(e.contains("mutually exclusive") && e.contains(":2:"), "{e}");
    assert!(err("lxc.cap.drop = CAP_SYS_TIME").contains("without the CAP_ prefix"));
    assert!(err("lxc.cap.drop = sys_tim").contains("did you mean `sys_time`"));
    assert!(err("lxc.cap.drop = 64").contains("out of range"));
}

#[test]
fn cgroup_settings_in_order_with_clearing_rules() {
    let c = ok("lxc.cgroup.devices.deny = a
lxc.cgroup2.devices.deny = a
lxc.cgroup.devices.allow = c 1:3 rwm
lxc.cgroup2.devices.allow = c 1:3 rwm
lxc.cgroup2.memory.max = 512M
lxc.cgroup.memory.limit_in_bytes = 512M
lxc.cgroup2.devices.allow = c 136:* rwm
lxc.cgroup.dir = mydir
");
    let got: Vec<(CgroupVersion, &str, &str)> = c
        .cgroup
        .iter()
        .map(|s| (s.version, s.key.as_str(), s.value.as_str()))
        .collect();
    use CgroupVersion::*;
    assert_eq!(
        got,
        vec![
            (V1, "devices.deny", "a"),
            (V2, "devices.deny", "a"),
            (V1, "devices.allow", "c 1:3 rwm"),
            (V2, "devices.allow", "c 1:3 rwm"),
            (V2, "memory.max", "512M"),
            (V1, "memory.limit_in_bytes", "512M"),
            (V2, "devices.allow", "c 136:* rwm"),
        ]
    );
    assert_eq!(
        c.other.get("lxc.cgroup.dir").map(|s| s.value.as_str()),
        Some("mydir")
    );
    // `lxc.cgroup2.devices.allow =` clears only that subkey; `lxc.cgroup2 =` clears all v2.
    let c = ok("lxc.cgroup2.devices.deny = a\nlxc.cgroup2.devices.allow = c 1:3 rwm\nlxc.cgroup2.devices.allow =\nlxc.cgroup.memory.x = 1");
    assert_eq!(
        c.cgroup.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
        vec!["devices.deny", "memory.x"]
    );
    let c = ok("lxc.cgroup2.devices.deny = a\nlxc.cgroup.memory.x = 1\nlxc.cgroup2 =");
    assert_eq!(c.cgroup.len(), 1);
    assert_eq!(c.cgroup[0].version, V1);
    assert!(ok("lxc.cgroup.a.b = 1\nlxc.cgroup =\n").cgroup.is_empty());
    assert!(err("lxc.cgroup2.devices.allow = x 1:3 rwm").contains("device type"));
    assert!(err("lxc.cgroup2.devices.allow = c 1:3 rwx").contains("access"));
    assert!(err("lxc.cgroup2 = x").contains("only takes an empty value"));
}

#[test]
fn mounts_table() {
    let c = ok(
        "lxc.mount.entry = /sys/fs/fuse/connections sys/fs/fuse/connections none bind,optional 0 0
lxc.mount.entry = proc dev/.lxc/proc proc create=dir,optional 0 0
lxc.mount.entry = /a\\040b mnt/x none bind,create=file,relative
lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed
lxc.mount.fstab = /var/lib/lxrs/c/fstab
",
    );
    let m = &c.mount.entries;
    assert_eq!(m.len(), 3);
    assert_eq!(
        (
            m[0].source.as_str(),
            m[0].target.as_str(),
            m[0].fstype.as_str()
        ),
        (
            "/sys/fs/fuse/connections",
            "sys/fs/fuse/connections",
            "none"
        )
    );
    assert_eq!(m[0].options, vec!["bind"]);
    assert!(m[0].optional && m[0].create.is_none());
    assert_eq!(m[1].create, Some(CreateKind::Dir));
    assert_eq!(m[2].source, "/a b");
    assert_eq!((m[2].create, m[2].relative), (Some(CreateKind::File), true));
    assert_eq!(m[1].origin.line, 2);
    assert_eq!(c.mount.auto.proc, Some(ProcMode::Mixed));
    assert_eq!(c.mount.auto.sys, Some(SysMode::Mixed));
    assert_eq!(
        c.mount.auto.cgroup,
        Some(CgroupAuto {
            mode: CgroupMountMode::Mixed,
            force: false
        })
    );
    assert!(c.mount.fstab.is_some());
    let a = ok("lxc.mount.auto = proc:rw sys:ro cgroup2:ro:force shmounts:/h:/c")
        .mount
        .auto;
    assert_eq!((a.proc, a.sys), (Some(ProcMode::Rw), Some(SysMode::Ro)));
    assert_eq!(
        a.cgroup,
        Some(CgroupAuto {
            mode: CgroupMountMode::Cgroup2Ro,
            force: true
        })
    );
    assert_eq!(a.shmounts, Some(("/h".into(), Some("/c".into()))));
    assert_eq!(
        ok("lxc.mount.auto = proc\nlxc.mount.auto =\nlxc.mount.auto = sys:rw")
            .mount
            .auto
            .proc,
        None
    );
    assert!(ok("lxc.mount.entry = a b c\nlxc.mount.entry =")
        .mount
        .entries
        .is_empty());
    assert!(err("lxc.mount.auto = proc:weird").contains("unknown mount.auto token"));
    assert!(err("lxc.mount.entry = onlysource").contains("expected"));
    assert!(err("lxc.mount.entry = a b c create=pipe").contains("create="));
}

#[test]
fn fstab_file_is_read_relative_to_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fstab"), "# c\n/x mnt/x none bind 0 0\n\n").unwrap();
    std::fs::write(dir.path().join("config"), "lxc.mount.fstab = fstab\n").unwrap();
    let c = ContainerConfig::load(dir.path().join("config"))
        .unwrap()
        .config;
    let f = c.fstab_entries().unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].target.as_str(), f[0].origin.line), ("mnt/x", 2));
}

#[test]
fn idmap_table() {
    let c = ok("lxc.idmap = u 0 100000 65536\nlxc.id_map = g 0 100000 65536");
    assert_eq!(c.idmap.len(), 2);
    assert_eq!(
        (
            c.idmap[0].kind,
            c.idmap[0].nsid,
            c.idmap[0].hostid,
            c.idmap[0].range
        ),
        (IdKind::Uid, 0, 100000, 65536)
    );
    assert_eq!(c.idmap[1].kind, IdKind::Gid);
    assert!(ok("lxc.idmap = u 0 1 1\nlxc.idmap =").idmap.is_empty());
    for bad in ["x 0 1 1", "u 0 1", "u a 1 1", "u 0 1 0", "u 4294967295 0 2"] {
        assert!(
            err(&format!("lxc.idmap = {bad}")).contains("lxc.idmap = "),
            "{bad}"
        );
    }
}

#[test]
fn prlimit_sysctl_proc_table() {
    let c = ok("lxc.prlimit.nofile = 1024:4096
lxc.prlimit.nproc = unlimited
lxc.prlimit.core = 0
lxc.limit.stack = 8192
lxc.prlimit.nofile = 2048:4096
lxc.sysctl.net.ipv4.ip_forward = 1
lxc.proc.oom_score_adj = 10
");
    let p: Vec<(&str, u32, Option<u64>, Option<u64>)> = c
        .prlimits
        .iter()
        .map(|p| (p.name.as_str(), p.resource, p.soft, p.hard))
        .collect();
    assert_eq!(
        p,
        vec![
            ("nofile", libc::RLIMIT_NOFILE, Some(2048), Some(4096)),
            ("nproc", libc::RLIMIT_NPROC, None, None),
            ("core", libc::RLIMIT_CORE, Some(0), Some(0)),
            ("stack", libc::RLIMIT_STACK, Some(8192), Some(8192)),
        ]
    );
    assert_eq!(
        c.prlimits[0].source.line, 5,
        "the last value is remembered with its line"
    );
    assert_eq!(
        (c.sysctls[0].name.as_str(), c.sysctls[0].value.as_str()),
        ("net.ipv4.ip_forward", "1")
    );
    assert_eq!(
        (c.proc[0].name.as_str(), c.proc[0].value.as_str()),
        ("oom_score_adj", "10")
    );
    assert!(ok("lxc.prlimit.nofile = 1\nlxc.prlimit.nofile =")
        .prlimits
        .is_empty());
    assert!(
        ok("lxc.prlimit.nofile = 1\nlxc.sysctl.a = 1\nlxc.prlimit =\nlxc.sysctl =")
            .prlimits
            .is_empty()
    );
    for bad in [
        "lxc.prlimit.nofile = lots",
        "lxc.prlimit.nofile = 10:5",
        "lxc.prlimit.files = 1",
        "lxc.prlimit.nofile = 1:2:3",
    ] {
        assert!(err(bad).contains(bad.split(" =").next().unwrap()), "{bad}");
    }
}

#[test]
fn init_env_hooks_table() {
    let c = ok("lxc.init.cmd = /sbin/init --log-level='debug x'
lxc.init.uid = 1000
lxc.init.gid = 1000
lxc.init.cwd = /root
lxc.init.groups = 4, 27
lxc.environment = PATH=/bin:/usr/bin
lxc.environment = TERM
lxc.environment.runtime = A=b=c
lxc.hook.pre-start = /bin/pre one
lxc.hook.mount = /bin/m
lxc.hook.pre-start = /bin/pre two
lxc.hook.version = 1
");
    assert_eq!(c.init.argv(), vec!["/sbin/init", "--log-level=debug x"]);
    assert_eq!((c.init.uid, c.init.gid), (Some(1000), Some(1000)));
    assert_eq!(c.init.groups, vec![4, 27]);
    assert_eq!(
        c.environment,
        vec![
            EnvVar {
                name: "PATH".into(),
                value: Some("/bin:/usr/bin".into())
            },
            EnvVar {
                name: "TERM".into(),
                value: None
            },
        ]
    );
    assert_eq!(c.environment_runtime[0].value.as_deref(), Some("b=c"));
    assert_eq!(
        c.hooks
            .iter()
            .map(|h| (h.kind.as_str(), h.command.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("pre-start", "/bin/pre one"),
            ("mount", "/bin/m"),
            ("pre-start", "/bin/pre two"),
        ]
    );
    assert_eq!(c.hook_version, 1);
    assert_eq!(ok("").init.argv(), vec!["/sbin/init"]);
    let c = ok("lxc.hook.start = a\nlxc.hook.stop = b\nlxc.hook.start =\n");
    assert_eq!(c.hooks.len(), 1);
    assert!(ok("lxc.hook.start = a\nlxc.hook.stop = b\nlxc.hook =\n")
        .hooks
        .is_empty());
    assert!(err("lxc.hook.version = 2").contains("0 or 1"));
    assert!(err("lxc.init.cwd = relative").contains("absolute"));
    assert!(err("lxc.init.groups = 4,wheel").contains("wheel"));
    assert!(err("lxc.environment = =x").contains("NAME"));
}

#[test]
fn legacy_renames_map_to_current_fields() {
    let c = ok("lxc.utsname = old
lxc.tty = 2
lxc.pts = 10
lxc.devttydir = lxc
lxc.aa_profile = unconfined
lxc.loglevel = DEBUG
lxc.logfile = /l
lxc.init_cmd = /bin/sh
lxc.console = none
lxc.mount = /f
lxc.pivotdir = x
lxc.kmsg = 0
");
    assert_eq!(c.uts_name.as_ref().unwrap().value, "old");
    assert_eq!(
        c.tty,
        Tty {
            max: 2,
            dir: Some("lxc".into()),
            pty_max: 10
        }
    );
    assert_eq!(c.lsm.apparmor_profile.as_deref(), Some("unconfined"));
    assert_eq!(c.log.level, Some(LogLevel::Debug));
    assert_eq!(c.init.cmd.as_deref(), Some("/bin/sh"));
    assert!(!c.console.enabled());
    assert!(c.mount.fstab.is_some());
    assert_eq!(c.get("lxc.utsname"), vec!["old"]);
    assert_eq!(c.get("lxc.uts.name"), vec!["old"]);
    assert_eq!(c.source_of("lxc.tty.max").map(|s| s.line), Some(2));
    assert_eq!(c.source_of("lxc.tty").map(|s| s.line), Some(2));
}

#[test]
fn missing_equals_and_martians() {
    let e = err("lxc.uts.name\n");
    assert!(
        e.contains("/test/config:1:") && e.contains("key = value"),
        "{e}"
    );
    let l = parse("# c\nnot lxc\n[x]\nlxc.tty.max = 1\n").unwrap();
    assert_eq!(l.warnings.len(), 2);
    assert_eq!(l.warnings[0].source.line, 2);
}

#[test]
fn all_errors_are_reported_in_line_order() {
    let r = ContainerConfig::check_document(
        &Document::parse("lxc.start.auto = 3\nlxc.bogus = 1\nlxc.tty.max = x\n", "/c"),
        ExpandOptions::default(),
    );
    let lines: Vec<usize> = r.errors.iter().map(|e| e.location().unwrap().1).collect();
    assert_eq!(lines, vec![1, 2, 3]);
    assert!(r.config.is_none());
}

#[test]
fn hwaddr_x_in_typed_view_is_randomised_and_valid() {
    let c = ok("lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx");
    let mac = c.net[0].hwaddr.unwrap();
    assert_eq!(&mac[..3], &[0x00, 0x16, 0x3e]);
}

#[test]
fn includes_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::write(d.join("conf.d/20-b.conf"), "lxc.group = b\n").unwrap();
    std::fs::write(d.join("conf.d/10-a.conf"), "lxc.group = a\n").unwrap();
    std::fs::write(d.join("conf.d/a.conf"), "lxc.group = short-name-ok\n").unwrap();
    std::fs::write(d.join("conf.d/.conf"), "lxc.group = too-short\n").unwrap();
    std::fs::write(d.join("conf.d/README"), "not a config\n").unwrap();
    std::fs::write(d.join("conf.d/x.conf.disabled"), "lxc.group = disabled\n").unwrap();
    std::fs::write(
        d.join("common.conf"),
        "lxc.tty.max = 4\nlxc.cap.drop = sys_time\n",
    )
    .unwrap();
    std::fs::write(
        d.join("config"),
        "lxc.include = common.conf\nlxc.include = conf.d/\nlxc.include = /nonexistent-dir-lxrs/\nlxc.cap.drop =\nlxc.group = top\n",
    )
    .unwrap();
    let l = ContainerConfig::load(d.join("config")).unwrap();
    assert_eq!(
        l.config.groups,
        vec!["a", "b", "short-name-ok", "top"],
        "sorted directory entries, names >= 6 chars"
    );
    assert_eq!(l.config.tty.max, 4);
    assert!(
        l.config.caps.drop.is_empty(),
        "empty value clears what an include set"
    );
    let src = &l
        .config
        .entries
        .iter()
        .find(|e| e.key == "lxc.tty.max")
        .unwrap()
        .source;
    assert!(src.file.ends_with("common.conf") && src.line == 1);
    // Missing include file is an error naming the including line.
    std::fs::write(
        d.join("bad"),
        "lxc.tty.max = 1\nlxc.include = /nonexistent-lxrs.conf\n",
    )
    .unwrap();
    let e = ContainerConfig::load(d.join("bad"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad:2: lxc.include = /nonexistent-lxrs.conf: cannot include"),
        "{e}"
    );
    // Errors inside included files propagate, with the included file's location.
    std::fs::write(d.join("broken.conf"), "\nlxc.start.auto = 7\n").unwrap();
    std::fs::write(d.join("top2"), "lxc.include = broken.conf\n").unwrap();
    let e = ContainerConfig::load(d.join("top2"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.conf:2: lxc.start.auto = 7"), "{e}");
    // Include loops are caught.
    std::fs::write(d.join("loop1.conf"), "lxc.include = loop2.conf\n").unwrap();
    std::fs::write(d.join("loop2.conf"), "lxc.include = loop1.conf\n").unwrap();
    let e = ContainerConfig::load(d.join("loop1.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("include loop"), "{e}");
}

#[test]
fn expanded_render_reparses_to_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inc.conf"),
        "lxc.cgroup2.devices.deny = a\nlxc.cap.drop = sys_time\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config"),
        "lxc.include = inc.conf\nlxc.utsname = \" spaced \"\nlxc.network.type = veth\nlxc.network.ipv4 = 10.0.0.2/24\nlxc.rootfs = /r\n",
    )
    .unwrap();
    let c = ContainerConfig::load(dir.path().join("config"))
        .unwrap()
        .config;
    let shown = c.render_expanded();
    assert_eq!(
        shown,
        "lxc.cgroup2.devices.deny = a\nlxc.cap.drop = sys_time\nlxc.uts.name = \" spaced \"\nlxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.2/24\nlxc.rootfs.path = dir:/r\n"
    );
    let again = ContainerConfig::from_document(
        &Document::parse(&shown, dir.path().join("config")),
        ExpandOptions::default(),
    )
    .unwrap();
    assert_eq!(
        again.config.net,
        c.net
            .iter()
            .map(|n| {
                let mut n = n.clone();
                n.source.line = 4;
                n
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(again.config.uts_name.unwrap().value, " spaced ");
    assert!(again.warnings.is_empty());
}
