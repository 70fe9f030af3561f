//! The attached process, from fork to exec.
//!
//! Every state-changing call goes through [`AttachSys`]: [`super::linux::LinuxAttachSys`] is
//! the real one; the tests below use a recording fake, so the order of the steps (cgroups before
//! the user namespace, namespaces in LXC's order, bounding set after the user namespace, ids
//! last, ...) is unit-tested without root.

use super::plan::Namespace;
use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The kernel interface of the attached process (between fork and exec).
pub trait AttachSys {
    /// write(2) all of `data` to an already-open file (a cgroup `tasks` or `cgroup.procs`).
    fn write_fd(&mut self, fd: RawFd, data: &[u8]) -> Result<(), Errno>;
    fn setns(&mut self, fd: RawFd, ns: Namespace) -> Result<(), Errno>;
    /// unshare(CLONE_NEWNS).
    fn unshare_mnt(&mut self) -> Result<(), Errno>;
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: libc::c_ulong,
    ) -> Result<(), Errno>;
    /// umount2(target, MNT_DETACH).
    fn umount_detach(&mut self, target: &str) -> Result<(), Errno>;
    fn chdir(&mut self, path: &Path) -> Result<(), Errno>;
    fn personality(&mut self, persona: u32) -> Result<(), Errno>;
    /// Highest capability the kernel knows.
    fn cap_last_cap(&mut self) -> u32;
    /// prctl(PR_CAPBSET_DROP).
    fn capbset_drop(&mut self, cap: u32) -> Result<(), Errno>;
    fn setsid(&mut self) -> Result<(), Errno>;
    /// ioctl(fd, TIOCSCTTY, 0).
    fn set_ctty(&mut self, fd: RawFd) -> Result<(), Errno>;
    fn dup2(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno>;
    fn fchown(&mut self, fd: RawFd, uid: u32, gid: u32) -> Result<(), Errno>;
    /// setgroups(0, NULL).
    fn setgroups_empty(&mut self) -> Result<(), Errno>;
    fn setgid(&mut self, gid: u32) -> Result<(), Errno>;
    fn setuid(&mut self, uid: u32) -> Result<(), Errno>;
    /// prctl(PR_SET_NO_NEW_PRIVS, 1).
    fn no_new_privs(&mut self) -> Result<(), Errno>;
    /// The caller's signal mask back, SIGPIPE back to SIG_DFL (Rust ignores it).
    fn restore_signals(&mut self) -> Result<(), Errno>;
    /// close_range(from, ~0, CLOSE_RANGE_CLOEXEC): no host descriptor leaks into the container.
    fn cloexec_from(&mut self, fd: RawFd) -> Result<(), Errno>;
    /// execve(2); returns only on failure.
    fn execve(&mut self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno;
    /// A warning for the user (the attach goes on).
    fn warn(&mut self, msg: &str);
}

/// Everything the attached process does, decided by the parent before the fork.
#[derive(Debug, Clone, Default)]
pub struct ChildPlan {
    /// Open cgroup `tasks` / `cgroup.procs` files (written `0` = this process), with their
    /// paths for messages.
    pub cgroup_fds: Vec<(RawFd, PathBuf)>,
    /// Namespaces to enter here, in [`Namespace::ORDER`]; the pid namespace is not among them
    /// (the parent entered it before forking: it applies to children only).
    pub namespaces: Vec<(Namespace, RawFd)>,
    /// `-R` and the mount namespace is not entered.
    pub remount_sys_proc: bool,
    /// The caller's working directory, tried inside the container (else `/`).
    pub cwd: Option<PathBuf>,
    /// personality(2) to set, if it differs from ours.
    pub persona: Option<u32>,
    /// Bounding set to reduce to (the container init's CapBnd); `None` with `-e CAP`.
    pub capbnd: Option<u64>,
    /// pty slave, and which of stdin/stdout/stderr it replaces (those that are terminals).
    pub pty_slave: Option<(RawFd, [bool; 3])>,
    pub uid: u32,
    pub gid: u32,
    pub no_new_privs: bool,
    /// Program to run: a path, or a name searched in `path`.
    pub file: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// `PATH` of the new environment (the search happens inside the container).
    pub path: Vec<u8>,
}

/// Why the attached process gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailure {
    /// `true`: every setup step worked but exec failed.
    pub exec: bool,
    pub op: String,
    pub errno: Errno,
}

