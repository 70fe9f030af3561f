//! `lxrs net up|status|down` and DHCP end to end, inside a network namespace the test creates as
//! its host: dnsmasq (DNS forwarding off) hands a busybox container a 10.0.3.x lease, `ls
//! --fancy` shows it, the container reaches the bridge; after `net down` no bridge, nftables
//! table or dnsmasq is left.

mod net_common;
use net_common::*;
use std::process::{Command, Stdio};

fn nft_tables(env: &Env) -> String {
    let mut c = Command::new("nft");
    c.args(["list", "tables"]).stdin(Stdio::null());
    env.enter_host(&mut c);
    text(&c.output().unwrap().stdout)
}

#[test]
fn dhcp_lease_from_lxrs_net() {
    let mut env = Env::new();
    let cfg = env.net_config("no_upstream_dns = true\ndhcp_ping = false\n");
    let cfg = cfg.to_str().unwrap().to_string();
    let before = env.host_links();

    let out = env.run(&["net", "status", "--config", &cfg]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "down before up: {}",
        text(&out.stdout)
    );
    let up = env.ok(&["net", "up", "--config", &cfg]);
    assert!(up.contains("lxcbr0") && up.contains("dnsmasq pid"), "{up}");
    let st = env.ok(&["net", "status", "--config", &cfg]);
    assert!(
        st.contains("10.0.3.1/24") && st.contains("state:     up"),
        "{st}"
    );
    assert!(nft_tables(&env).contains("table inet lxrs"));
    let pid: i32 = std::fs::read_to_string(env.dir.path().join("net/dnsmasq.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    // Idempotent.
    env.ok(&["net", "up", "--config", &cfg]);
    let pid2: i32 = std::fs::read_to_string(env.dir.path().join("net/dnsmasq.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, pid2, "one dnsmasq");

    env.create(
        "d1",
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n",
    );
    let out = env.start("d1");
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    let mut lease = String::new();
    env.wait_for("a DHCP lease shown by ls --fancy", 40, || {
        let ls = env.ok(&["ls", "--fancy"]);
        match ls
            .lines()
            .find(|l| l.starts_with("d1"))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("10.0.3.")))
        {
            Some(ip) => {
                lease = ip.trim_end_matches(',').to_string();
                true
            }
            None => false,
        }
    });
    let last: u8 = lease.rsplit('.').next().unwrap().parse().unwrap();
    assert!((2..=254).contains(&last), "from the range: {lease}");
    let leases = std::fs::read_to_string(env.dir.path().join("net/dnsmasq.lxcbr0.leases")).unwrap();
    assert!(
        leases.contains(&lease),
        "dnsmasq's lease file has it: {leases}"
    );
    let ping = env.exec_in("d1", &["ping", "-c1", "-W2", "10.0.3.1"]);
    assert!(
        ping.status.success(),
        "ping: {}{}",
        text(&ping.stdout),
        text(&ping.stderr)
    );

    env.ok(&["stop", "-n", "d1", "-k"]);
    env.ok(&["net", "down", "--config", &cfg]);
    assert!(!alive(pid), "dnsmasq stopped");
    assert!(!nft_tables(&env).contains("lxrs"), "nft table removed");
    assert_eq!(env.host_links(), before, "bridge removed, no veth left");
    let out = env.run(&["net", "status", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn nat_off_keeps_the_rest_and_bad_config_is_named() {
    let mut env = Env::new();
    let cfg = env.net_config("bridge = br-nonat\naddress = 10.0.77.1/24\ndhcp_range = 10.0.77.10,10.0.77.20\nnat = false\nno_upstream_dns = true\n");
    let cfg = cfg.to_str().unwrap().to_string();
    env.ok(&["net", "up", "--config", &cfg]);
    let mut c = Command::new("nft");
    c.args(["list", "table", "inet", "lxrs"])
        .stdin(Stdio::null());
    env.enter_host(&mut c);
    let rules = text(&c.output().unwrap().stdout);
    assert!(
        rules.contains("chain forward") && !rules.contains("masquerade"),
        "{rules}"
    );
    env.ok(&["net", "down", "--config", &cfg]);
    assert!(!nft_tables(&env).contains("lxrs"));
    assert!(!env.host_links().contains(&"br-nonat".to_string()));

    let bad = env.dir.path().join("bad.conf");
    std::fs::write(&bad, "bridge = x\nnat = perhaps\n").unwrap();
    let out = env.run(&["net", "up", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("{}:2: nat = \"perhaps\"", bad.display())),
        "{}",
        text(&out.stderr)
    );
}
