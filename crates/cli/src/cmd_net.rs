//! `lxrs net up|down|status`: the host bridge, DHCP/DNS (dnsmasq) and NAT (nftables) for
//! containers — lxrs's `lxc-net`, over `lxrs_netns::service`.
//!
//! Settings come from `/etc/lxrs/lxrs-net.conf` (or `--config FILE`), `key = value` lines:
//! `bridge`, `bridge_mac`, `address` (`10.0.3.1/24`), `dhcp_range` (`10.0.3.2,10.0.3.254`),
//! `dhcp_max`, `dhcp_ping`, `domain`, `dhcp_confile`, `run_dir`, `nft_table`,
//! `no_upstream_dns`, `nat`, `dnsmasq_user`. A missing default file means LXC's defaults.

use anyhow::{bail, Context, Result};
use lxrs_netns::service::{self, NetConfig};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/lxrs/lxrs-net.conf";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// Configuration file (default /etc/lxrs/lxrs-net.conf).
    #[arg(long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create the bridge, start dnsmasq, load the nftables table (idempotent).
    Up,
    /// Undo what `up` made.
    Down,
    /// Show the bridge, dnsmasq and nftables state (exit 0 when up, 3 when not).
    Status,
}

/// The host network settings plus what the service itself has no switch for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub net: NetConfig,
    /// Masquerade the bridge network (default on).
    pub nat: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            net: NetConfig::default(),
            nat: true,
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parse a settings file (`key = value`, `#` comments, blank lines). Errors name the file,
/// line and key.
pub fn parse_settings(text: &str, file: &Path) -> Result<Settings> {
    let mut s = Settings::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", file.display(), i + 1);
        let Some((k, v)) = line.split_once('=') else {
            bail!("{}: expected `key = value`, got {line:?}", at());
        };
        let (k, v) = (k.trim(), v.trim().trim_matches('"'));
        let bad = |why: &str| anyhow::anyhow!("{}: {k} = {v:?}: {why}", at());
        let boolean = |v: &str| parse_bool(v).ok_or_else(|| bad("expected true or false"));
        match k {
            "bridge" => {
                lxrs_netns::validate_ifname(v).map_err(|e| bad(&e.to_string()))?;
                s.net.bridge = v.into();
            }
            "bridge_mac" => {
                s.net.bridge_mac = if v.is_empty() {
                    None
                } else {
                    Some(v.parse().map_err(|e: lxrs_netns::NetError| bad(&e.to_string()))?)
                }
            }
            "address" => {
                let (a, p) = v.split_once('/').unwrap_or((v, "24"));
                s.net.addr = a.parse().map_err(|_| bad("expected an IPv4 address/prefix"))?;
                s.net.prefix = p
                    .parse()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(|| bad("prefix must be 0..=32"))?;
            }
            "dhcp_range" => {
                let (a, b) = v
                    .split_once(',')
                    .ok_or_else(|| bad("expected FIRST,LAST"))?;
                let a: Ipv4Addr = a.trim().parse().map_err(|_| bad("bad first address"))?;
                let b: Ipv4Addr = b.trim().parse().map_err(|_| bad("bad last address"))?;
                if u32::from(a) > u32::from(b) {
                    return Err(bad("first address after last"));
                }
                s.net.dhcp_range = (a, b);
            }
            "dhcp_max" => s.net.dhcp_max = v.parse().map_err(|_| bad("expected a number"))?,
            "dhcp_ping" => s.net.dhcp_ping = boolean(v)?,
            "domain" => s.net.domain = Some(v.into()).filter(|d: &String| !d.is_empty()),
            "dhcp_confile" => s.net.dhcp_confile = Some(v.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty()),
            "run_dir" => {
                if !v.starts_with('/') {
                    return Err(bad("must be an absolute path"));
                }
                s.net.run_dir = v.into();
            }
            "nft_table" => {
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(bad("expected a table name of letters, digits, - and _"));
                }
                s.net.nft_table = v.into();
            }
            "no_upstream_dns" => s.net.no_upstream_dns = boolean(v)?,
            "nat" => s.nat = boolean(v)?,
            "dnsmasq_user" => s.net.dnsmasq_user = Some(v.into()).filter(|u: &String| !u.is_empty()),
            _ => bail!(
                "{}: unknown key {k:?} (known: bridge, bridge_mac, address, dhcp_range, dhcp_max, dhcp_ping, domain, dhcp_confile, run_dir, nft_table, no_upstream_dns, nat, dnsmasq_user)",
                at()
            ),
        }
    }
    let (lo, hi) = s.net.dhcp_range;
    let net = |a: Ipv4Addr| lxrs_netns::network_of(a.into(), s.net.prefix);
    if net(lo) != net(s.net.addr) || net(hi) != net(s.net.addr) {
        bail!(
            "{}: dhcp_range {lo},{hi} is not inside the bridge network {}",
            file.display(),
            s.net.network()
        );
    }
    Ok(s)
}