impl ChildFailure {
    fn setup(op: impl Into<String>, errno: Errno) -> Self {
        ChildFailure {
            exec: false,
            op: op.into(),
            errno,
        }
    }

    /// Exit status of the attached process when it fails.
    pub fn exit_code(&self) -> i32 {
        match (self.exec, self.errno) {
            (false, _) => 1,
            (true, Errno::ENOENT) => 127,
            (true, _) => 126,
        }
    }

    /// Wire format on the error pipe: errno (i32 LE), kind byte, message.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = (self.errno as i32).to_le_bytes().to_vec();
        v.push(self.exec as u8);
        v.extend_from_slice(self.op.as_bytes());
        v
    }

    pub fn decode(b: &[u8]) -> Option<ChildFailure> {
        if b.len() < 5 {
            return None;
        }
        let errno = Errno::from_raw(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        Some(ChildFailure {
            exec: b[4] != 0,
            op: String::from_utf8_lossy(&b[5..]).into_owned(),
            errno,
        })
    }
}

/// Run the attached process's setup and exec the command. Returns only on failure.
pub fn run_child(sys: &mut dyn AttachSys, plan: &ChildPlan) -> ChildFailure {
    match setup(sys, plan) {
        Ok(()) => exec_search(sys, plan),
        Err(f) => f,
    }
}

fn setup(sys: &mut dyn AttachSys, plan: &ChildPlan) -> Result<(), ChildFailure> {
    let fail = |op: String| move |e: Errno| ChildFailure::setup(op, e);
    // 1. cgroups, while still in the host's namespaces with host privileges.
    for (fd, path) in &plan.cgroup_fds {
        sys.write_fd(*fd, b"0")
            .map_err(fail(format!("join cgroup (write {})", path.display())))?;
    }
    // 2. namespaces, user first.
    for (ns, fd) in &plan.namespaces {
        sys.setns(*fd, *ns)
            .map_err(fail(format!("enter {} namespace (setns)", ns.proc_name())))?;
    }
    // 3. -R: fresh /proc and /sys for the entered pid and network namespaces.
    if plan.remount_sys_proc {
        sys.unshare_mnt()
            .map_err(fail("unshare a mount namespace for -R".into()))?;
        sys.mount(None, "/", None, libc::MS_SLAVE | libc::MS_REC)
            .map_err(fail("make / rslave for -R".into()))?;
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        for (target, fstype) in [("/proc", "proc"), ("/sys", "sysfs")] {
            let _ = sys.umount_detach(target);
            sys.mount(Some(fstype), target, Some(fstype), flags)
                .map_err(fail(format!("mount {fstype} on {target} for -R")))?;
        }
    }
    // 4. working directory: ours if the container has it, else / (a warning only).
    let mut in_cwd = false;
    if let Some(cwd) = &plan.cwd {
        match sys.chdir(cwd) {
            Ok(()) => in_cwd = true,
            Err(e) => sys.warn(&format!(
                "cannot change to directory {} in the container ({e}); using /",
                cwd.display()
            )),
        }
    }
    if !in_cwd {
        sys.chdir(Path::new("/"))
            .map_err(fail("change to directory / in the container".into()))?;
    }
    // 5. personality.
    if let Some(p) = plan.persona {
        sys.personality(p)
            .map_err(fail(format!("set personality {p:#x}")))?;
    }
    // 6. bounding set (after setns(user), which resets it to full).
    if let Some(bnd) = plan.capbnd {
        let last = sys.cap_last_cap().min(63);
        for cap in 0..=last {
            if bnd & (1u64 << cap) == 0 {
                match sys.capbset_drop(cap) {
                    Ok(()) | Err(Errno::EINVAL) => {}
                    Err(e) => {
                        return Err(ChildFailure::setup(
                            format!("drop capability {cap} from the bounding set"),
                            e,
                        ))
                    }
                }
            }
        }
    }
    // 7. controlling terminal.
    if let Some((slave, which)) = plan.pty_slave {
        sys.setsid().map_err(fail("setsid".into()))?;
        sys.set_ctty(slave)
            .map_err(fail("make the pty the controlling terminal".into()))?;
        for (target, used) in which.iter().enumerate() {
            if *used {
                sys.dup2(slave, target as RawFd)
                    .map_err(fail(format!("dup2 the pty onto fd {target}")))?;
            }
        }
        if plan.uid != 0 || plan.gid != 0 {
            // Best effort, like LXC: the user should own its terminal.
            let _ = sys.fchown(slave, plan.uid, plan.gid);
        }
    }
    // 8. ids.
    sys.setgroups_empty()
        .map_err(fail("drop supplementary groups (setgroups)".into()))?;
    sys.setgid(plan.gid)
        .map_err(fail(format!("setgid({})", plan.gid)))?;
    sys.setuid(plan.uid)
        .map_err(fail(format!("setuid({})", plan.uid)))?;
    // 9. lxc.no_new_privs.
    if plan.no_new_privs {
        sys.no_new_privs()
            .map_err(fail("set no_new_privs".into()))?;
    }
    // 10. signals and descriptors as a freshly exec'd program expects them.
    sys.restore_signals()
        .map_err(fail("restore the signal mask".into()))?;
    sys.cloexec_from(3)
        .map_err(fail("mark descriptors close-on-exec".into()))?;
    Ok(())
}

