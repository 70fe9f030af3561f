//! The host network service (`lxrs net up|down|status`), lxrs's `lxc-net`: a bridge with an
//! address, a real dnsmasq serving DHCP (and DNS) on it, NAT and forward rules in an nftables
//! table of our own, and `ip_forward` on. Every name and path is a parameter so tests run it on
//! a bridge in a namespace they own.
//!
//! `up` is idempotent and records what it made in `<run_dir>/network_up`; `down` removes exactly
//! that (a bridge it did not create, or one that still has ports, stays), collecting every
//! error. If another DHCP server already serves the bridge, `up` says so in its status and does
//! not start a second one.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{ErrorList, NetError, Result};
use crate::netlink::Netlink;
use crate::ns::NetNs;
use crate::types::{network_of, Link, LinkOpts, MacAddr};

/// Settings of the host network (LXC's `/etc/default/lxc-net` variables).
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// `LXC_BRIDGE`.
    pub bridge: String,
    /// `LXC_BRIDGE_MAC`; `None` leaves the kernel's random one.
    pub bridge_mac: Option<MacAddr>,
    /// `LXC_ADDR` and the prefix of `LXC_NETMASK`.
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// `LXC_DHCP_RANGE`.
    pub dhcp_range: (Ipv4Addr, Ipv4Addr),
    /// `LXC_DHCP_MAX`.
    pub dhcp_max: u32,
    /// `LXC_DOMAIN`.
    pub domain: Option<String>,
    /// `LXC_DHCP_CONFILE` (default `/dev/null`).
    pub dhcp_confile: Option<PathBuf>,
    /// `LXC_DHCP_PING=false` adds `--no-ping`.
    pub dhcp_ping: bool,
    /// pid file, lease file and the `network_up` record live here.
    pub run_dir: PathBuf,
    /// Our nftables table (`inet` family).
    pub nft_table: String,
    /// No upstream DNS: `--no-resolv` (and no `/etc/hosts`), for tests and isolated hosts.
    pub no_upstream_dns: bool,
    /// User dnsmasq drops to; `None` = `dnsmasq` if that user exists, else `nobody`.
    pub dnsmasq_user: Option<String>,
    pub dnsmasq_bin: PathBuf,
    pub nft_bin: PathBuf,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: "lxcbr0".into(),
            bridge_mac: Some(MacAddr([0x10, 0x66, 0x6a, 0, 0, 0])),
            addr: Ipv4Addr::new(10, 0, 3, 1),
            prefix: 24,
            dhcp_range: (Ipv4Addr::new(10, 0, 3, 2), Ipv4Addr::new(10, 0, 3, 254)),
            dhcp_max: 253,
            domain: None,
            dhcp_confile: None,
            dhcp_ping: true,
            run_dir: PathBuf::from("/run/lxrs/net"),
            nft_table: "lxrs".into(),
            no_upstream_dns: false,
            dnsmasq_user: None,
            dnsmasq_bin: PathBuf::from("dnsmasq"),
            nft_bin: PathBuf::from("nft"),
        }
    }
}

