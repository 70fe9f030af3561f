//! `config upgrade` and the system config.

use lxrs_config::*;

#[test]
fn upgrade_rewrites_legacy_keys_keeping_everything_else() {
    let before = "# header comment
lxc.network.type = veth
lxc.network.flags = up
lxc.network.link = lxcbr0
  lxc.network.hwaddr=00:16:3e:00:00:01
#lxc.network.ipv4 = 10.0.3.50/24

lxc.network.type = phys
lxc.network.link = eth2
lxc.network.ipv4 = 10.0.0.5/24
lxc.network.ipv4.gateway = 10.0.0.1
lxc.rootfs = /var/lib/lxc/p1/rootfs
lxc.rootfs.backend = dir
lxc.utsname = p1
# lxc.aa_profile = unconfined
lxc.tty = 4
lxc.pts = 1024
lxc.limit.nofile = 10
lxc.pivotdir = lxc_putold
lxc.kmsg = 0
lxc.haltsignal = SIGPWR
lxc.id_map = u 0 100000 65536
lxc.mount = /var/lib/lxc/p1/fstab
lxc.mount.entry = proc proc proc defaults 0 0
martian stays
lxc.start.auto = 1";
    let after = "# header comment
lxc.net.0.type = veth
lxc.net.0.flags = up
lxc.net.0.link = lxcbr0
  lxc.net.0.hwaddr=00:16:3e:00:00:01
#lxc.net.0.ipv4.address = 10.0.3.50/24

lxc.net.1.type = phys
lxc.net.1.link = eth2
lxc.net.1.ipv4.address = 10.0.0.5/24
lxc.net.1.ipv4.gateway = 10.0.0.1
lxc.rootfs.path = dir:/var/lib/lxc/p1/rootfs
lxc.uts.name = p1
# lxc.apparmor.profile = unconfined
lxc.tty.max = 4
lxc.pty.max = 1024
lxc.prlimit.nofile = 10
lxc.signal.halt = SIGPWR
lxc.idmap = u 0 100000 65536
lxc.mount.fstab = /var/lib/lxc/p1/fstab
lxc.mount.entry = proc proc proc defaults 0 0
martian stays
lxc.start.auto = 1";
    let (doc, rep) = upgrade_document(&Document::parse(before, "/c"));
    assert_eq!(doc.to_string(), after);
    assert_eq!(rep.removed, 3);
    assert!(rep.notes.is_empty());
    // The result has no legacy keys and means the same.
    let old =
        ContainerConfig::from_document(&Document::parse(before, "/c"), ExpandOptions::default())
            .unwrap();
    let new = ContainerConfig::from_document(&doc, ExpandOptions::default()).unwrap();
    assert!(
        new.warnings.iter().all(|w| !w.message.contains("legacy")),
        "{:?}",
        new.warnings
    );
    assert_eq!(old.config.render_expanded(), new.config.render_expanded());
    // Idempotent.
    let (again, rep2) = upgrade_document(&doc);
    assert_eq!(again.to_string(), after);
    assert_eq!((rep2.changed, rep2.removed), (0, 0));
}

#[test]
fn upgrade_backend_prefix_and_counter_after_existing_nics() {
    let (d, _) = upgrade_document(&Document::parse(
        "lxc.net.0.type = veth\nlxc.rootfs.backend = lvm\nlxc.rootfs = /dev/vg/c1\nlxc.network.type = macvlan\nlxc.network.macvlan.mode = bridge\nlxc.network.type =\n",
        "/c",
    ));
    assert_eq!(
        d.to_string(),
        "lxc.net.0.type = veth\nlxc.rootfs.path = lvm:/dev/vg/c1\nlxc.net.1.type = macvlan\nlxc.net.1.macvlan.mode = bridge\nlxc.net =\n"
    );
    let (_, rep) = upgrade_document(&Document::parse("lxc.network.link = br0\n", "/c"));
    assert_eq!(rep.notes.len(), 1);
    assert_eq!(rep.notes[0].source.line, 1);
}

