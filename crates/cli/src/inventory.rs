//! What `ls`, `info` and `autostart` know about the containers of an lxcpath.

use lxrs_runtime::lifecycle;
use lxrs_runtime::state::State;
use std::path::Path;

/// Defined containers of an lxcpath: directories with a `config` and no create in progress,
/// sorted by name; dot-directories skipped.
pub fn defined(lxcpath: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(lxcpath) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let p = lxrs_rootfs::ContainerPaths::new(lxcpath, name.clone());
            p.is_defined().then_some(name)
        })
        .collect();
    v.sort();
    v
}

/// Live facts about one container.
#[derive(Debug, Clone)]
pub struct Live {
    pub state: State,
    pub init_pid: Option<i32>,
    #[allow(dead_code)]
    pub monitor_pid: Option<i32>,
}

pub fn live(lxcpath: &Path, name: &str) -> Live {
    let i = lifecycle::info(lxcpath, name);
    Live {
        state: i.state,
        init_pid: i.init_pid,
        monitor_pid: i.monitor_pid,
    }
}

/// Addresses of a running container, read from its network namespace over netlink (nothing is
/// run inside): every non-`lo` address, IPv6 of global scope only. (ipv4, ipv6, interfaces)
pub fn addresses(init_pid: i32) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut v4, mut v6, mut ifs) = (vec![], vec![], vec![]);
    match lxrs_netns::ns_addresses(init_pid as u32) {
        Ok(list) => {
            for a in list {
                if !ifs.contains(&a.ifname) {
                    ifs.push(a.ifname.clone());
                }
                match a.addr {
                    std::net::IpAddr::V4(x) => v4.push(x.to_string()),
                    std::net::IpAddr::V6(x) => v6.push(x.to_string()),
                }
            }
        }
        Err(e) => tracing::debug!("addresses of pid {init_pid}: {e}"),
    }
    (v4, v6, ifs)
}

/// Resource use of a running container: (memory bytes, swap bytes, cpu ns).
pub fn stats(lxcpath: &Path, name: &str) -> (Option<u64>, Option<u64>, Option<u64>) {
    match lxrs_runtime::cgroups::container_stats(lxcpath, name) {
        Some(s) => (s.memory_bytes, s.swap_bytes, s.cpu_ns),
        None => (None, None, None),
    }
}
