//! `lxc.cgroup.<ctl>.<file>` / `lxc.cgroup2.<ctl>.<file>` settings: key checks, ordering, and
//! the split between files and the device filter.

use crate::devices::DeviceRules;
use crate::error::{Error, Result};
use crate::mounts::Driver;

/// `lxc.cgroup2.memory.max` → `memory.max`; keys without the prefix are returned as they are.
pub(crate) fn strip_prefix(key: &str) -> &str {
    key.strip_prefix("lxc.cgroup2.")
        .or_else(|| key.strip_prefix("lxc.cgroup."))
        .unwrap_or(key)
}

/// Split `memory.limit_in_bytes` into (`memory`, file name), refusing anything that is not a
/// plain file name in the cgroup directory.
pub fn split_key(key: &str) -> Result<(&str, &str)> {
    let short = strip_prefix(key);
    let bad = |reason: &str| Error::InvalidKey {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    if short.contains('/') || short.contains('\0') || short.starts_with('.') {
        return Err(bad("not a cgroup file name"));
    }
    let (ctl, rest) = short
        .split_once('.')
        .ok_or_else(|| bad("expected CONTROLLER.FILE, e.g. memory.limit_in_bytes"))?;
    if ctl.is_empty() || rest.is_empty() {
        return Err(bad("expected CONTROLLER.FILE, e.g. memory.limit_in_bytes"));
    }
    Ok((ctl, short))
}

/// Whether a key feeds the device filter instead of a file.
pub fn is_device_key(key: &str) -> bool {
    matches!(strip_prefix(key), "devices.allow" | "devices.deny")
}

/// The order v1 settings are written in: config order, except `memory.memsw.limit_in_bytes`
/// after all others (the kernel refuses a memsw limit below the memory limit).
pub fn v1_order(settings: &[(String, String)]) -> Vec<&(String, String)> {
    let is_memsw = |k: &str| strip_prefix(k) == "memory.memsw.limit_in_bytes";
    let mut out: Vec<&(String, String)> = settings.iter().filter(|(k, _)| !is_memsw(k)).collect();
    out.extend(settings.iter().filter(|(k, _)| is_memsw(k)));
    out
}

/// A container's cgroup settings, split: files to write and the device filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Non-device settings in config order (keys without the `lxc.cgroup[2].` prefix).
    pub limits: Vec<(String, String)>,
    /// LXC's default device list (deny `a` + §9 allow list) followed by the container's
    /// `devices.allow` / `devices.deny` rules in order.
    pub devices: DeviceRules,
}

impl Settings {
    /// Split ordered (key, value) pairs; device rules are parsed (error names the rule).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Self> {
        let mut limits = Vec::new();
        let mut devices = DeviceRules::lxc_default();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            if is_device_key(k) {
                devices.add_setting(k, v)?;
            } else {
                split_key(k)?;
                limits.push((strip_prefix(k).to_string(), v.to_string()));
            }
        }
        Ok(Settings { limits, devices })
    }

    /// Like [`Settings::from_pairs`] for settings tagged with their kind (`lxc.cgroup.*` =
    /// [`Driver::V1`], `lxc.cgroup2.*` = [`Driver::V2`]): those of `driver` are used, the
    /// others are ignored with a warning, as LXC does, and returned so the caller can say so.
    pub fn for_driver<K: AsRef<str>, V: AsRef<str>>(
        driver: Driver,
        settings: &[(Driver, K, V)],
    ) -> Result<(Self, Vec<String>)> {
        let mut used = Vec::new();
        let mut ignored = Vec::new();
        for (d, k, v) in settings {
            if *d == driver {
                used.push((k.as_ref(), v.as_ref()));
            } else {
                tracing::warn!(key = k.as_ref(), driver = %driver, "cgroup setting of the other cgroup version ignored");
                ignored.push(k.as_ref().to_string());
            }
        }
        Ok((Self::from_pairs(&used)?, ignored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn memsw_goes_last() {
        let s = pairs(&[
            ("memory.memsw.limit_in_bytes", "2G"),
            ("cpu.shares", "512"),
            ("memory.limit_in_bytes", "1G"),
            ("lxc.cgroup.memory.memsw.limit_in_bytes", "3G"),
            ("pids.max", "100"),
        ]);
        let keys: Vec<&str> = v1_order(&s).iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "cpu.shares",
                "memory.limit_in_bytes",
                "pids.max",
                "memory.memsw.limit_in_bytes",
                "lxc.cgroup.memory.memsw.limit_in_bytes"
            ]
        );
    }

    #[test]
    fn keys() {
        assert_eq!(split_key("memory.max").unwrap(), ("memory", "memory.max"));
        assert_eq!(
            split_key("lxc.cgroup.cpuset.cpus").unwrap(),
            ("cpuset", "cpuset.cpus")
        );
        for bad in ["memory", "../x.y", "memory./etc", ".memory", "memory."] {
            let e = split_key(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn settings_split_devices() {
        let s = Settings::from_pairs(&[
            ("lxc.cgroup2.memory.max", "100M"),
            ("lxc.cgroup2.devices.allow", "c 10:200 rwm"),
            ("pids.max", "10"),
            ("devices.deny", "c 1:3 rwm"),
        ])
        .unwrap();
        assert_eq!(
            s.limits,
            pairs(&[("memory.max", "100M"), ("pids.max", "10")])
        );
        use crate::devices::{Access, DeviceType};
        assert!(s.devices.allows(DeviceType::Char, 10, 200, Access::READ));
        assert!(!s.devices.allows(DeviceType::Char, 1, 3, Access::READ));
        assert!(s.devices.allows(DeviceType::Char, 1, 5, Access::READ));
        let (v1, ignored) = Settings::for_driver(
            Driver::V1,
            &[
                (Driver::V2, "memory.max", "1"),
                (Driver::V1, "memory.limit_in_bytes", "1"),
                (Driver::V2, "devices.allow", "c 10:200 rwm"),
            ],
        )
        .unwrap();
        assert_eq!(v1.limits, pairs(&[("memory.limit_in_bytes", "1")]));
        assert_eq!(v1.devices, DeviceRules::lxc_default());
        assert_eq!(ignored, vec!["memory.max", "devices.allow"]);
        let e = Settings::from_pairs(&[("devices.allow", "c 1:x rwm")]).unwrap_err();
        assert!(e.to_string().contains("\"c 1:x rwm\""), "{e}");
    }
}
