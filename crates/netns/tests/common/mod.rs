//! Shared fixtures: every test works in network namespaces it creates itself; they vanish
//! (with every link in them) when the fixture is dropped, even on panic.

#![allow(dead_code)]

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use lxrs_netns::{NetNs, Netlink};

/// Root is required: these tests create namespaces and links.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these integration tests need root (they create network namespaces)"
    );
}

/// A fresh network namespace and a netlink socket bound in it.
pub struct TestNs {
    pub nl: Netlink,
    pub ns: NetNs,
}

impl TestNs {
    pub fn new() -> TestNs {
        require_root();
        let ns = NetNs::create().expect("create test netns");
        let nl = Netlink::in_ns(ns.as_fd()).expect("netlink in test netns");
        TestNs { nl, ns }
    }

    /// Run `f` on this thread inside the namespace.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        self.ns.run(f).expect("enter test netns")
    }
}

/// A process parked in a namespace (so the namespace has a pid, like a container's init).
/// Killed and reaped on drop.
pub struct NsProc(pub Child);

impl NsProc {
    pub fn spawn(ns: &NetNs) -> NsProc {
        let fd = ns.as_fd().as_raw_fd();
        let mut cmd = Command::new("sleep");
        cmd.arg("1000").stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only calls setns(2),
        // which is async-signal-safe; `fd` stays open in the child until exec (it is O_CLOEXEC).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        NsProc(cmd.spawn().expect("spawn sleep in test netns"))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
