//! Which cgroup hierarchies the host has, read from `/proc/self/mountinfo`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which cgroup implementation lxrs drives. On a hybrid host both work and the caller chooses
/// (`lxrs.cgroup.driver = v1|v2` in `/etc/lxrs/lxrs.conf`, env `LXRS_CGROUP_DRIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// Every mounted v1 hierarchy (controllers and named ones such as `name=systemd`).
    V1,
    /// The cgroup2 mount, wherever it is mounted.
    V2,
}

impl FromStr for Driver {
    type Err = Error;

    /// Accepts `v1`, `v2` (also `1`, `2`, `cgroup1`, `cgroup2`, `legacy`, `unified`), any case,
    /// surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" | "cgroup1" | "cgroupv1" | "legacy" => Ok(Driver::V1),
            "v2" | "2" | "cgroup2" | "cgroupv2" | "unified" => Ok(Driver::V2),
            _ => Err(Error::InvalidDriver {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::V1 => "v1",
            Driver::V2 => "v2",
        })
    }
}

/// The kind of cgroup setup a host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controller hierarchies plus a cgroup2 mount (the systemd "hybrid" layout).
    Hybrid,
    /// Only cgroup2.
    Unified,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers bound to it (`cpu`, `cpuacct`, ...); a named hierarchy has `name=systemd`.
    pub controllers: Vec<String>,
    /// Mount point: the hierarchy root lxrs creates its cgroups in.
    pub mount: PathBuf,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup mounts of a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupMounts {
    /// v1 hierarchies, one entry per hierarchy (a hierarchy mounted twice is listed once).
    pub v1: Vec<V1Hierarchy>,
    /// The cgroup2 mount point.
    pub unified: Option<PathBuf>,
    /// Where this was read from (for messages).
    pub source: PathBuf,
}

/// Super-block options of a v1 cgroup mount that are not controller names.
const NON_CONTROLLER_OPTS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
];

