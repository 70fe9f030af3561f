//! The real [`Syscall`] implementation.

use super::{NodeKind, Syscall};
use crate::spec::Personality;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Talks to the kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

/// `struct __user_cap_header_struct`
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn unshare(&self, flags: CloneFlags) -> Result<(), Errno> {
        nix::sched::unshare(flags)
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&self) -> Result<(), Errno> {
        // An interface-flags ioctl rather than netlink: the child allocates nothing and logs
        // nothing here (the lxrs-netns client traces its requests), and `lo` needs one flag.
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads the flags of the named interface into `ifr`, which lives
        // for the call; the descriptor is ours.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the union member SIOCGIFFLAGS filled is ifru_flags.
        unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads `ifr` (name and flags) for the duration of the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        nix::unistd::mkdir(path, Mode::from_bits_truncate(mode))
    }

    fn create_file(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        // O_EXCL: an existing file (or device node, or symlink) is never opened.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_errno(e)),
        }
    }

    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), Errno> {
        let kind = match kind {
            NodeKind::Char => SFlag::S_IFCHR,
            NodeKind::Block => SFlag::S_IFBLK,
        };
        let dev = nix::sys::stat::makedev(major.into(), minor.into());
        nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(mode), dev)
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        nix::unistd::symlinkat(target, None, link)
    }

    fn readlink(&self, path: &Path) -> Result<Option<PathBuf>, Errno> {
        match nix::fcntl::readlink(path) {
            Ok(t) => Ok(Some(PathBuf::from(t))),
            // EINVAL: not a symlink; ENOENT: does not exist (yet).
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn same_file(&self, fd: RawFd, path: &Path) -> Result<bool, Errno> {
        let a = nix::sys::stat::fstat(fd)?;
        let b = nix::sys::stat::stat(path)?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev)
    }

    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn umask(&self, mask: u32) -> u32 {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask)).bits()
    }

    fn read_file(&self, path: &Path) -> Result<String, Errno> {
        lxrs_cgroup::read_pseudo(path).map_err(io_errno)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), Errno> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(io_errno)?;
        // proc/sysfs files want the value in a single write.
        let n = f.write(data).map_err(io_errno)?;
        if n != data.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn open_rdwr(&self, path: &Path) -> Result<RawFd, Errno> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map(|f| f.into_raw_fd())
            .map_err(io_errno)
    }

    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        let lim = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: `lim` is a valid, initialised rlimit that outlives the call.
        let r = unsafe { libc::setrlimit(resource as _, &lim) };
        Errno::result(r).map(drop)
    }

    fn personality(&self, persona: Personality) -> Result<(), Errno> {
        let p = match persona {
            Personality::Linux32 => PER_LINUX32,
            Personality::Linux64 => PER_LINUX,
        };
        // SAFETY: personality(2) takes a plain integer and touches no memory of ours.
        let r = unsafe { libc::personality(p) };
        Errno::result(r).map(drop)
    }

    fn cap_last_cap(&self) -> Result<u32, Errno> {
        // Probe the bounding set rather than reading /proc (which may not be mounted).
        let mut last = 0;
        for cap in 0..64 {
            // SAFETY: PR_CAPBSET_READ only reads a kernel bit and takes integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
            if r < 0 {
                break;
            }
            last = cap;
        }
        Ok(last)
    }

    fn cap_bset_drop(&self, cap: u32) -> Result<(), Errno> {
        // SAFETY: PR_CAPBSET_DROP takes integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        Errno::result(r).map(drop)
    }

    fn cap_clear_inheritable_ambient(&self, caps: &[u32]) -> Result<(), Errno> {
        let mut hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget with a v3 header writes exactly two CapData structs, which `data` holds.
        let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
        Errno::result(r)?;
        let mut ambient_supported = true;
        for &cap in caps {
            if let Some(d) = data.get_mut((cap / 32) as usize) {
                d.inheritable &= !(1u32 << (cap % 32));
            }
            if ambient_supported {
                // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                if r < 0 {
                    match Errno::last() {
                        // Kernel without ambient capabilities: nothing to clear.
                        Errno::EINVAL if cap == 0 => ambient_supported = false,
                        Errno::EINVAL => {}
                        e => return Err(e),
                    }
                }
            }
        }
        // SAFETY: capset reads the header and two CapData structs, all initialised.
        let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
        Errno::result(r).map(drop)
    }

    fn setgroups(&self, groups: &[u32]) -> Result<(), Errno> {
        let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups)
    }

    fn setgid(&self, gid: u32) -> Result<(), Errno> {
        nix::unistd::setgid(Gid::from_raw(gid))
    }

    fn setuid(&self, uid: u32) -> Result<(), Errno> {
        nix::unistd::setuid(Uid::from_raw(uid))
    }

    fn set_no_new_privs(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn set_pdeathsig_kill(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
    }

    fn set_affinity(&self, mask: &nix::sched::CpuSet) -> Result<(), Errno> {
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), mask)
    }

    fn read_release(&self, fd: RawFd) -> Result<Option<Vec<PathBuf>>, Errno> {
        crate::child::read_release_from(fd)
    }

    fn reset_signals(&self) -> Result<(), Errno> {
        // Only the signals not at their default yet (`/proc/self/status`, one read instead
        // of a syscall per signal); every one when that cannot be read.
        set_default_dispositions(own_signals(&["SigIgn:", "SigCgt:"]).unwrap_or(u64::MAX));
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
    }

    fn setsid(&self) -> Result<(), Errno> {
        nix::unistd::setsid().map(drop)
    }

    fn set_controlling_tty(&self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: TIOCSCTTY takes an integer argument; an invalid fd only makes it fail.
        let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
        Errno::result(r).map(drop)
    }

    fn dup2(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        if fd == target {
            // dup2 would be a no-op and keep O_CLOEXEC; clear it explicitly.
            // SAFETY: F_SETFD on a descriptor we own changes only its flags.
            let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            return Errno::result(r).map(drop);
        }
        nix::unistd::dup2(fd, target).map(drop)
    }

    fn close_fds_except(&self, keep: &[RawFd]) -> Result<(), Errno> {
        let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= 3).collect();
        keep.sort_unstable();
        keep.dedup();
        let mut first: RawFd = 3;
        for fd in keep.into_iter().chain(std::iter::once(-1)) {
            let last = if fd < 0 {
                libc::c_uint::MAX
            } else {
                (fd - 1) as libc::c_uint
            };
            if fd < 0 || fd > first {
                // SAFETY: close_range only closes descriptors; none of them is owned by a
                // Rust object that will use it afterwards (the kept ones are excluded).
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        first as libc::c_uint,
                        last,
                        0 as libc::c_uint,
                    )
                };
                Errno::result(r)?;
            }
            if fd >= 0 {
                first = fd + 1;
            }
        }
        Ok(())
    }

    fn cloexec_from(&self, from: RawFd) -> Result<(), Errno> {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                from as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if r == 0 {
            return Ok(());
        }
        // Old kernel: walk /proc/self/fd.
        let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
            .map_err(io_errno)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd >= from)
            .collect();
        for fd in fds {
            // SAFETY: F_SETFD only changes the flags of an fd (EBADF for the closed dir fd).
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Ok(())
    }

    fn execve(&self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
        match nix::unistd::execve(path, argv, env) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }
}