#[test]
fn upgrade_file_writes_backup_first() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config");
    let orig = "lxc.utsname = a\r\n# keep\r\n";
    std::fs::write(&p, orig).unwrap();
    let rep = upgrade_file(&p).unwrap();
    assert_eq!(
        rep.backup.as_deref(),
        Some(dir.path().join("config.backup").as_path())
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.backup")).unwrap(),
        orig
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "lxc.uts.name = a\r\n# keep\r\n"
    );
    // Nothing to do: no second backup overwrite, file untouched.
    std::fs::remove_file(dir.path().join("config.backup")).unwrap();
    let rep = upgrade_file(&p).unwrap();
    assert!(rep.backup.is_none());
    assert!(!dir.path().join("config.backup").exists());
}

#[test]
fn hwaddr_expansion_follows_section_1_4() {
    let mut seq = (0u8..=255).cycle();
    let mut rng = || seq.next().unwrap();
    // index 1 uses rand & 0x0E (unicast), others rand & 0x0F.
    assert_eq!(expand_hwaddr_with("xx:xx:xx", &mut rng), "00:23:45");
    let mut ff = || 0xffu8;
    assert_eq!(
        expand_hwaddr_with("xX:16:3e:xx:xx:xx", &mut ff),
        "fe:16:3e:ff:ff:ff"
    );
    assert_eq!(
        expand_hwaddr_with("00:16:3e:12:34:56", &mut ff),
        "00:16:3e:12:34:56"
    );
    for _ in 0..200 {
        let m = parse_mac(&expand_hwaddr("xx:xx:xx:xx:xx:xx")).unwrap();
        assert_eq!(m[0] & 1, 0, "unicast");
    }
    // Document helper: only hwaddr lines change, only the x chars.
    let text = "# lxc.net.0.hwaddr = xx\nlxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\r\nlxc.network.hwaddr = \"10:66:6a:XX:xx:xx\"\nlxc.environment = hwaddr=xx\n";
    let mut d = Document::parse(text, "/c");
    assert_eq!(expand_document_hwaddrs(&mut d), 2);
    let out = d.to_string();
    let ol: Vec<&str> = out.split_inclusive('\n').collect();
    let il: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!((ol[0], ol[1], ol[4]), (il[0], il[1], il[4]));
    assert!(
        ol[2].starts_with("lxc.net.0.hwaddr = 00:16:3e:")
            && ol[2].ends_with("\r\n")
            && !ol[2]["lxc.net.0.hwaddr = ".len()..].contains('x')
    );
    assert!(ol[3].starts_with("lxc.network.hwaddr = \"10:66:6a:") && ol[3].ends_with("\"\n"));
    assert!(parse_mac(d.get("lxc.net.0.hwaddr").unwrap()).is_ok());
}

#[test]
fn system_config() {
    let s = SystemConfig::parse(
        "# system\nlxc.lxcpath = /srv/lxc\nlxc.default_config = /etc/lxrs/default.conf\nlxc.cgroup.use = memory, cpu\nlxc.cgroup.pattern = lxc/%n\nlxc.bdev.lvm.vg = vg0\nlxc.bdev.zfs.root = tank/lxc\n",
        "/etc/lxrs/lxrs.conf",
    )
    .unwrap();
    assert_eq!(s.lxcpath_or_default(), std::path::PathBuf::from("/srv/lxc"));
    assert_eq!(
        s.cgroup_use,
        Some(vec!["memory".to_string(), "cpu".to_string()])
    );
    assert_eq!(s.cgroup_pattern_or_default(), "lxc/%n");
    assert_eq!(
        (s.lvm_vg.as_deref(), s.zfs_root.as_deref()),
        (Some("vg0"), Some("tank/lxc"))
    );
    let d = SystemConfig::load("/nonexistent/lxrs.conf").unwrap();
    assert_eq!(
        d.lxcpath_or_default(),
        std::path::PathBuf::from("/var/lib/lxrs")
    );
    let e = SystemConfig::parse("lxc.lxcpth = /x\n", "/s")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/s:1: unknown configuration key `lxc.lxcpth` (did you mean `lxc.lxcpath`?)"),
        "{e}"
    );
    // Container keys are not system keys.
    assert!(SystemConfig::parse("lxc.uts.name = x\n", "/s").is_err());
    assert!(SystemConfig::parse("lxc.lxcpath = relative\n", "/s").is_err());
}
