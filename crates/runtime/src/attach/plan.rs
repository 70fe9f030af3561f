//! Pure parsing and decisions of `attach` (no system calls; unit-tested on strings).

use super::error::AttachError;
use crate::spec::Personality;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `PATH` set by `--clear-env` unless the caller's `PATH` is kept (LXC's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    User,
    Mnt,
    Pid,
    Uts,
    Ipc,
    Net,
    Cgroup,
    Time,
}

impl Namespace {
    /// The order namespaces are entered in (LXC's): the user namespace first, so that the
    /// capabilities it grants authorise the others.
    pub const ORDER: [Namespace; 8] = [
        Namespace::User,
        Namespace::Mnt,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// Name of the file in `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mnt => "mnt",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The `CLONE_NEW*` flag for setns(2).
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mnt => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => libc::CLONE_NEWTIME,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of namespaces; iterates in [`Namespace::ORDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    pub const EMPTY: NamespaceSet = NamespaceSet(0);

    pub fn all() -> NamespaceSet {
        NamespaceSet(0xff)
    }
    pub fn contains(self, ns: Namespace) -> bool {
        self.0 & ns.bit() != 0
    }
    pub fn insert(&mut self, ns: Namespace) {
        self.0 |= ns.bit();
    }
    pub fn remove(&mut self, ns: Namespace) {
        self.0 &= !ns.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ORDER
            .into_iter()
            .filter(move |n| self.contains(*n))
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut s = NamespaceSet::EMPTY;
        for n in iter {
            s.insert(n);
        }
        s
    }
}

/// Parse `-s LIST`: `|`-separated, case-insensitive, both LXC spellings
/// (`MOUNT PID UTSNAME IPC USER NETWORK CGROUP TIME` and `mnt pid uts ipc user net cgroup time`).
pub fn parse_namespaces(list: &str) -> Result<NamespaceSet, AttachError> {
    let mut set = NamespaceSet::EMPTY;
    for tok in list.split('|').map(str::trim) {
        let ns = match tok.to_ascii_lowercase().as_str() {
            "mount" | "mnt" => Namespace::Mnt,
            "pid" => Namespace::Pid,
            "utsname" | "uts" => Namespace::Uts,
            "ipc" => Namespace::Ipc,
            "user" => Namespace::User,
            "network" | "net" => Namespace::Net,
            "cgroup" => Namespace::Cgroup,
            "time" => Namespace::Time,
            _ => {
                return Err(AttachError::invalid(
                    "namespace list",
                    list,
                    format!(
                        "unknown namespace {tok:?} (known: MOUNT PID UTSNAME IPC USER NETWORK \
                         CGROUP TIME, or mnt pid uts ipc user net cgroup time)"
                    ),
                ))
            }
        };
        set.insert(ns);
    }
    Ok(set)
}

/// What `-e` skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elevated {
    /// Do not join the container's cgroups (nor its cgroup namespace).
    pub cgroup: bool,
    /// Do not reduce the capability bounding set to the container init's.
    pub cap: bool,
    /// No LSM label transition (lxrs has no LSM support yet: accepted, nothing to skip).
    pub lsm: bool,
}

impl Elevated {
    pub const NONE: Elevated = Elevated {
        cgroup: false,
        cap: false,
        lsm: false,
    };
    pub const ALL: Elevated = Elevated {
        cgroup: true,
        cap: true,
        lsm: true,
    };
}

/// Parse `-e[=LIST]`: `None` or an empty list = all; else `|`-separated `CGROUP CAP LSM`, any case.
pub fn parse_elevated(list: Option<&str>) -> Result<Elevated, AttachError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(Elevated::ALL);
    };
    let mut e = Elevated::NONE;
    for tok in list.split('|').map(str::trim) {
        match tok.to_ascii_uppercase().as_str() {
            "CGROUP" => e.cgroup = true,
            "CAP" => e.cap = true,
            "LSM" => e.lsm = true,
            _ => {
                return Err(AttachError::invalid(
                    "privilege list",
                    list,
                    format!("unknown privilege {tok:?} (known: CGROUP CAP LSM)"),
                ))
            }
        }
    }
    Ok(e)
}

/// Parse `-a ARCH` (the names `lxc.arch` accepts).
pub fn parse_arch(arch: &str) -> Result<Personality, AttachError> {
    match arch.trim().to_ascii_lowercase().as_str() {
        "arm" | "armel" | "armhf" | "armv7l" | "athlon" | "i386" | "i486" | "i586" | "i686"
        | "linux32" | "mips" | "mipsel" | "ppc" | "powerpc" | "x86" => Ok(Personality::Linux32),
        "aarch64" | "amd64" | "arm64" | "linux64" | "mips64" | "mips64el" | "ppc64"
        | "ppc64el" | "ppc64le" | "powerpc64" | "riscv64" | "s390x" | "x86_64" => {
            Ok(Personality::Linux64)
        }
        _ => Err(AttachError::invalid(
            "architecture",
            arch,
            "expected one of x86_64 amd64 arm64 aarch64 i686 i386 x86 armhf armel ... (lxc.arch names)",
        )),
    }
}

/// personality(2) value of a [`Personality`].
pub fn persona_value(p: Personality) -> u32 {
    match p {
        Personality::Linux32 => 0x0008, // PER_LINUX32
        Personality::Linux64 => 0x0000, // PER_LINUX
    }
}

/// `--keep-env` (default) or `--clear-env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvPolicy {
    #[default]
    Keep,
    Clear,
}

fn split_var(s: &OsStr) -> (OsString, Option<OsString>) {
    let b = s.as_bytes();
    match b.iter().position(|c| *c == b'=') {
        Some(i) => (
            OsStr::from_bytes(&b[..i]).to_owned(),
            Some(OsStr::from_bytes(&b[i + 1..]).to_owned()),
        ),
        None => (s.to_owned(), None),
    }
}

fn set(env: &mut Vec<(OsString, OsString)>, k: OsString, v: OsString) {
    match env.iter_mut().find(|(ek, _)| *ek == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    }
}

/// The environment of the attached command, LXC's rules in LXC's order:
/// the caller's (`Keep`) or only the `keep_vars` of it plus a default `PATH` (`Clear`);
/// then `container=lxc`; then the container's `lxc.environment`; then `-v` last.
/// In the last two, `VAR=VALUE` sets and a bare `VAR` copies the caller's value (if any).
pub fn build_env(
    policy: EnvPolicy,
    ours: &[(OsString, OsString)],
    keep_vars: &[String],
    container_env: &[String],
    set_vars: &[OsString],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = match policy {
        EnvPolicy::Keep => ours.to_vec(),
        EnvPolicy::Clear => {
            let mut e: Vec<_> = ours
                .iter()
                .filter(|(k, _)| keep_vars.iter().any(|kv| OsStr::new(kv) == k))
                .cloned()
                .collect();
            if !e.iter().any(|(k, _)| k == "PATH") {
                e.push(("PATH".into(), DEFAULT_PATH.into()));
            }
            e
        }
    };
    set(&mut env, "container".into(), "lxc".into());
    let extra = container_env
        .iter()
        .map(|s| OsString::from(s.as_str()))
        .chain(set_vars.iter().cloned());
    for item in extra {
        match split_var(&item) {
            (k, _) if k.is_empty() => {}
            (k, Some(v)) => set(&mut env, k, v),
            (k, None) => {
                if let Some((_, v)) = ours.iter().find(|(ok, _)| *ok == k) {
                    set(&mut env, k, v.clone());
                }
            }
        }
    }
    env
}

/// `CapBnd` of a `/proc/<pid>/status`.
pub fn parse_capbnd(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// `Threads` of a `/proc/<pid>/status`.
pub fn parse_threads(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `/proc/<pid>/personality` (hex).
pub fn parse_personality(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim(), 16).ok()
}

/// Login shell (field 7) of `uid` in a passwd file; `None` if absent or empty.
pub fn shell_from_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid) && !f[6].trim().is_empty() {
            Some(f[6].trim().to_string())
        } else {
            None
        }
    })
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    pub hierarchy: u32,
    /// `cpu,cpuacct`, `name=systemd`; empty for the cgroup2 hierarchy.
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(s: &str) -> Vec<CgroupEntry> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let hierarchy = it.next()?.parse().ok()?;
            let ctl = it.next()?;
            let path = it.next()?.to_string();
            let controllers = ctl
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(CgroupEntry {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// A cgroup filesystem mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub v2: bool,
    /// Super options (for v1 they name the controllers: `rw,cpu,cpuacct`, `rw,name=systemd`).
    pub options: Vec<String>,
    /// Root of the mount inside its hierarchy.
    pub root: String,
    pub mount_point: PathBuf,
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup and cgroup2 mounts of a mountinfo file.
pub fn parse_mountinfo_cgroups(s: &str) -> Vec<CgroupMount> {
    s.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                return None;
            }
            let v2 = match post[0] {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                v2,
                options: post[2].split(',').map(str::to_string).collect(),
                root: unescape_mountinfo(pre[3]),
                mount_point: PathBuf::from(unescape_mountinfo(pre[4])),
            })
        })
        .collect()
}