impl CgroupMounts {
    /// Read and parse a mountinfo file (normally `/proc/self/mountinfo`).
    pub fn from_mountinfo_file(path: &Path) -> Result<Self> {
        let text = crate::fsutil::read_pseudo(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_mountinfo(&text, path)
    }

    /// The host's mounts: `/proc/self/mountinfo`.
    pub fn host() -> Result<Self> {
        Self::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
    }

    /// Parse mountinfo text; `source` only names it in errors.
    pub fn parse_mountinfo(text: &str, source: &Path) -> Result<Self> {
        let mut out = CgroupMounts {
            source: source.to_path_buf(),
            ..Default::default()
        };
        let mut seen_devs: Vec<String> = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || Error::Mountinfo {
                path: source.to_path_buf(),
                line: idx + 1,
                text: line.to_string(),
            };
            let (pre, post) = line.split_once(" - ").ok_or_else(bad)?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 3 {
                return Err(bad());
            }
            let (dev, mount_point) = (pre[2], pre[4]);
            let (fstype, super_opts) = (post[0], post[2]);
            match fstype {
                "cgroup2" if out.unified.is_none() => {
                    out.unified = Some(PathBuf::from(unescape(mount_point)));
                }
                "cgroup" => {
                    if seen_devs.iter().any(|d| d == dev) {
                        continue;
                    }
                    let controllers: Vec<String> = super_opts
                        .split(',')
                        .filter(|o| {
                            !NON_CONTROLLER_OPTS.contains(o) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    seen_devs.push(dev.to_string());
                    out.v1.push(V1Hierarchy {
                        controllers,
                        mount: PathBuf::from(unescape(mount_point)),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Legacy, hybrid or unified; `None` when no cgroup filesystem is mounted.
    pub fn layout(&self) -> Option<Layout> {
        let has_v1 = self
            .v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_v1, self.unified.is_some()) {
            (true, true) => Some(Layout::Hybrid),
            (true, false) => Some(Layout::Legacy),
            (false, true) => Some(Layout::Unified),
            (false, false) if !self.v1.is_empty() => Some(Layout::Legacy),
            (false, false) => None,
        }
    }

    /// The driver to use when the caller has not chosen one: v1 where v1 controllers exist
    /// (legacy and hybrid hosts: that is where the controllers are), v2 on a unified host.
    pub fn default_driver(&self) -> Option<Driver> {
        match self.layout()? {
            Layout::Legacy | Layout::Hybrid => Some(Driver::V1),
            Layout::Unified => Some(Driver::V2),
        }
    }

    /// The driver to use: `wanted` (from `lxrs.cgroup.driver` / `LXRS_CGROUP_DRIVER`) when the
    /// host has it, else [`CgroupMounts::default_driver`]; an error when neither is usable.
    pub fn choose_driver(&self, wanted: Option<Driver>) -> Result<Driver> {
        let driver = match wanted {
            Some(d) => d,
            None => self.default_driver().ok_or_else(|| Error::NoHierarchy {
                driver: Driver::V2,
                mountinfo: self.source.clone(),
            })?,
        };
        if !self.supports(driver) {
            return Err(Error::NoHierarchy {
                driver,
                mountinfo: self.source.clone(),
            });
        }
        Ok(driver)
    }

    /// Whether `driver` can be used on this host.
    pub fn supports(&self, driver: Driver) -> bool {
        match driver {
            Driver::V1 => !self.v1.is_empty(),
            Driver::V2 => self.unified.is_some(),
        }
    }

    /// The v1 hierarchy a controller is bound to.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }

    /// Hierarchy roots used by `driver`.
    pub fn roots(&self, driver: Driver) -> Vec<PathBuf> {
        match driver {
            Driver::V1 => self.v1.iter().map(|h| h.mount.clone()).collect(),
            Driver::V2 => self.unified.iter().cloned().collect(),
        }
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn detects_hybrid() {
        let m = CgroupMounts::parse_mountinfo(HYBRID, Path::new("mi")).unwrap();
        assert_eq!(m.layout(), Some(Layout::Hybrid));
        assert_eq!(m.default_driver(), Some(Driver::V1));
        assert_eq!(
            m.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(m.v1.len(), 7);
        assert_eq!(
            m.v1_hierarchy("cpuset").unwrap().controllers,
            vec!["cpuset"]
        );
        assert_eq!(
            m.v1_hierarchy("name=systemd").unwrap().mount,
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert!(m.v1_hierarchy("pids").is_none());
        assert!(m.supports(Driver::V1) && m.supports(Driver::V2));
        assert_eq!(
            m.roots(Driver::V2),
            vec![PathBuf::from("/sys/fs/cgroup/unified")]
        );
    }

    #[test]
    fn detects_unified_anywhere() {
        let text = "30 25 0:26 / /mnt/my\\040cg rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let m = CgroupMounts::parse_mountinfo(text, Path::new("mi")).unwrap();
        assert_eq!(m.layout(), Some(Layout::Unified));
        assert_eq!(m.default_driver(), Some(Driver::V2));
        assert_eq!(m.unified.as_deref(), Some(Path::new("/mnt/my cg")));
        assert!(!m.supports(Driver::V1));
        let e = m.choose_driver(Some(Driver::V1)).unwrap_err();
        assert!(e.to_string().contains("no cgroup v1 hierarchy"), "{e}");
    }

    #[test]
    fn detects_legacy_comounted_and_deduplicates() {
        let text = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 31 0:29 / /other/cpu rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let m = CgroupMounts::parse_mountinfo(text, Path::new("mi")).unwrap();
        assert_eq!(m.layout(), Some(Layout::Legacy));
        assert_eq!(m.v1.len(), 2);
        assert_eq!(
            m.v1_hierarchy("cpuacct").unwrap().mount,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(!m.supports(Driver::V2));
    }

    #[test]
    fn no_cgroups_and_bad_lines() {
        let m = CgroupMounts::parse_mountinfo(
            "22 1 0:21 / /sys rw - sysfs sysfs rw\n",
            Path::new("mi"),
        )
        .unwrap();
        assert_eq!(m.layout(), None);
        let e = CgroupMounts::parse_mountinfo("garbage line\n", Path::new("/x/mi")).unwrap_err();
        assert!(e.to_string().contains("/x/mi:1"), "{e}");
    }

    #[test]
    fn driver_from_str() {
        assert_eq!("v1".parse::<Driver>().unwrap(), Driver::V1);
        assert_eq!(" V2 ".parse::<Driver>().unwrap(), Driver::V2);
        assert_eq!("cgroup2".parse::<Driver>().unwrap(), Driver::V2);
        let e = "v3".parse::<Driver>().unwrap_err();
        assert!(e.to_string().contains("\"v3\""), "{e}");
    }

    #[test]
    fn host_mountinfo_parses() {
        // Whatever the host is, its mountinfo must parse.
        CgroupMounts::host().unwrap();
    }
}