impl NetConfig {
    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.pid")
    }
    pub fn lease_file(&self) -> PathBuf {
        self.run_dir.join(format!("dnsmasq.{}.leases", self.bridge))
    }
    pub fn record_file(&self) -> PathBuf {
        self.run_dir.join("network_up")
    }
    /// The network, e.g. 10.0.3.0/24.
    pub fn network(&self) -> String {
        format!(
            "{}/{}",
            network_of(self.addr.into(), self.prefix),
            self.prefix
        )
    }

    /// The dnsmasq command line (LXC's, with our paths).
    pub fn dnsmasq_args(&self, user: &str) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(d) = &self.domain {
            a.push(format!("-s{d}"));
            a.push(format!("-S/{d}/"));
        }
        if !self.dhcp_ping {
            a.push("--no-ping".into());
        }
        if self.no_upstream_dns {
            a.push("--no-resolv".into());
            a.push("--no-hosts".into());
        }
        let confile = self
            .dhcp_confile
            .as_deref()
            .unwrap_or(Path::new("/dev/null"));
        a.extend([
            format!("--conf-file={}", confile.display()),
            "-u".into(),
            user.into(),
            "--strict-order".into(),
            "--bind-interfaces".into(),
            format!("--pid-file={}", self.pid_file().display()),
            "--listen-address".into(),
            self.addr.to_string(),
            "--dhcp-range".into(),
            format!("{},{}", self.dhcp_range.0, self.dhcp_range.1),
            format!("--dhcp-lease-max={}", self.dhcp_max),
            "--dhcp-no-override".into(),
            "--except-interface=lo".into(),
            format!("--interface={}", self.bridge),
            format!("--dhcp-leasefile={}", self.lease_file().display()),
            "--dhcp-authoritative".into(),
        ]);
        a
    }

    /// The nftables ruleset `up` loads: replaces our table atomically (add + delete + define in
    /// one transaction), so loading it twice is the same as once.
    pub fn nft_ruleset(&self) -> String {
        let (t, b, net) = (&self.nft_table, &self.bridge, self.network());
        format!(
            "add table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority 0; policy accept;\n\
             \t\tiifname \"{b}\" udp dport {{ 53, 67 }} accept\n\
             \t\tiifname \"{b}\" tcp dport {{ 53, 67 }} accept\n\
             \t}}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority 0; policy accept;\n\
             \t\tiifname \"{b}\" accept\n\
             \t\toifname \"{b}\" accept\n\
             \t}}\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority 100; policy accept;\n\
             \t\tip saddr {net} ip daddr != {net} counter masquerade\n\
             \t}}\n\
             }}\n"
        )
    }
}

/// What `up` made, persisted in `<run_dir>/network_up`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpRecord {
    pub created_bridge: bool,
    pub added_address: bool,
    /// `ip_forward` was 0 and `up` set it to 1.
    pub enabled_forward: bool,
    pub nft_table: Option<String>,
    pub dnsmasq_pid: Option<u32>,
}

impl UpRecord {
    fn render(&self) -> String {
        format!(
            "created_bridge={}\nadded_address={}\nenabled_forward={}\nnft_table={}\ndnsmasq_pid={}\n",
            self.created_bridge as u8,
            self.added_address as u8,
            self.enabled_forward as u8,
            self.nft_table.as_deref().unwrap_or(""),
            self.dnsmasq_pid.map(|p| p.to_string()).unwrap_or_default(),
        )
    }

    fn parse(s: &str) -> UpRecord {
        let mut r = UpRecord::default();
        for line in s.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "created_bridge" => r.created_bridge = v == "1",
                "added_address" => r.added_address = v == "1",
                "enabled_forward" => r.enabled_forward = v == "1",
                "nft_table" if !v.is_empty() => r.nft_table = Some(v.to_string()),
                "dnsmasq_pid" => r.dnsmasq_pid = v.parse().ok(),
                _ => {}
            }
        }
        r
    }
}

/// A DHCP server for the bridge that is not ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignDhcp {
    pub pid: u32,
    pub program: String,
    pub cmdline: String,
}

/// The state of the host network, as `status` (and `up`) report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetStatus {
    pub bridge: Option<Link>,
    pub has_address: bool,
    /// Our dnsmasq, running.
    pub dnsmasq_pid: Option<u32>,
    /// Another DHCP server that serves the bridge (then we start none).
    pub foreign_dhcp: Option<ForeignDhcp>,
    pub nft_table: bool,
    pub ip_forward: bool,
    /// `<run_dir>/network_up` exists.
    pub recorded_up: bool,
}

impl NetStatus {
    /// Bridge up with its address, DHCP served (by us or another server), NAT in place.
    pub fn is_up(&self) -> bool {
        self.bridge.as_ref().is_some_and(|b| b.is_up())
            && self.has_address
            && (self.dnsmasq_pid.is_some() || self.foreign_dhcp.is_some())
            && self.nft_table
            && self.ip_forward
    }
}

