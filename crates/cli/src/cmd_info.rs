//! `lxrs info`: a container's name, state, pid, addresses and resource use.

use crate::globals::Globals;
use crate::inventory;
use anyhow::{bail, Result};
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Show the value(s) of this configuration key (repeatable).
    #[arg(short = 'c', long = "config", value_name = "KEY")]
    pub config: Vec<String>,
    /// Show the state only.
    #[arg(short = 's', long = "state")]
    pub state: bool,
    /// Show the init pid only.
    #[arg(short = 'p', long = "pid")]
    pub pid: bool,
    /// Show the IP addresses only.
    #[arg(short = 'i', long = "ips")]
    pub ips: bool,
    /// Show resource use only.
    #[arg(short = 'S', long = "stats")]
    pub stats: bool,
    /// Raw values (bytes, nanoseconds) instead of human-readable ones.
    #[arg(short = 'H', long = "no-humanize")]
    pub raw: bool,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    lxrs_rootfs::validate_name(&a.name)?;
    let lxcpath = g.lxcpath();
    let paths = lxrs_rootfs::ContainerPaths::new(&lxcpath, &a.name);
    if !paths.is_defined() {
        bail!(
            "container '{}' does not exist in {}",
            a.name,
            lxcpath.display()
        );
    }
    let mut out = String::new();
    if !a.config.is_empty() {
        let l = lxrs_config::ContainerConfig::load(paths.config())?;
        for k in &a.config {
            for v in l.config.get(k) {
                writeln!(out, "{k} = {v}")?;
            }
        }
        print!("{out}");
        return Ok(0);
    }
    let all = !(a.state || a.pid || a.ips || a.stats);
    let live = inventory::live(&lxcpath, &a.name);
    let field = |out: &mut String, k: &str, v: &str| writeln!(out, "{:<16}{v}", format!("{k}:"));
    if all {
        field(&mut out, "Name", &a.name)?;
    }
    if all || a.state {
        field(&mut out, "State", live.state.as_str())?;
    }
    if let Some(pid) = live.init_pid {
        if all || a.pid {
            field(&mut out, "PID", &pid.to_string())?;
        }
        if all || a.ips {
            let (v4, v6, _) = inventory::addresses(pid);
            for ip in v4.iter().chain(&v6) {
                field(&mut out, "IP", ip)?;
            }
        }
        if all || a.stats {
            let (mem, _swap, cpu) = inventory::stats(&lxcpath, &a.name);
            if let Some(ns) = cpu {
                let v = if a.raw {
                    ns.to_string()
                } else {
                    format!("{:.2} seconds", ns as f64 / 1e9)
                };
                field(&mut out, "CPU use", &v)?;
            }
            if let Some(b) = mem {
                let v = if a.raw { b.to_string() } else { human_bytes(b) };
                field(&mut out, "Memory use", &v)?;
            }
        }
    }
    print!("{out}");
    Ok(0)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn humanized() {
        assert_eq!(super::human_bytes(512), "512 bytes");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 / 2), "1.50 MiB");
    }
}