/// execvp(3)-like search, but in the `PATH` of the *new* environment, inside the container.
fn exec_search(sys: &mut dyn AttachSys, plan: &ChildPlan) -> ChildFailure {
    let file = plan.file.as_bytes();
    let name = String::from_utf8_lossy(file).into_owned();
    let failed = |errno| ChildFailure {
        exec: true,
        op: name.clone(),
        errno,
    };
    if file.is_empty() {
        return failed(Errno::ENOENT);
    }
    if file.contains(&b'/') {
        return failed(sys.execve(&plan.file, &plan.argv, &plan.env));
    }
    let mut seen_eacces = false;
    for dir in plan.path.split(|c| *c == b':') {
        let mut full = if dir.is_empty() {
            b".".to_vec()
        } else {
            dir.to_vec()
        };
        full.push(b'/');
        full.extend_from_slice(file);
        let Ok(c) = CString::new(full) else { continue };
        match sys.execve(&c, &plan.argv, &plan.env) {
            Errno::EACCES => seen_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ELOOP | Errno::ENAMETOOLONG => {
            }
            e => return failed(e),
        }
    }
    failed(if seen_eacces {
        Errno::EACCES
    } else {
        Errno::ENOENT
    })
}

/// The `PATH` value of an environment list of `KEY=VALUE` strings.
pub fn path_of(env: &[CString]) -> Vec<u8> {
    env.iter()
        .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| super::plan::DEFAULT_PATH.as_bytes().to_vec())
}

