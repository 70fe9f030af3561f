//! Device filter rules (`devices.allow` / `devices.deny`), LXC's list semantics (reference
//! §10.4), and their two back ends: the v1 `devices` controller files and a cgroup2 eBPF
//! program ([`bpf`]).

pub mod bpf;
pub(crate) mod sys;

/// Load a `BPF_PROG_TYPE_CGROUP_DEVICE` program (e.g. from [`bpf::compile`]); `cgroup` only
/// names it in errors. A rejected program's error carries the verifier log.
pub fn load_program(insns: &[bpf::BpfInsn], cgroup: &Path) -> Result<std::os::fd::OwnedFd> {
    sys::load(insns, cgroup)
}

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Device type of a rule (`a`, `c`, `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    All,
    Char,
    Block,
}

impl DeviceType {
    fn letter(self) -> char {
        match self {
            DeviceType::All => 'a',
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        }
    }
}

/// Access bits, with the kernel's `BPF_DEVCG_ACC_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access(pub u8);

impl Access {
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const ALL: Access = Access(7);

    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One `devices.allow` (`allow: true`) or `devices.deny` rule. `None` major/minor is `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    /// An allow rule `c|b MAJOR:MINOR rwm` for one device node.
    pub fn node(allow: bool, kind: DeviceType, major: u32, minor: u32) -> Self {
        DeviceRule {
            allow,
            kind,
            major: Some(major),
            minor: Some(minor),
            access: Access::ALL,
        }
    }

    /// Parse a rule: `a`, `TYPE MAJOR:MINOR [ACCESS]` (TYPE `a|b|c`, MAJOR/MINOR a number or
    /// `*`, ACCESS a subset of `rwm`, default `rwm`), or a device path (`/dev/fuse`), which is
    /// stat'ed and becomes `c|b MAJOR:MINOR rwm` as LXC does.
    pub fn parse(allow: bool, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::DeviceRule {
            rule: text.to_string(),
            reason,
        };
        let t = text.trim();
        if t.starts_with('/') {
            return Self::from_path(allow, Path::new(t)).map_err(bad);
        }
        let tokens: Vec<&str> = t.split_whitespace().collect();
        let kind = match tokens.first().copied() {
            Some("a") => DeviceType::All,
            Some("c") => DeviceType::Char,
            Some("b") => DeviceType::Block,
            Some(other) => {
                return Err(bad(format!("device type {other:?} is not `a`, `b` or `c`")))
            }
            None => return Err(bad("empty rule".into())),
        };
        if tokens.len() > 3 {
            return Err(bad(format!(
                "unexpected {:?} after the access",
                tokens[3..].join(" ")
            )));
        }
        if tokens.len() == 1 {
            if kind != DeviceType::All {
                return Err(bad("missing MAJOR:MINOR".into()));
            }
            return Ok(DeviceRule {
                allow,
                kind,
                major: None,
                minor: None,
                access: Access::ALL,
            });
        }
        let (maj, min) = tokens[1]
            .split_once(':')
            .ok_or_else(|| bad(format!("{:?} is not MAJOR:MINOR", tokens[1])))?;
        let num = |s: &str, what: &str| -> Result<Option<u32>> {
            if s == "*" {
                return Ok(None);
            }
            s.parse::<u32>()
                .map(Some)
                .map_err(|_| bad(format!("{what} {s:?} is neither a number nor `*`")))
        };
        let major = num(maj, "major")?;
        let minor = num(min, "minor")?;
        let access = match tokens.get(2) {
            None => Access::ALL,
            Some(a) => {
                let mut bits = 0u8;
                for c in a.chars() {
                    bits |= match c {
                        'r' => Access::READ.0,
                        'w' => Access::WRITE.0,
                        'm' => Access::MKNOD.0,
                        _ => {
                            return Err(bad(format!(
                                "access {a:?}: {c:?} is not one of `r`, `w`, `m`"
                            )))
                        }
                    };
                }
                Access(bits)
            }
        };
        let rule = DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        };
        if kind == DeviceType::All && !rule.is_global() {
            return Err(bad(
                "type `a` applies to all devices and takes no other major:minor or access than `*:* rwm`"
                    .into(),
            ));
        }
        Ok(rule)
    }

    fn from_path(allow: bool, path: &Path) -> std::result::Result<Self, String> {
        let md = std::fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
        let kind = if md.file_type().is_char_device() {
            DeviceType::Char
        } else if md.file_type().is_block_device() {
            DeviceType::Block
        } else {
            return Err(format!("{} is not a device node", path.display()));
        };
        let rdev = md.rdev();
        Ok(DeviceRule::node(
            allow,
            kind,
            libc::major(rdev),
            libc::minor(rdev),
        ))
    }

    /// A bare `a`: sets the default and resets the list.
    pub fn is_global(&self) -> bool {
        self.kind == DeviceType::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == Access::ALL
    }

    /// Whether this rule covers one access of one device.
    pub fn matches(&self, kind: DeviceType, major: u32, minor: u32, access: Access) -> bool {
        (self.kind == DeviceType::All || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
            && self.access.contains(access)
    }

    fn same_target(&self, other: &DeviceRule) -> bool {
        self.kind == other.kind
            && self.major == other.major
            && self.minor == other.minor
            && self.access == other.access
    }
}

/// The rule text as the v1 `devices.allow`/`devices.deny` files take it (`c 1:3 rwm`, `a`).
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_global() {
            return f.write_str("a");
        }
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// LXC's default device list (reference §9): deny `a`, then these, all `rwm`.
pub const LXC_DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 10:229 rwm",
];

/// An ordered device rule list with LXC's semantics (reference §10.4):
/// * a bare `a` sets the default (`deny = a`: allow list; `allow = a`: deny list) and clears
///   the list;
/// * a rule identical in type, major, minor and access to a listed one flips its verdict;
///   otherwise it is appended;
/// * only rules whose verdict differs from the default have an effect (in an allow list, deny
///   rules are ignored, and vice versa).
///
/// With no rules at all the default is deny (an allow list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRules {
    default_allow: bool,
    rules: Vec<DeviceRule>,
}

impl Default for DeviceRules {
    fn default() -> Self {
        Self::deny_all()
    }
}

impl DeviceRules {
    /// Deny everything (an empty allow list).
    pub fn deny_all() -> Self {
        DeviceRules {
            default_allow: false,
            rules: Vec::new(),
        }
    }

    /// LXC's default: deny `a` plus [`LXC_DEFAULT_ALLOW`].
    pub fn lxc_default() -> Self {
        let mut r = Self::deny_all();
        for text in LXC_DEFAULT_ALLOW {
            r.add(DeviceRule::parse(true, text).expect("built-in device rule parses"));
        }
        r
    }

    /// Add a rule with the list semantics above.
    pub fn add(&mut self, rule: DeviceRule) {
        if rule.is_global() {
            self.default_allow = rule.allow;
            self.rules.clear();
        } else if let Some(r) = self.rules.iter_mut().find(|r| r.same_target(&rule)) {
            r.allow = rule.allow;
        } else {
            self.rules.push(rule);
        }
    }

    /// Parse and add a `devices.allow` (`allow: true`) or `devices.deny` value.
    pub fn add_text(&mut self, allow: bool, text: &str) -> Result<()> {
        self.add(DeviceRule::parse(allow, text)?);
        Ok(())
    }

    /// Add a settings key (`devices.allow` / `devices.deny`, with or without an
    /// `lxc.cgroup.`/`lxc.cgroup2.` prefix) and value. An empty value is ignored (the config
    /// layer handles "empty value resets").
    pub fn add_setting(&mut self, key: &str, value: &str) -> Result<()> {
        let short = crate::limits::strip_prefix(key);
        let allow = match short {
            "devices.allow" => true,
            "devices.deny" => false,
            _ => {
                return Err(Error::InvalidKey {
                    key: key.to_string(),
                    reason: "not devices.allow or devices.deny".into(),
                })
            }
        };
        if value.trim().is_empty() {
            return Ok(());
        }
        self.add_text(allow, value)
    }

    /// Whether everything not listed is allowed.
    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// The list, in order (including rules that currently have no effect).
    pub fn rules(&self) -> &[DeviceRule] {
        &self.rules
    }

    /// The rules that have an effect: verdict different from the default.
    pub fn effective(&self) -> impl Iterator<Item = &DeviceRule> {
        self.rules
            .iter()
            .filter(move |r| r.allow != self.default_allow)
    }

    /// The reference decision for one access (what the compiled program must answer).
    pub fn allows(&self, kind: DeviceType, major: u32, minor: u32, access: Access) -> bool {
        if self
            .effective()
            .any(|r| r.matches(kind, major, minor, access))
        {
            !self.default_allow
        } else {
            self.default_allow
        }
    }

    /// What to write to a fresh v1 `devices` cgroup, in order: `(file, rule)` with file
    /// `devices.deny` or `devices.allow`.
    pub fn v1_writes(&self) -> Vec<(&'static str, String)> {
        let (reset, each) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        let mut out = vec![(reset, "a".to_string())];
        out.extend(self.effective().map(|r| (each, r.to_string())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let r = DeviceRule::parse(true, "c 1:3 rwm").unwrap();
        assert_eq!(r, DeviceRule::node(true, DeviceType::Char, 1, 3));
        let r = DeviceRule::parse(false, "b *:* m").unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor, r.access),
            (DeviceType::Block, None, None, Access::MKNOD)
        );
        let r = DeviceRule::parse(true, "  c 136:*  wr ").unwrap();
        assert_eq!((r.major, r.minor, r.access), (Some(136), None, Access(6)));
        assert_eq!(r.to_string(), "c 136:* rw");
        assert!(DeviceRule::parse(true, "a").unwrap().is_global());
        assert!(DeviceRule::parse(true, "a *:* rwm").unwrap().is_global());
        assert_eq!(
            DeviceRule::parse(true, "c 10:200").unwrap().access,
            Access::ALL
        );
        let null = DeviceRule::parse(true, "/dev/null").unwrap();
        assert_eq!(null, DeviceRule::node(true, DeviceType::Char, 1, 3));
    }

    #[test]
    fn rule_errors_name_the_rule() {
        for (text, what) in [
            ("x 1:3 rwm", "device type"),
            ("c 1-3 rwm", "MAJOR:MINOR"),
            ("c one:3 rwm", "major"),
            ("c 1:z rwm", "minor"),
            ("c 1:3 rwx", "access"),
            ("c 1:3 rwm extra", "unexpected"),
            ("c", "missing"),
            ("", "empty"),
            ("a 1:3 r", "type `a`"),
            ("/nonexistent/dev", "stat"),
            ("/etc/hostname", "not a device"),
        ] {
            let e = DeviceRule::parse(true, text).unwrap_err().to_string();
            assert!(e.contains(&format!("{:?}", text)), "{e}");
            assert!(e.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn list_semantics() {
        let mut l = DeviceRules::lxc_default();
        assert!(!l.default_allow());
        assert_eq!(l.rules().len(), 12);
        assert!(l.allows(DeviceType::Char, 1, 3, Access::WRITE));
        assert!(l.allows(DeviceType::Block, 8, 0, Access::MKNOD));
        assert!(!l.allows(DeviceType::Block, 8, 0, Access::READ));
        // identical rule flips; a deny in an allow list is otherwise ignored
        l.add_text(false, "c 1:3 rwm").unwrap();
        assert!(!l.allows(DeviceType::Char, 1, 3, Access::READ));
        assert_eq!(l.rules().len(), 12);
        l.add_text(false, "c 1:5 r").unwrap();
        assert_eq!(l.rules().len(), 13);
        assert!(l.allows(DeviceType::Char, 1, 5, Access::READ));
        // bare `a` resets
        l.add_text(true, "a").unwrap();
        assert!(l.default_allow() && l.rules().is_empty());
        l.add_setting("lxc.cgroup2.devices.deny", "c 10:200 rwm")
            .unwrap();
        assert!(!l.allows(DeviceType::Char, 10, 200, Access::READ));
        assert!(l.allows(DeviceType::Char, 10, 201, Access::READ));
        assert!(l.add_setting("memory.max", "1").is_err());
    }

    #[test]
    fn v1_writes_follow_the_mode() {
        let mut l = DeviceRules::deny_all();
        l.add_text(true, "c 1:3 rwm").unwrap();
        l.add_text(false, "c 1:9 rwm").unwrap();
        assert_eq!(
            l.v1_writes(),
            vec![
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string())
            ]
        );
        l.add_text(true, "a").unwrap();
        l.add_text(false, "b 8:* rw").unwrap();
        assert_eq!(
            l.v1_writes(),
            vec![
                ("devices.allow", "a".to_string()),
                ("devices.deny", "b 8:* rw".to_string())
            ]
        );
    }
}