/// Runs companions and /proc/sys writes inside the target namespace.
struct Place<'a> {
    ns: Option<&'a NetNs>,
}

impl Place<'_> {
    fn netlink(&self) -> Result<Netlink> {
        match self.ns {
            Some(ns) => Netlink::in_ns(ns.as_fd()),
            None => Netlink::new(),
        }
    }

    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.stdin(Stdio::null());
        if let Some(ns) = self.ns {
            let fd: RawFd = ns.as_fd().as_raw_fd();
            // SAFETY: the closure runs in the forked child before exec and calls only setns(2),
            // which is async-signal-safe; `fd` is open in the child until exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd
    }

    /// Run `bin args` (stdin = `input`), error with its stderr when it fails.
    fn run(
        &self,
        bin: &Path,
        args: &[String],
        input: Option<&str>,
        op: &'static str,
    ) -> Result<()> {
        let prog = bin.display().to_string();
        let cmd_err = |reason: String| NetError::Command {
            program: prog.clone(),
            op,
            reason,
        };
        let mut cmd = self.command(bin);
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        tracing::debug!(program = %prog, ?args, "run");
        let mut child = cmd
            .spawn()
            .map_err(|e| cmd_err(format!("cannot run: {e}")))?;
        if let Some(text) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| cmd_err(format!("writing its input: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| cmd_err(format!("waiting for it: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(cmd_err(format!("{}: {err}", out.status)));
        }
        Ok(())
    }

    fn sysctl_read(&self, path: &str) -> Result<String> {
        crate::ns::read_net_sysctl(self.ns, path)
    }

    fn sysctl_write(&self, path: &str, v: &str) -> Result<()> {
        crate::ns::write_net_sysctl(self.ns, path, v)
    }
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    fn f_err(op: &'static str, p: &Path) -> impl FnOnce(io::Error) -> NetError {
        let path = p.display().to_string();
        move |source| NetError::File { op, path, source }
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(f_err("create", &tmp))?;
    f.write_all(text.as_bytes()).map_err(f_err("write", &tmp))?;
    f.sync_all().map_err(f_err("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(f_err("rename", path))
}

fn read_record(cfg: &NetConfig) -> Option<UpRecord> {
    fs::read_to_string(cfg.record_file())
        .ok()
        .map(|s| UpRecord::parse(&s))
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None; // zombie or kernel thread
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

fn same_netns(pid: u32, ns: &NetNs) -> bool {
    match NetNs::from_pid(pid) {
        Ok(p) => p.same_as(ns).unwrap_or(false),
        Err(_) => false,
    }
}

/// Does this command line serve DHCP on `bridge`?
fn serves_bridge(args: &[String], bridge: &str) -> bool {
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let named = |v: &str| v == bridge;
        if let Some(v) = a
            .strip_prefix("--interface=")
            .or_else(|| a.strip_prefix("interface="))
        {
            if v.split(',').any(named) {
                return true;
            }
        }
        if let Some(v) = a.strip_prefix("-i").filter(|v| !v.is_empty()) {
            if named(v) {
                return true;
            }
        }
        if (a == "-i" || a == "--interface") && it.peek().is_some_and(|v| named(v)) {
            return true;
        }
    }
    false
}

/// Our dnsmasq, if the pid file names a live dnsmasq for this bridge and pid file.
fn our_dnsmasq(cfg: &NetConfig) -> Option<u32> {
    let pid: u32 = fs::read_to_string(cfg.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let args = cmdline(pid)?;
    let pidarg = format!("--pid-file={}", cfg.pid_file().display());
    (args.iter().any(|a| a == &pidarg) && serves_bridge(&args, &cfg.bridge)).then_some(pid)
}

/// Another DHCP server (dnsmasq, dhcpd, udhcpd, kea) whose command line names the bridge, in
/// the same namespace, that is not ours.
fn foreign_dhcp(cfg: &NetConfig, ns: &NetNs, ours: Option<u32>) -> Option<ForeignDhcp> {
    let dir = fs::read_dir("/proc").ok()?;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if Some(pid) == ours {
            continue;
        }
        let Some(args) = cmdline(pid) else { continue };
        let program = Path::new(&args[0])
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !["dnsmasq", "dhcpd", "udhcpd", "kea-dhcp4"].contains(&program.as_str()) {
            continue;
        }
        if serves_bridge(&args, &cfg.bridge) && same_netns(pid, ns) {
            return Some(ForeignDhcp {
                pid,
                program,
                cmdline: args.join(" "),
            });
        }
    }
    None
}

fn nft_table_exists(place: &Place<'_>, cfg: &NetConfig) -> bool {
    place
        .run(
            &cfg.nft_bin,
            &[
                "list".into(),
                "table".into(),
                "inet".into(),
                cfg.nft_table.clone(),
            ],
            None,
            "list table",
        )
        .is_ok()
}

fn user_exists(name: &str) -> bool {
    nix::unistd::User::from_name(name).ok().flatten().is_some()
}

/// The state of the host network in `ns` (`None` = the calling thread's namespace).
pub fn status(cfg: &NetConfig, ns: Option<&NetNs>) -> Result<NetStatus> {
    let place = Place { ns };
    let here;
    let ns_ref = match ns {
        Some(n) => n,
        None => {
            here = NetNs::current()?;
            &here
        }
    };
    let mut nl = place.netlink()?;
    let bridge = nl.find_link(cfg.bridge.as_str())?;
    let has_address = match &bridge {
        Some(b) => nl.addresses()?.iter().any(|a| {
            a.index == b.index && a.addr == std::net::IpAddr::V4(cfg.addr) && a.prefix == cfg.prefix
        }),
        None => false,
    };
    let dnsmasq_pid = our_dnsmasq(cfg);
    Ok(NetStatus {
        bridge,
        has_address,
        dnsmasq_pid,
        foreign_dhcp: foreign_dhcp(cfg, ns_ref, dnsmasq_pid),
        nft_table: nft_table_exists(&place, cfg),
        ip_forward: place.sysctl_read(IP_FORWARD)? == "1",
        recorded_up: cfg.record_file().exists(),
    })
}

/// Bring the host network up in `ns` (`None` = the calling thread's namespace). Idempotent:
/// what exists is kept, what is missing is made, and the record says what was made by any `up`.
pub fn up(cfg: &NetConfig, ns: Option<&NetNs>) -> Result<NetStatus> {
    let place = Place { ns };
    fs::create_dir_all(&cfg.run_dir).map_err(|source| NetError::File {
        op: "create directory",
        path: cfg.run_dir.display().to_string(),
        source,
    })?;
    let mut rec = read_record(cfg).unwrap_or_default();
    let mut nl = place.netlink()?;

    // Bridge, address, up.
    let bridge = match nl.find_link(cfg.bridge.as_str())? {
        Some(b) if b.kind.as_deref() == Some("bridge") => b,
        Some(b) => {
            return Err(NetError::invalid(
                "bridge",
                cfg.bridge.clone(),
                format!(
                    "a link of kind {} already has this name",
                    b.kind.as_deref().unwrap_or("(physical)")
                ),
            ))
        }
        None => {
            tracing::info!(bridge = %cfg.bridge, "creating bridge");
            nl.create_bridge(
                &cfg.bridge,
                &LinkOpts {
                    mac: cfg.bridge_mac,
                    ..Default::default()
                },
            )?;
            rec.created_bridge = true;
            nl.link(cfg.bridge.as_str())?
        }
    };
    // The record is rewritten after every step, so a failure half-way leaves an exact account
    // of what exists for `down`.
    let save = |rec: &UpRecord| write_atomic(&cfg.record_file(), &rec.render());
    save(&rec)?;
    let has = nl
        .addresses()?
        .iter()
        .any(|a| a.index == bridge.index && a.addr == std::net::IpAddr::V4(cfg.addr));
    if !has {
        nl.add_address(bridge.index, cfg.addr.into(), cfg.prefix)?;
        rec.added_address = true;
        save(&rec)?;
    }
    if !bridge.is_up() {
        nl.set_up(bridge.index)?;
    }

    // Forwarding.
    if place.sysctl_read(IP_FORWARD)? != "1" {
        place.sysctl_write(IP_FORWARD, "1")?;
        rec.enabled_forward = true;
        save(&rec)?;
    }

    // NAT and forward rules: one atomic transaction that replaces our table.
    place.run(
        &cfg.nft_bin,
        &["-f".into(), "-".into()],
        Some(&cfg.nft_ruleset()),
        "load ruleset",
    )?;
    rec.nft_table = Some(cfg.nft_table.clone());
    save(&rec)?;

    // DHCP: ours if running, nobody else's, else start it.
    let here;
    let ns_ref = match ns {
        Some(n) => n,
        None => {
            here = NetNs::current()?;
            &here
        }
    };
    let mut ours = our_dnsmasq(cfg);
    let foreign = foreign_dhcp(cfg, ns_ref, ours);
    if let Some(f) = &foreign {
        tracing::warn!(bridge = %cfg.bridge, pid = f.pid, program = %f.program,
            "another DHCP server already serves the bridge; not starting dnsmasq");
    } else if ours.is_none() {
        let user = cfg.dnsmasq_user.clone().unwrap_or_else(|| {
            if user_exists("dnsmasq") {
                "dnsmasq".into()
            } else {
                "nobody".into()
            }
        });
        let _ = fs::remove_file(cfg.pid_file());
        place.run(&cfg.dnsmasq_bin, &cfg.dnsmasq_args(&user), None, "start")?;
        // dnsmasq's parent exits once the daemon is listening and has written its pid file.
        ours = our_dnsmasq(cfg);
        if ours.is_none() {
            return Err(NetError::Command {
                program: cfg.dnsmasq_bin.display().to_string(),
                op: "start",
                reason: format!("no live dnsmasq behind {}", cfg.pid_file().display()),
            });
        }
        tracing::info!(pid = ours, bridge = %cfg.bridge, "dnsmasq started");
    }
    rec.dnsmasq_pid = ours;
    save(&rec)?;
    status(cfg, ns)
}

/// Remove what `up` made (per the record), collecting every error. Without a record, nothing
/// was made by us and nothing is touched.
pub fn down(cfg: &NetConfig, ns: Option<&NetNs>) -> Result<()> {
    let Some(rec) = read_record(cfg) else {
        tracing::info!(record = %cfg.record_file().display(), "host network not up (no record)");
        return Ok(());
    };
    let place = Place { ns };
    let mut errs = ErrorList::new();

    if let Some(pid) = our_dnsmasq(cfg) {
        errs.keep(stop_process(pid, &cfg.dnsmasq_bin));
    }
    let _ = fs::remove_file(cfg.pid_file());

    if let Some(t) = &rec.nft_table {
        let script = format!("add table inet {t}\ndelete table inet {t}\n");
        errs.keep(place.run(
            &cfg.nft_bin,
            &["-f".into(), "-".into()],
            Some(&script),
            "delete table",
        ));
    }

    if let Some(mut nl) = errs.keep(place.netlink()) {
        if let Some(Some(b)) = errs.keep(nl.find_link(cfg.bridge.as_str())) {
            let ports: Vec<String> = errs
                .keep(nl.links())
                .unwrap_or_default()
                .into_iter()
                .filter(|l| l.master == Some(b.index))
                .map(|l| l.name)
                .collect();
            if rec.created_bridge && ports.is_empty() {
                errs.keep(nl.delete_link(b.index));
            } else {
                if rec.added_address {
                    errs.keep(nl.del_address(b.index, cfg.addr.into(), cfg.prefix));
                }
                if rec.created_bridge {
                    tracing::warn!(bridge = %cfg.bridge, ?ports, "bridge kept: it still has ports");
                    errs.keep(nl.set_down(b.index));
                }
            }
        }
    }

    if rec.enabled_forward {
        errs.keep(place.sysctl_write(IP_FORWARD, "0"));
    }
    let rf = cfg.record_file();
    if let Err(source) = fs::remove_file(&rf) {
        errs.push(NetError::File {
            op: "remove",
            path: rf.display().to_string(),
            source,
        });
    }
    errs.finish()
}

/// SIGTERM, a bounded wait, then SIGKILL.
fn stop_process(pid: u32, bin: &Path) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let p = Pid::from_raw(pid as i32);
    let gone = || match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    };
    let cmd_err = |reason: String| NetError::Command {
        program: bin.display().to_string(),
        op: "stop",
        reason,
    };
    if let Err(e) = kill(p, Signal::SIGTERM) {
        if e == nix::errno::Errno::ESRCH {
            return Ok(());
        }
        return Err(cmd_err(format!("kill {pid}: {e}")));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if gone() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = kill(p, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if gone() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(cmd_err(format!(
        "pid {pid} still alive after SIGTERM and SIGKILL"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsmasq_command_line_is_lxcs() {
        let cfg = NetConfig {
            run_dir: "/run/x".into(),
            no_upstream_dns: true,
            ..Default::default()
        };
        let a = cfg.dnsmasq_args("nobody").join(" ");
        assert_eq!(
            a,
            "--no-resolv --no-hosts --conf-file=/dev/null -u nobody --strict-order --bind-interfaces \
             --pid-file=/run/x/dnsmasq.pid --listen-address 10.0.3.1 --dhcp-range 10.0.3.2,10.0.3.254 \
             --dhcp-lease-max=253 --dhcp-no-override --except-interface=lo --interface=lxcbr0 \
             --dhcp-leasefile=/run/x/dnsmasq.lxcbr0.leases --dhcp-authoritative"
        );
        let cfg = NetConfig {
            domain: Some("lxc".into()),
            dhcp_ping: false,
            ..Default::default()
        };
        let a = cfg.dnsmasq_args("dnsmasq");
        assert_eq!(&a[..3], ["-slxc", "-S/lxc/", "--no-ping"]);
    }

    #[test]
    fn ruleset_masquerades_the_bridge_network() {
        let cfg = NetConfig {
            bridge: "br-t".into(),
            addr: "10.7.0.1".parse().unwrap(),
            prefix: 16,
            nft_table: "t1".into(),
            ..Default::default()
        };
        let r = cfg.nft_ruleset();
        assert!(r.starts_with("add table inet t1\ndelete table inet t1\ntable inet t1 {"));
        assert!(r.contains("ip saddr 10.7.0.0/16 ip daddr != 10.7.0.0/16 counter masquerade"));
        assert!(r.contains("iifname \"br-t\" udp dport { 53, 67 } accept"));
        assert!(r.contains("oifname \"br-t\" accept"));
    }

    #[test]
    fn record_round_trips() {
        let r = UpRecord {
            created_bridge: true,
            added_address: false,
            enabled_forward: true,
            nft_table: Some("lxrs".into()),
            dnsmasq_pid: Some(42),
        };
        assert_eq!(UpRecord::parse(&r.render()), r);
        assert_eq!(UpRecord::parse(""), UpRecord::default());
    }

    #[test]
    fn who_serves_the_bridge() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(serves_bridge(
            &v("dnsmasq --interface=lxcbr0 --bind-interfaces"),
            "lxcbr0"
        ));
        assert!(serves_bridge(&v("dnsmasq -i lxcbr0"), "lxcbr0"));
        assert!(serves_bridge(&v("dnsmasq -ilxcbr0"), "lxcbr0"));
        assert!(serves_bridge(
            &v("dnsmasq --interface=virbr0,lxcbr0"),
            "lxcbr0"
        ));
        assert!(!serves_bridge(&v("dnsmasq --interface=lxcbr01"), "lxcbr0"));
        assert!(!serves_bridge(
            &v("dnsmasq --except-interface=lxcbr0"),
            "lxcbr0"
        ));
    }
}
