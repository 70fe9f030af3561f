//! Root tests of the host network service, on bridges in namespaces the tests create, with a
//! real dnsmasq and real nftables. DHCP traffic stays between two test-owned namespaces.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use common::TestNs;
use lxrs_netns::service::{self, NetConfig};
use lxrs_netns::*;

/// Takes the service down and kills its dnsmasq whatever happened (a live dnsmasq would keep
/// the test namespace alive).
struct Guard<'a> {
    cfg: NetConfig,
    ns: &'a NetNs,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = service::down(&self.cfg, Some(self.ns));
        if let Ok(p) = std::fs::read_to_string(self.cfg.pid_file()) {
            if let Ok(pid) = p.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn config(dir: &Path, table: &str) -> NetConfig {
    NetConfig {
        run_dir: dir.to_path_buf(),
        nft_table: table.into(),
        no_upstream_dns: true,
        dhcp_ping: false,
        ..Default::default()
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

fn nft_tables(ns: &TestNs) -> String {
    let out = ns.run(|| {
        std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn ip_forward(ns: &TestNs) -> String {
    ns.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap())
        .trim()
        .to_string()
}

/// A new namespace copies ip_forward from the initial one (devconf_inherit_init_net): start
/// every test from "off", whatever the machine's own setting.
fn reset_ip_forward(ns: &TestNs) {
    ns.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "0").unwrap());
    assert_eq!(ip_forward(ns), "0");
}

/// Send a DHCPDISCOVER out of `ifname` (no address yet) and return the offered address.
fn dhcp_discover(ct: &TestNs, ifname: &str, mac: MacAddr) -> Ipv4Addr {
    ct.run(|| {
        let sock = UdpSocket::bind("0.0.0.0:68").unwrap();
        sock.set_broadcast(true).unwrap();
        nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(ifname),
        )
        .unwrap();
        // A just-raised link drops its first frames until the kernel activates its queue
        // (linkwatch): resend like a DHCP client does, quickly.
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let xid: u32 = 0x1a2b3c4d;
        let mut p = vec![0u8; 300];
        p[0] = 1; // BOOTREQUEST
        p[1] = 1; // ethernet
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[10] = 0x80; // broadcast flag: the offer comes back as a broadcast
        p[28..34].copy_from_slice(&mac.0);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        p[240..243].copy_from_slice(&[53, 1, 1]); // DHCPDISCOVER
        p[243] = 255;
        let mut buf = [0u8; 1500];
        for _ in 0..25 {
            sock.send_to(&p, "255.255.255.255:67").unwrap();
            while let Ok(n) = sock.recv(&mut buf) {
                let r = &buf[..n];
                if n >= 244
                    && r[0] == 2
                    && r[4..8] == xid.to_be_bytes()
                    && r[236..240] == [99, 130, 83, 99]
                {
                    // option 53 = 2 (DHCPOFFER)
                    let mut o = 240;
                    let mut is_offer = false;
                    while o + 1 < n && r[o] != 255 {
                        if r[o] == 0 {
                            o += 1;
                            continue;
                        }
                        if r[o] == 53 && r[o + 2] == 2 {
                            is_offer = true;
                        }
                        o += 2 + r[o + 1] as usize;
                    }
                    assert!(is_offer, "reply is not an offer");
                    return Ipv4Addr::new(r[16], r[17], r[18], r[19]);
                }
            }
        }
        panic!("no DHCPOFFER within 25 tries (5 s)");
    })
}

#[test]
fn up_status_idempotence_dhcp_and_down() {
    let host = TestNs::new();
    reset_ip_forward(&host);
    let mut ct = TestNs::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "lxrs_test");
    let _g = Guard {
        cfg: cfg.clone(),
        ns: &host.ns,
    };
    let fwd_here = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();

    let before = service::status(&cfg, Some(&host.ns)).unwrap();
    assert!(
        !before.is_up()
            && before.bridge.is_none()
            && before.dnsmasq_pid.is_none()
            && !before.recorded_up
    );

    let st = service::up(&cfg, Some(&host.ns)).unwrap();
    assert!(st.is_up(), "{st:?}");
    let br = st.bridge.clone().unwrap();
    assert_eq!(
        (br.name.as_str(), br.kind.as_deref()),
        ("lxcbr0", Some("bridge"))
    );
    assert_eq!(br.mac.unwrap().to_string(), "10:66:6a:00:00:00");
    let pid = st.dnsmasq_pid.unwrap();
    assert!(alive(pid));
    assert!(
        NetNs::from_pid(pid).unwrap().same_as(&host.ns).unwrap(),
        "dnsmasq runs in the bridge's namespace"
    );
    assert!(st.foreign_dhcp.is_none());
    assert_eq!(ip_forward(&host), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        fwd_here,
        "caller's namespace untouched"
    );
    assert!(nft_tables(&host).contains("table inet lxrs_test"));

    // Twice is once.
    let again = service::up(&cfg, Some(&host.ns)).unwrap();
    assert_eq!(again.dnsmasq_pid, Some(pid));
    assert_eq!(nft_tables(&host).matches("lxrs_test").count(), 1);
    let mut hn = Netlink::in_ns(host.ns.as_fd()).unwrap();
    let n_addr = hn
        .addresses()
        .unwrap()
        .iter()
        .filter(|a| a.addr == std::net::IpAddr::V4(cfg.addr))
        .count();
    assert_eq!(n_addr, 1);

    // A container on the bridge gets an address from the range.
    let mac: MacAddr = "00:16:3e:00:00:07".parse().unwrap();
    hn.create_veth(&VethSpec {
        name: "vethT1",
        opts: LinkOpts {
            master: Some(br.index),
            up: true,
            ..Default::default()
        },
        peer_name: "eth0",
        peer: LinkOpts {
            mac: Some(mac),
            netns: Some(NsRef::Fd(ct.ns.as_fd())),
            ..Default::default()
        },
    })
    .unwrap();
    ct.nl.set_up("eth0").unwrap();
    let offered = dhcp_discover(&ct, "eth0", mac);
    assert!(
        offered > Ipv4Addr::new(10, 0, 3, 1) && offered <= Ipv4Addr::new(10, 0, 3, 254),
        "offer {offered} in 10.0.3.2-254"
    );

    // Down with a port still on the bridge: bridge kept (down, address removed), rest gone.
    service::down(&cfg, Some(&host.ns)).unwrap();
    assert!(!alive(pid), "dnsmasq stopped");
    let b = hn.link("lxcbr0").unwrap();
    assert!(!b.is_up());
    assert!(!hn
        .addresses()
        .unwrap()
        .iter()
        .any(|a| a.index == b.index && a.addr.is_ipv4()));
    assert!(!nft_tables(&host).contains("lxrs_test"));
    assert_eq!(ip_forward(&host), "0", "ip_forward restored");
    assert!(!cfg.record_file().exists());
    service::down(&cfg, Some(&host.ns)).unwrap(); // nothing recorded: no-op

    // Up again reuses the bridge it did not create this time, and down leaves it.
    hn.delete_link("vethT1").unwrap();
    let st = service::up(&cfg, Some(&host.ns)).unwrap();
    assert!(st.is_up());
    service::down(&cfg, Some(&host.ns)).unwrap();
    assert!(
        hn.find_link("lxcbr0").unwrap().is_some(),
        "a bridge up() did not create is kept"
    );
}

#[test]
fn a_second_dhcp_server_is_detected_and_not_started() {
    let host = TestNs::new();
    reset_ip_forward(&host);
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let first = config(d1.path(), "lxrs_one");
    let second = config(d2.path(), "lxrs_two");
    let _g1 = Guard {
        cfg: first.clone(),
        ns: &host.ns,
    };
    let _g2 = Guard {
        cfg: second.clone(),
        ns: &host.ns,
    };

    let s1 = service::up(&first, Some(&host.ns)).unwrap();
    let pid = s1.dnsmasq_pid.unwrap();
    let s2 = service::up(&second, Some(&host.ns)).unwrap();
    let f = s2.foreign_dhcp.clone().expect("the first dnsmasq is seen");
    assert_eq!((f.pid, f.program.as_str()), (pid, "dnsmasq"));
    assert!(f.cmdline.contains("--interface=lxcbr0"));
    assert_eq!(s2.dnsmasq_pid, None, "no second dnsmasq");
    assert!(!second.pid_file().exists());
    assert!(s2.is_up(), "served, by the other server");

    // Taking the second down removes only what it made (its table), not the first's.
    service::down(&second, Some(&host.ns)).unwrap();
    assert!(alive(pid));
    assert!(nft_tables(&host).contains("lxrs_one") && !nft_tables(&host).contains("lxrs_two"));
    assert!(service::status(&first, Some(&host.ns)).unwrap().is_up());

    // A dnsmasq for a bridge of the same name in another namespace is not a conflict.
    let other = TestNs::new();
    let d3 = tempfile::tempdir().unwrap();
    let third = config(d3.path(), "lxrs_three");
    let _g3 = Guard {
        cfg: third.clone(),
        ns: &other.ns,
    };
    let s3 = service::up(&third, Some(&other.ns)).unwrap();
    assert!(
        s3.foreign_dhcp.is_none() && s3.dnsmasq_pid.is_some(),
        "{s3:?}"
    );

    service::down(&first, Some(&host.ns)).unwrap();
    assert!(!alive(pid));
    let mut hn = Netlink::in_ns(host.ns.as_fd()).unwrap();
    assert!(
        hn.find_link("lxcbr0").unwrap().is_none(),
        "created by up, no ports: deleted"
    );
}

#[test]
fn bad_companion_is_a_clear_error() {
    let host = TestNs::new();
    reset_ip_forward(&host);
    let dir = tempfile::tempdir().unwrap();
    let cfg = NetConfig {
        nft_bin: "/nonexistent/nft".into(),
        ..config(dir.path(), "lxrs_bad")
    };
    let _g = Guard {
        cfg: cfg.clone(),
        ns: &host.ns,
    };
    let e = service::up(&cfg, Some(&host.ns)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/nft: load ruleset: cannot run"),
        "{e}"
    );
    // What was made before the failure is recorded, so down removes it.
    assert!(cfg.record_file().exists());
    assert_eq!(ip_forward(&host), "1");
    service::down(&cfg, Some(&host.ns)).unwrap(); // the table was never made: not touched
    assert_eq!(ip_forward(&host), "0");
    let mut hn = Netlink::in_ns(host.ns.as_fd()).unwrap();
    assert!(
        hn.find_link("lxcbr0").unwrap().is_none(),
        "bridge removed despite the nft failure"
    );
}