/// Write `msg` to `fd` without taking ownership of it (best effort, for error reporting).
pub(crate) fn write_all_raw(fd: RawFd, msg: &[u8]) {
    // SAFETY: the fd is borrowed for the duration of this call only; ManuallyDrop keeps the
    // File from closing it.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let _ = f.write_all(msg);
}

/// clone(2) with fork semantics (no new stack: the child continues on a copy of ours).
/// Returns 0 in the child.
pub(crate) fn plain_clone(flags: libc::c_long) -> std::io::Result<libc::c_long> {
    // SAFETY: raw clone without a new stack. The monitor is single-threaded, so the child's
    // copy of the address space is consistent (no lock is held by another thread).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_long,
            0,
            0,
            0,
            0,
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid)
}

/// clone3(2) with `CLONE_INTO_CGROUP`: the child starts in the cgroup2 directory `cgroup`,
/// so nobody migrates it (a migration takes the global `cgroup_threadgroup_rwsem`, which on
/// an idle host waits for an RCU grace period first). Fork semantics as [`plain_clone`]:
/// only from a single-threaded process. `ENOSYS`/`E2BIG`: the kernel has no such clone.
pub(crate) fn clone_into_cgroup(flags: u64, cgroup: RawFd) -> std::io::Result<libc::c_long> {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with a valid, fully initialised clone_args of the size passed; stack 0
    // means fork semantics (see plain_clone: the monitor is single-threaded).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid)
}

/// The OR of this process's signal masks `fields` (`SigIgn:`, `SigCgt:`, ...) in
/// `/proc/self/status`, bit `n - 1` for signal `n`; `None` when that cannot be read.
pub(crate) fn own_signals(fields: &[&str]) -> Option<u64> {
    let status = lxrs_cgroup::read_pseudo(Path::new("/proc/self/status")).ok()?;
    signal_masks(&status, fields)
}

/// `SIG_DFL` for every signal in `mask` (bit `n - 1` for signal `n`) but SIGKILL and SIGSTOP.
pub(crate) fn set_default_dispositions(mask: u64) {
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP && mask & (1 << (sig - 1)) != 0 {
            set_default_disposition(sig);
        }
    }
}

/// `SIG_DFL` for `sig` by the raw system call: glibc's `signal` refuses the two real-time
/// signals it reserves (32 and 33), which a caller of `lxrs start` may have ignored, and an
/// ignored signal stays ignored across exec. Failures (an invalid number) are ignored.
fn set_default_disposition(sig: i32) {
    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction with a valid, fully initialised struct of the size the kernel
    // expects for its 8-byte signal set; SIG_DFL needs no handler code or restorer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

/// OR of the hexadecimal masks of `fields` in a `/proc/PID/status` text; `None` if one is
/// missing or malformed.
pub(crate) fn signal_masks(status: &str, fields: &[&str]) -> Option<u64> {
    let mut set = 0;
    for field in fields {
        let line = status.lines().find_map(|l| l.strip_prefix(field))?;
        set |= u64::from_str_radix(line.trim(), 16).ok()?;
    }
    Some(set)
}

#[cfg(test)]
mod signal_tests {
    use super::signal_masks;

    #[test]
    fn masks_from_proc_status() {
        let status = "Name:\tx\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180000002\n";
        // SIGPIPE (13) ignored; SIGINT (2), SIGRTMIN-ish (32, 33) caught.
        assert_eq!(
            signal_masks(status, &["SigIgn:", "SigCgt:"]),
            Some(0x1000 | 0x1_8000_0002)
        );
        assert_eq!(signal_masks(status, &["SigIgn:"]), Some(1 << 12));
        assert_eq!(signal_masks("Name:\tx\n", &["SigIgn:"]), None);
        assert_eq!(signal_masks("SigIgn:\tzz\n", &["SigIgn:"]), None);
    }
}
