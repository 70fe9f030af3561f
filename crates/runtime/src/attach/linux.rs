//! The real [`AttachSys`]: thin wrappers over libc, used only in the forked attached process.

use super::child::AttachSys;
use super::plan::Namespace;
use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Kernel calls of the attached process.
pub struct LinuxAttachSys {
    /// Signal mask of the caller before `attach` blocked the signals it forwards.
    pub saved_mask: libc::sigset_t,
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

impl AttachSys for LinuxAttachSys {
    fn write_fd(&mut self, fd: RawFd, data: &[u8]) -> Result<(), Errno> {
        // SAFETY: `data` is a valid buffer of `data.len()` bytes for the duration of the call.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match n {
            -1 => Err(Errno::last()),
            n if n as usize == data.len() => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    fn setns(&mut self, fd: RawFd, ns: Namespace) -> Result<(), Errno> {
        // SAFETY: plain syscall on a descriptor we own; no memory is passed.
        check(unsafe { libc::setns(fd, ns.clone_flag()) })
    }

    fn unshare_mnt(&mut self) -> Result<(), Errno> {
        // SAFETY: plain syscall; the process is single-threaded (forked child).
        check(unsafe { libc::unshare(libc::CLONE_NEWNS) })
    }

    fn mount(
        &mut self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: libc::c_ulong,
    ) -> Result<(), Errno> {
        let source = source.map(cstr);
        let target = cstr(target);
        let fstype = fstype.map(cstr);
        // SAFETY: all pointers are NUL-terminated strings alive for the call, or NULL.
        check(unsafe {
            libc::mount(
                source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                target.as_ptr(),
                fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                flags,
                std::ptr::null(),
            )
        })
    }

    fn umount_detach(&mut self, target: &str) -> Result<(), Errno> {
        let target = cstr(target);
        // SAFETY: `target` is a NUL-terminated string alive for the call.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
    }

    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `p` is a NUL-terminated string alive for the call.
        check(unsafe { libc::chdir(p.as_ptr()) })
    }

    fn personality(&mut self, persona: u32) -> Result<(), Errno> {
        // SAFETY: plain syscall with an integer argument.
        check(unsafe { libc::personality(persona as libc::c_ulong) })
    }

    fn cap_last_cap(&mut self) -> u32 {
        lxrs_cgroup::read_pseudo(std::path::Path::new("/proc/sys/kernel/cap_last_cap"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    }

    fn capbset_drop(&mut self, cap: u32) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })
    }

    fn setsid(&mut self) -> Result<(), Errno> {
        // SAFETY: plain syscall.
        check(unsafe { libc::setsid() })
    }

    fn set_ctty(&mut self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: TIOCSCTTY takes an integer argument, no memory.
        check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) })
    }

    fn dup2(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        // SAFETY: plain syscall on descriptors; replacing `target` is intended.
        check(unsafe { libc::dup2(fd, target) })
    }

    fn fchown(&mut self, fd: RawFd, uid: u32, gid: u32) -> Result<(), Errno> {
        // SAFETY: plain syscall on a descriptor we own.
        check(unsafe { libc::fchown(fd, uid, gid) })
    }

    fn setgroups_empty(&mut self) -> Result<(), Errno> {
        // SAFETY: a zero-length list with a NULL pointer is valid for setgroups(2).
        check(unsafe { libc::setgroups(0, std::ptr::null()) })
    }

    fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        // SAFETY: plain syscall. (The process is single-threaded: no setxid broadcast needed.)
        check(unsafe { libc::setgid(gid) })
    }

    fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        // SAFETY: plain syscall; single-threaded process.
        check(unsafe { libc::setuid(uid) })
    }

    fn no_new_privs(&mut self) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn restore_signals(&mut self) -> Result<(), Errno> {
        // SAFETY: resetting SIGPIPE to the default disposition installs no Rust handler.
        if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(Errno::last());
        }
        // SAFETY: `saved_mask` is an initialised sigset_t filled by sigprocmask in the parent.
        let r =
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.saved_mask, std::ptr::null_mut()) };
        check(r)
    }

    fn cloexec_from(&mut self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing, it only sets flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                fd as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if r == -1 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    fn execve(&mut self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
        let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
        a.push(std::ptr::null());
        let mut e: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
        e.push(std::ptr::null());
        // SAFETY: `path` and every element are NUL-terminated strings kept alive by the caller;
        // both arrays are NULL-terminated.
        unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
        Errno::last()
    }

    fn warn(&mut self, msg: &str) {
        tracing::info!("{msg}");
    }
}
