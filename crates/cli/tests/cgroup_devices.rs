//! The device filter on both cgroup drivers (reference §9, §10.4, §6.1): default deny plus
//! LXC's allow list inside a running container, and `lxrs device add` / `del` of a node made
//! with mknod on the host. Root only.

mod cgroup_common;
use cgroup_common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// c 1:11 (kmsg): outside LXC's allow list, present on every kernel, harmless to open for
/// reading.
const MAJOR: u32 = 1;
const MINOR: u32 = 11;

fn devices_case(driver: &'static str) {
    let env = Env::new(driver);
    let name = env.name("cgdev");
    let init = env.start(&name, "");
    let root = format!("/proc/{init}/root");

    // Allowed by LXC's list: /dev/null opens.
    assert_eq!(env.probe(init, "/dev/null"), "OPENED");
    // Not in the list: a node of it (made from the host) cannot be opened inside.
    let inside_node = format!("{root}/lxrs-test-kmsg");
    nix::sys::stat::mknod(
        inside_node.as_str(),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(MAJOR.into(), MINOR.into()),
    )
    .unwrap();
    let denied = env.probe(init, "/lxrs-test-kmsg");
    assert!(denied.contains("Operation not permitted"), "{denied}");

    // device add SRC DEST: the source's type, mode and numbers appear at DEST, usable.
    let src = env.dir.path().join("host-kmsg");
    nix::sys::stat::mknod(
        &src,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(MAJOR.into(), MINOR.into()),
    )
    .unwrap();
    // An unusual mode, set after mknod so the umask does not interfere.
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o604)).unwrap();
    env.ok(&[
        "device",
        "-n",
        &name,
        "add",
        src.to_str().unwrap(),
        "/dev/lxrs-test/kmsg",
    ]);
    let md = std::fs::metadata(format!("{root}/dev/lxrs-test/kmsg")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.mode() & 0o7777, 0o604);
    assert_eq!(
        md.rdev(),
        nix::sys::stat::makedev(MAJOR.into(), MINOR.into())
    );
    assert_eq!(env.probe(init, "/dev/lxrs-test/kmsg"), "OPENED");
    // The rule follows the device: the node made earlier opens now too.
    assert_eq!(env.probe(init, "/lxrs-test-kmsg"), "OPENED");

    // device del: the node goes and the rule with it.
    env.ok(&["device", "-n", &name, "del", "/dev/lxrs-test/kmsg"]);
    assert!(std::fs::symlink_metadata(format!("{root}/dev/lxrs-test/kmsg")).is_err());
    let denied = env.probe(init, "/lxrs-test-kmsg");
    assert!(denied.contains("Operation not permitted"), "{denied}");
    // The default list is untouched.
    assert_eq!(env.probe(init, "/dev/null"), "OPENED");

    // Clear errors: a missing source, a source that is not a device node, a stopped container.
    let missing = env.run(&["device", "-n", &name, "add", "/nonexistent/lxrs-dev"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("/nonexistent/lxrs-dev"),
        "{}",
        text(&missing.stderr)
    );
    let regular = env.dir.path().join("regular-file");
    std::fs::write(&regular, b"x").unwrap();
    let out = env.run(&["device", "-n", &name, "add", regular.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a device node"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["stop", "-n", &name, "-k"]);
    let out = env.run(&["device", "-n", &name, "add", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn device_filter_and_device_add_del_v1() {
    devices_case("v1");
}

#[test]
fn device_filter_and_device_add_del_v2() {
    devices_case("v2");
}

/// §6.2: `device add` of a host interface moves it in (set down, renamed to DEST in the same
/// message); `device del` moves it back to the host under the given name. The veth's peer
/// lives in a scratch namespace: when the test ends (or fails) dropping that namespace
/// destroys the pair, wherever its other end is.
#[test]
fn device_add_del_moves_a_network_interface() {
    use lxrs_netns::{random_ifname, LinkOpts, NetNs, Netlink, NsRef, VethSpec};
    use std::os::fd::AsFd;
    let env = Env::new("v1");
    let name = env.name("cgnic");
    let init = env.start(&name, "");
    let scratch = NetNs::create().unwrap();
    let host_end = random_ifname("lxt");
    let mut host = Netlink::new().unwrap();
    host.create_veth(&VethSpec {
        name: &host_end,
        opts: LinkOpts {
            up: true,
            ..Default::default()
        },
        peer_name: "peer0",
        peer: LinkOpts {
            netns: Some(NsRef::Fd(scratch.as_fd())),
            ..Default::default()
        },
    })
    .unwrap();
    struct DeleteOnDrop(String);
    impl Drop for DeleteOnDrop {
        fn drop(&mut self) {
            if let Ok(mut nl) = Netlink::new() {
                let _ = nl.delete_link(self.0.as_str());
            }
        }
    }
    let _guard = DeleteOnDrop(host_end.clone());

    env.ok(&["device", "-n", &name, "add", &host_end, "eth7"]);
    assert!(
        host.find_link(host_end.as_str()).unwrap().is_none(),
        "moved away from the host"
    );
    let mut ct = Netlink::for_pid(init as u32).unwrap();
    let link = ct
        .find_link("eth7")
        .unwrap()
        .expect("in the container, renamed");
    assert_eq!(
        link.flags & libc::IFF_UP as u32,
        0,
        "set down, not brought up again"
    );

    env.ok(&["device", "-n", &name, "del", "eth7", &host_end]);
    assert!(ct.find_link("eth7").unwrap().is_none());
    assert!(
        host.find_link(host_end.as_str()).unwrap().is_some(),
        "back on the host"
    );
}