/// Read the settings: `--config FILE` must exist; the default file may be absent (defaults).
pub fn load(config: Option<&Path>) -> Result<Settings> {
    let (path, required) = match config {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_settings(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Settings::default()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// NAT off: drop the masquerade chain from our table (the rest of the table stays).
fn disable_nat(s: &Settings) -> Result<()> {
    let out = std::process::Command::new(&s.net.nft_bin)
        .args(["delete", "chain", "inet", &s.net.nft_table, "postrouting"])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("run {}", s.net.nft_bin.display()))?;
    if !out.status.success() {
        bail!(
            "nat = false: nft delete chain inet {} postrouting: {}",
            s.net.nft_table,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn print_status(s: &Settings, st: &service::NetStatus) {
    let n = &s.net;
    match &st.bridge {
        Some(b) => println!(
            "bridge:    {} ({}{})",
            n.bridge,
            if b.is_up() { "up" } else { "down" },
            if st.has_address {
                format!(", {}/{}", n.addr, n.prefix)
            } else {
                ", no address".into()
            }
        ),
        None => println!("bridge:    {} (absent)", n.bridge),
    }
    match (&st.dnsmasq_pid, &st.foreign_dhcp) {
        (Some(pid), _) => println!(
            "dhcp:      dnsmasq pid {pid}, range {},{}",
            n.dhcp_range.0, n.dhcp_range.1
        ),
        (None, Some(f)) => println!(
            "dhcp:      served by another {} (pid {}): {}",
            f.program, f.pid, f.cmdline
        ),
        (None, None) => println!("dhcp:      not running"),
    }
    println!(
        "nftables:  table inet {} {}",
        n.nft_table,
        if st.nft_table { "loaded" } else { "absent" }
    );
    println!(
        "forward:   ip_forward {}",
        if st.ip_forward { "on" } else { "off" }
    );
    println!("state:     {}", if st.is_up() { "up" } else { "down" });
}

pub fn run(a: Args, g: &crate::globals::Globals) -> Result<i32> {
    let s = load(a.config.as_deref())?;
    match a.action {
        Action::Up => {
            let st = service::up(&s.net, None)
                .with_context(|| format!("lxrs net up (bridge {})", s.net.bridge))?;
            if !s.nat {
                disable_nat(&s)?;
            }
            if let Some(f) = &st.foreign_dhcp {
                eprintln!(
                    "lxrs: another DHCP server ({} pid {}) already serves {}; dnsmasq not started",
                    f.program, f.pid, s.net.bridge
                );
            }
            if !g.quiet {
                print_status(&s, &st);
            }
            Ok(0)
        }
        Action::Down => {
            service::down(&s.net, None)
                .with_context(|| format!("lxrs net down (bridge {})", s.net.bridge))?;
            Ok(0)
        }
        Action::Status => {
            let st = service::status(&s.net, None)
                .with_context(|| format!("lxrs net status (bridge {})", s.net.bridge))?;
            if !g.quiet {
                print_status(&s, &st);
            }
            Ok(if st.is_up() { 0 } else { 3 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults_and_errors_name_the_line() {
        let f = Path::new("/etc/lxrs/lxrs-net.conf");
        let s = parse_settings("", f).unwrap();
        assert_eq!(s.net.bridge, "lxcbr0");
        assert!(s.nat);
        let s = parse_settings(
            "# test\nbridge = br-t\naddress = 10.9.0.1/16\ndhcp_range = 10.9.0.10, 10.9.0.20\n\
             dhcp_ping = false\nno_upstream_dns = yes\nnat = off\nrun_dir = /tmp/x\n",
            f,
        )
        .unwrap();
        assert_eq!(s.net.bridge, "br-t");
        assert_eq!(
            (s.net.addr, s.net.prefix),
            ("10.9.0.1".parse().unwrap(), 16)
        );
        assert_eq!(s.net.dhcp_range.1, "10.9.0.20".parse::<Ipv4Addr>().unwrap());
        assert!(!s.net.dhcp_ping && s.net.no_upstream_dns && !s.nat);
        assert_eq!(s.net.run_dir, Path::new("/tmp/x"));

        let e = parse_settings("bridge = a\nbrige = b\n", f)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/lxrs/lxrs-net.conf:2: unknown key \"brige\""),
            "{e}"
        );
        let e = parse_settings("nat = maybe\n", f).unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/lxrs/lxrs-net.conf:1: nat = \"maybe\": expected true or false"
        );
        let e = parse_settings("dhcp_range = 10.1.0.2,10.1.0.9\n", f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not inside the bridge network 10.0.3.0/24"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/lxrs-net.conf");
        let s = parse_settings(&std::fs::read_to_string(&p).unwrap(), &p).unwrap();
        assert_eq!(s.net.bridge, "lxcbr0");
        assert_eq!(s.net.addr, Ipv4Addr::new(10, 0, 3, 1));
    }
}
