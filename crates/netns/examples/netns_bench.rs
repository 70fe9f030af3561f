//! Start/ls-path timings of lxrs-netns, in namespaces this program creates (root only).
//!
//! `cargo run --release -p lxrs-netns --example netns_bench [RUNS]` prints medians (µs):
//! * `veth_one_message`: host end (up, on a bridge, MAC/MTU) + peer born in the container
//!   namespace with its name/MAC/MTU, all in one RTM_NEWLINK — what the runtime does;
//! * `veth_lxc_sequence`: LXC's order: create the pair here, move the peer (renamed in the same
//!   message), set the host end up — three requests on the same socket;
//! * `veth_ip_commands`: the same three steps with iproute2's `ip` (fork+exec), as a reference;
//! * `socket_in_ns`: opening a socket bound in another namespace (setns, socket, setns back);
//! * `ns_addresses_20`: `ns_addresses(pid)` over 20 container namespaces, as `ls --fancy` does.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lxrs_netns::*;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn p90(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() * 9 / 10].as_secs_f64() * 1e6
}

struct Parked(Child);
impl Drop for Parked {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn park(ns: &NetNs) -> Parked {
    use std::os::fd::AsRawFd;
    let fd = ns.as_fd().as_raw_fd();
    let mut cmd = Command::new("sleep");
    cmd.arg("1000").stdin(Stdio::null());
    // SAFETY: only setns(2), async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Parked(cmd.spawn().expect("spawn"))
}

fn ip_cmd(host: &NetNs, args: &[&str]) {
    use std::os::fd::AsRawFd;
    let fd = host.as_fd().as_raw_fd();
    let mut cmd = Command::new("ip");
    cmd.args(args);
    // SAFETY: only setns(2), async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let st = cmd.status().expect("run ip");
    assert!(st.success(), "ip {args:?}");
}

fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let host = NetNs::create()?;
    let ct = NetNs::create()?;
    let ct_proc = park(&ct);
    let mut h = Netlink::in_ns(host.as_fd())?;
    let mut c = Netlink::in_ns(ct.as_fd())?;
    h.create_bridge(
        "br0",
        &LinkOpts {
            up: true,
            ..Default::default()
        },
    )?;
    let br = h.link("br0")?.index;

    let mut one = Vec::new();
    let mut seq = Vec::new();
    let mut ipc = Vec::new();
    for _ in 0..runs {
        let name = random_ifname("veth");
        let t = Instant::now();
        h.create_veth(&VethSpec {
            name: &name,
            opts: LinkOpts {
                mac: Some(MacAddr::random().with_first_octet(0xfe)),
                mtu: Some(1500),
                master: Some(br),
                up: true,
                netns: None,
            },
            peer_name: "eth0",
            peer: LinkOpts {
                mac: Some(MacAddr::random()),
                mtu: Some(1500),
                netns: Some(NsRef::Fd(ct.as_fd())),
                ..Default::default()
            },
        })?;
        one.push(t.elapsed());
        h.delete_link(name.as_str())?;

        let name = random_ifname("veth");
        let peer = random_ifname("veth");
        let t = Instant::now();
        h.create_veth(&VethSpec {
            name: &name,
            opts: LinkOpts {
                master: Some(br),
                ..Default::default()
            },
            peer_name: &peer,
            peer: LinkOpts::default(),
        })?;
        h.move_link(peer.as_str(), NsRef::Fd(ct.as_fd()), Some("eth0"))?;
        h.set_up(name.as_str())?;
        seq.push(t.elapsed());
        h.delete_link(name.as_str())?;
    }
    let ip_runs = runs.min(50);
    let pid = ct_proc.0.id().to_string();
    for _ in 0..ip_runs {
        let name = random_ifname("veth");
        let peer = random_ifname("veth");
        let t = Instant::now();
        ip_cmd(
            &host,
            &[
                "link", "add", &name, "master", "br0", "type", "veth", "peer", "name", &peer,
            ],
        );
        ip_cmd(
            &host,
            &["link", "set", &peer, "netns", &pid, "name", "eth0"],
        );
        ip_cmd(&host, &["link", "set", &name, "up"]);
        ipc.push(t.elapsed());
        h.delete_link(name.as_str())?;
    }
    assert!(c.find_link("eth0")?.is_none(), "cleaned up");

    let mut sock = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let s = Netlink::in_ns(ct.as_fd())?;
        sock.push(t.elapsed());
        drop(s);
    }

    // 20 containers, each with eth0 (v4 + global v6) on br0.
    let mut cts = Vec::new();
    for i in 0..20u8 {
        let ns = NetNs::create()?;
        let p = park(&ns);
        let name = format!("vethct{i}");
        h.create_veth(&VethSpec {
            name: &name,
            opts: LinkOpts {
                master: Some(br),
                up: true,
                ..Default::default()
            },
            peer_name: "eth0",
            peer: LinkOpts {
                netns: Some(NsRef::Fd(ns.as_fd())),
                ..Default::default()
            },
        })?;
        let mut n = Netlink::in_ns(ns.as_fd())?;
        n.set_up("eth0")?;
        n.add_address("eth0", format!("10.0.3.{}", 10 + i).parse().unwrap(), 24)?;
        n.add_address("eth0", format!("fd42::{}", 10 + i).parse().unwrap(), 64)?;
        n.set_up("lo")?;
        cts.push((ns, p));
    }
    let mut ls = Vec::new();
    for _ in 0..runs.min(100) {
        let t = Instant::now();
        let mut total = 0;
        for (_, p) in &cts {
            total += ns_addresses(p.0.id())?.len();
        }
        ls.push(t.elapsed());
        assert_eq!(total, 40);
    }

    println!("runs={runs} (ip: {ip_runs}, ls: {})", ls.len());
    println!(
        "veth_one_message   median {:8.1} us  p90 {:8.1} us",
        median(one.clone()),
        p90(one)
    );
    println!(
        "veth_lxc_sequence  median {:8.1} us  p90 {:8.1} us",
        median(seq.clone()),
        p90(seq)
    );
    println!(
        "veth_ip_commands   median {:8.1} us  p90 {:8.1} us",
        median(ipc.clone()),
        p90(ipc)
    );
    println!(
        "socket_in_ns       median {:8.1} us  p90 {:8.1} us",
        median(sock.clone()),
        p90(sock)
    );
    println!(
        "ns_addresses_20    median {:8.1} us  p90 {:8.1} us",
        median(ls.clone()),
        p90(ls)
    );
    Ok(())
}