/// `KEY=VALUE` C strings of an environment; entries that cannot be passed (NUL bytes, `=` or
/// empty in the key) are skipped.
pub fn env_cstrings(env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Vec<CString> {
    env.iter()
        .filter(|(k, _)| !k.is_empty() && !k.as_bytes().contains(&b'='))
        .filter_map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        calls: Vec<String>,
        fail: Option<(&'static str, Errno)>,
        exec_ok: Vec<&'static str>,
        exec_eacces: Vec<&'static str>,
    }

    impl Fake {
        fn rec(&mut self, call: String) -> Result<(), Errno> {
            let r = match self.fail {
                Some((prefix, e)) if call.starts_with(prefix) => Err(e),
                _ => Ok(()),
            };
            self.calls.push(call);
            r
        }
    }

    impl AttachSys for Fake {
        fn write_fd(&mut self, fd: RawFd, data: &[u8]) -> Result<(), Errno> {
            self.rec(format!("write {fd} {}", String::from_utf8_lossy(data)))
        }
        fn setns(&mut self, fd: RawFd, ns: Namespace) -> Result<(), Errno> {
            self.rec(format!("setns {} {fd}", ns.proc_name()))
        }
        fn unshare_mnt(&mut self) -> Result<(), Errno> {
            self.rec("unshare mnt".into())
        }
        fn mount(
            &mut self,
            source: Option<&str>,
            target: &str,
            fstype: Option<&str>,
            _flags: libc::c_ulong,
        ) -> Result<(), Errno> {
            self.rec(format!("mount {source:?} {target} {fstype:?}"))
        }
        fn umount_detach(&mut self, target: &str) -> Result<(), Errno> {
            self.rec(format!("umount {target}"))
        }
        fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
            self.rec(format!("chdir {}", path.display()))
        }
        fn personality(&mut self, persona: u32) -> Result<(), Errno> {
            self.rec(format!("personality {persona}"))
        }
        fn cap_last_cap(&mut self) -> u32 {
            40
        }
        fn capbset_drop(&mut self, cap: u32) -> Result<(), Errno> {
            self.rec(format!("capdrop {cap}"))
        }
        fn setsid(&mut self) -> Result<(), Errno> {
            self.rec("setsid".into())
        }
        fn set_ctty(&mut self, fd: RawFd) -> Result<(), Errno> {
            self.rec(format!("ctty {fd}"))
        }
        fn dup2(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
            self.rec(format!("dup2 {fd} {target}"))
        }
        fn fchown(&mut self, fd: RawFd, uid: u32, gid: u32) -> Result<(), Errno> {
            self.rec(format!("fchown {fd} {uid} {gid}"))
        }
        fn setgroups_empty(&mut self) -> Result<(), Errno> {
            self.rec("setgroups".into())
        }
        fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
            self.rec(format!("setgid {gid}"))
        }
        fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
            self.rec(format!("setuid {uid}"))
        }
        fn no_new_privs(&mut self) -> Result<(), Errno> {
            self.rec("nnp".into())
        }
        fn restore_signals(&mut self) -> Result<(), Errno> {
            self.rec("signals".into())
        }
        fn cloexec_from(&mut self, fd: RawFd) -> Result<(), Errno> {
            self.rec(format!("cloexec {fd}"))
        }
        fn execve(&mut self, path: &CStr, _argv: &[CString], _env: &[CString]) -> Errno {
            let p = path.to_string_lossy().into_owned();
            self.calls.push(format!("exec {p}"));
            if self.exec_ok.contains(&p.as_str()) {
                Errno::UnknownErrno // stands for "did not return"
            } else if self.exec_eacces.contains(&p.as_str()) {
                Errno::EACCES
            } else {
                Errno::ENOENT
            }
        }
        fn warn(&mut self, msg: &str) {
            self.calls.push(format!("warn {msg}"));
        }
    }

    fn plan() -> ChildPlan {
        ChildPlan {
            cgroup_fds: vec![
                (10, "/sys/fs/cgroup/pids/c/tasks".into()),
                (11, "/u".into()),
            ],
            namespaces: vec![
                (Namespace::User, 20),
                (Namespace::Mnt, 21),
                (Namespace::Net, 22),
            ],
            cwd: Some("/root/work".into()),
            capbnd: Some(!(1u64 << 25) & ((1u64 << 41) - 1)),
            file: CString::new("true").unwrap(),
            argv: vec![CString::new("true").unwrap()],
            path: b"/usr/bin:/bin".to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn default_sequence_order() {
        let mut f = Fake {
            exec_ok: vec!["/bin/true"],
            ..Default::default()
        };
        let r = run_child(&mut f, &plan());
        assert_eq!(r.errno, Errno::UnknownErrno);
        assert_eq!(
            f.calls,
            vec![
                "write 10 0",
                "write 11 0",
                "setns user 20",
                "setns mnt 21",
                "setns net 22",
                "chdir /root/work",
                "capdrop 25",
                "setgroups",
                "setgid 0",
                "setuid 0",
                "signals",
                "cloexec 3",
                "exec /usr/bin/true",
                "exec /bin/true",
            ]
        );
    }

    #[test]
    fn pty_remount_personality_ids_nnp() {
        let mut p = plan();
        p.cgroup_fds.clear();
        p.namespaces = vec![(Namespace::Net, 22)];
        p.remount_sys_proc = true;
        p.capbnd = None;
        p.persona = Some(8);
        p.pty_slave = Some((30, [true, false, true]));
        p.uid = 1000;
        p.gid = 100;
        p.no_new_privs = true;
        p.file = CString::new("/bin/sh").unwrap();
        let mut f = Fake::default();
        let r = run_child(&mut f, &p);
        assert_eq!(
            r,
            ChildFailure {
                exec: true,
                op: "/bin/sh".into(),
                errno: Errno::ENOENT
            }
        );
        assert_eq!(r.exit_code(), 127);
        assert_eq!(
            f.calls,
            vec![
                "setns net 22",
                "unshare mnt",
                "mount None / None",
                "umount /proc",
                "mount Some(\"proc\") /proc Some(\"proc\")",
                "umount /sys",
                "mount Some(\"sysfs\") /sys Some(\"sysfs\")",
                "chdir /root/work",
                "personality 8",
                "setsid",
                "ctty 30",
                "dup2 30 0",
                "dup2 30 2",
                "fchown 30 1000 100",
                "setgroups",
                "setgid 100",
                "setuid 1000",
                "nnp",
                "signals",
                "cloexec 3",
                "exec /bin/sh",
            ]
        );
    }

    #[test]
    fn missing_cwd_warns_and_uses_root() {
        let mut f = Fake {
            fail: Some(("chdir /root", Errno::ENOENT)),
            ..Default::default()
        };
        let mut p = plan();
        p.capbnd = None;
        run_child(&mut f, &p);
        assert!(f
            .calls
            .iter()
            .any(|c| c.starts_with("warn cannot change to directory /root/work")));
        let i = f
            .calls
            .iter()
            .position(|c| c == "chdir /")
            .expect("chdir /");
        assert!(f.calls[i + 1..].iter().any(|c| c == "setuid 0"));
    }

    #[test]
    fn setup_failure_stops_before_exec() {
        let mut f = Fake {
            fail: Some(("setns mnt", Errno::EPERM)),
            ..Default::default()
        };
        let r = run_child(&mut f, &plan());
        assert!(!r.exec);
        assert_eq!(r.errno, Errno::EPERM);
        assert!(r.op.contains("mnt namespace"), "{}", r.op);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(f.calls.last().unwrap(), "setns mnt 21");
        let round = ChildFailure::decode(&r.encode()).unwrap();
        assert_eq!(round, r);
    }

    #[test]
    fn exec_search_reports_eacces_over_enoent() {
        let mut f = Fake {
            exec_eacces: vec!["/usr/bin/true"],
            ..Default::default()
        };
        let mut p = plan();
        p.cgroup_fds.clear();
        p.namespaces.clear();
        p.capbnd = None;
        let r = run_child(&mut f, &p);
        assert!(r.exec);
        assert_eq!(r.errno, Errno::EACCES);
        assert_eq!(r.exit_code(), 126);
    }

    #[test]
    fn env_helpers() {
        let env = env_cstrings(&[
            ("A".into(), "1".into()),
            ("".into(), "x".into()),
            ("B=C".into(), "x".into()),
            ("PATH".into(), "/p:/q".into()),
        ]);
        assert_eq!(env.len(), 2);
        assert_eq!(path_of(&env), b"/p:/q".to_vec());
        assert_eq!(
            path_of(&[]),
            super::super::plan::DEFAULT_PATH.as_bytes().to_vec()
        );
    }
}