/// For each hierarchy of `entries` that is mounted here, the file of the entry's cgroup that
/// the attached process (single-threaded, just forked) writes `0` into to join it: v1's
/// `tasks` (a thread moving itself waits for no RCU grace period, where a move through
/// `cgroup.procs` does) and v2's `cgroup.procs`. Hierarchies not mounted (or mounted from a
/// subtree not containing the cgroup) are skipped: they cannot be joined from here.
pub fn cgroup_join_paths(entries: &[CgroupEntry], mounts: &[CgroupMount]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in entries {
        let v2 = e.hierarchy == 0 && e.controllers.is_empty();
        let found = mounts.iter().find_map(|m| {
            if m.v2 != v2 {
                return None;
            }
            if !v2
                && !e
                    .controllers
                    .iter()
                    .all(|c| m.options.iter().any(|o| o == c))
            {
                return None;
            }
            let rel = if m.root == "/" {
                e.path.as_str()
            } else {
                let r = e.path.strip_prefix(m.root.as_str())?;
                if !(r.is_empty() || r.starts_with('/')) {
                    return None;
                }
                r
            };
            let file = if v2 { "cgroup.procs" } else { "tasks" };
            Some(join_rel(&m.mount_point, rel).join(file))
        });
        if let Some(p) = found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn join_rel(base: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_both_spellings_any_case() {
        let s = parse_namespaces("NETWORK|UTSNAME").unwrap();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Namespace::Uts, Namespace::Net]
        );
        let s = parse_namespaces("net|uts|Mount|pid|ipc|user|cgroup|time").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), Namespace::ORDER.to_vec());
        assert_eq!(
            parse_namespaces("mnt").unwrap().iter().next(),
            Some(Namespace::Mnt)
        );
        let e = parse_namespaces("NETWORK|bogus").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("NETWORK|bogus"), "{e}");
        assert!(parse_namespaces("").is_err());
    }

    #[test]
    fn elevated_lists() {
        assert_eq!(parse_elevated(None).unwrap(), Elevated::ALL);
        assert_eq!(parse_elevated(Some("")).unwrap(), Elevated::ALL);
        let e = parse_elevated(Some("CGROUP|lsm")).unwrap();
        assert!(e.cgroup && e.lsm && !e.cap);
        assert!(parse_elevated(Some("CAP|ROOT"))
            .unwrap_err()
            .to_string()
            .contains("ROOT"));
    }

    #[test]
    fn arch_names() {
        assert_eq!(parse_arch("i686").unwrap(), Personality::Linux32);
        assert_eq!(parse_arch("amd64").unwrap(), Personality::Linux64);
        assert_eq!(parse_arch("X86_64").unwrap(), Personality::Linux64);
        assert!(parse_arch("vax").unwrap_err().to_string().contains("vax"));
        assert_eq!(persona_value(Personality::Linux32), 8);
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn env_keep_adds_container_then_config_then_v() {
        let ours = env(&[("HOME", "/root"), ("PATH", "/x"), ("TERM", "xterm")]);
        let out = build_env(
            EnvPolicy::Keep,
            &ours,
            &[],
            &["A=1".into(), "TERM".into(), "container=other".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(
            out,
            env(&[
                ("HOME", "/root"),
                ("PATH", "/x"),
                ("TERM", "xterm"),
                ("container", "other"),
                ("A", "2"),
                ("B", "3")
            ])
        );
    }

    #[test]
    fn env_clear_keeps_only_kept_vars_and_default_path() {
        let ours = env(&[("HOME", "/root"), ("PATH", "/x"), ("FOO", "bar")]);
        let out = build_env(EnvPolicy::Clear, &ours, &["FOO".into()], &[], &[]);
        assert_eq!(
            out,
            env(&[("FOO", "bar"), ("PATH", DEFAULT_PATH), ("container", "lxc")])
        );
        let out = build_env(
            EnvPolicy::Clear,
            &ours,
            &["PATH".into()],
            &[],
            &["X=1".into()],
        );
        assert_eq!(
            out,
            env(&[("PATH", "/x"), ("container", "lxc"), ("X", "1")])
        );
    }

    #[test]
    fn status_fields() {
        let st = "Name:\tsleep\nThreads:\t1\nCapBnd:\t000001fffdffffff\n";
        assert_eq!(parse_capbnd(st), Some(0x1fffdffffff));
        assert_eq!(parse_threads(st), Some(1));
        assert_eq!(parse_capbnd("Name: x\n"), None);
        assert_eq!(parse_personality("00000008\n"), Some(8));
    }

    #[test]
    fn passwd_shell() {
        let p =
            "root:x:0:0:root:/root:/bin/bash\nfoo:x:1000:1000::/home/foo:\nbar:x:7:7::/:/bin/zsh\n";
        assert_eq!(shell_from_passwd(p, 0).as_deref(), Some("/bin/bash"));
        assert_eq!(shell_from_passwd(p, 7).as_deref(), Some("/bin/zsh"));
        assert_eq!(shell_from_passwd(p, 1000), None);
        assert_eq!(shell_from_passwd(p, 5), None);
    }

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu\\040acct rw,relatime - cgroup cgroup rw,cpuacct
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:36 /sub /mnt/pidsub rw,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn cgroup_paths_from_proc_and_mountinfo() {
        let mounts = parse_mountinfo_cgroups(MOUNTINFO);
        assert_eq!(mounts.len(), 6);
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu acct")
        );
        let entries = parse_proc_cgroup(
            "9:name=systemd:/lxc/c1\n8:pids:/lxc/c1\n2:cpuacct:/\n1:cpu:/a:b\n5:net_cls:/x\n0::/lxc/c1\n",
        );
        assert_eq!(entries[3].path, "/a:b");
        let p = cgroup_join_paths(&entries, &mounts);
        let want: Vec<PathBuf> = [
            "/sys/fs/cgroup/systemd/lxc/c1/tasks",
            "/sys/fs/cgroup/pids/lxc/c1/tasks",
            "/sys/fs/cgroup/cpu acct/tasks",
            "/sys/fs/cgroup/cpu/a:b/tasks",
            "/sys/fs/cgroup/unified/lxc/c1/cgroup.procs",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(p, want);
    }

    #[test]
    fn cgroup_subtree_mount_is_used_when_it_contains_the_path() {
        let mounts = parse_mountinfo_cgroups(
            "50 31 0:36 /sub /mnt/pidsub rw - cgroup cgroup rw,pids\n\
             51 31 0:36 / /mnt/pids rw - cgroup cgroup rw,pids\n",
        );
        let e = parse_proc_cgroup("8:pids:/sub/c\n");
        assert_eq!(
            cgroup_join_paths(&e, &mounts),
            vec![PathBuf::from("/mnt/pidsub/c/tasks")]
        );
        let e = parse_proc_cgroup("8:pids:/subway\n");
        assert_eq!(
            cgroup_join_paths(&e, &mounts),
            vec![PathBuf::from("/mnt/pids/subway/tasks")]
        );
    }
}
