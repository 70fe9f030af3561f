//! The pseudo-terminal of an interactive attach: allocated in the container's devpts, proxied
//! by the attaching process between the caller's terminal and the master.

use super::error::AttachError;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A master/slave pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a pty. With `root` (an `O_PATH` descriptor of the container's root directory), the
/// container's `/dev/pts/ptmx` (then `/dev/ptmx`) is used, resolved inside that root, so the
/// slave lives in the container's devpts; otherwise, or if the container has none, the host's.
pub fn open_pty(root: Option<RawFd>) -> Result<Pty, AttachError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let mut master = None;
    if let Some(root) = root {
        for p in ["dev/pts/ptmx", "dev/ptmx"] {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT);
            match nix::fcntl::openat2(root, p, how) {
                Ok(fd) => {
                    // SAFETY: `fd` was just returned by openat2 and is owned by nobody else.
                    master = Some(unsafe { OwnedFd::from_raw_fd(fd) });
                    break;
                }
                Err(e) => tracing::debug!("container /{p}: {e}"),
            }
        }
        if master.is_none() {
            tracing::debug!("no usable ptmx in the container; using the host's /dev/ptmx");
        }
    }
    let master = match master {
        Some(m) => m,
        None => {
            let fd = nix::fcntl::open("/dev/ptmx", flags, Mode::empty())
                .map_err(|e| AttachError::io("open", "/dev/ptmx", e.into()))?;
            // SAFETY: `fd` was just returned by open and is owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        }
    };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int through the pointer, which is valid for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } == -1 {
        return Err(AttachError::Sys {
            op: "unlock the pty (TIOCSPTLCK)",
            errno: Errno::last(),
        });
    }
    let peer_flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes integer open flags and returns a new descriptor.
    let s = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, peer_flags) };
    if s == -1 {
        return Err(AttachError::Sys {
            op: "open the pty slave (TIOCGPTPEER)",
            errno: Errno::last(),
        });
    }
    // SAFETY: `s` is a fresh descriptor returned by the ioctl, owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok(Pty { master, slave })
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Copy the window size of terminal `from` to the pty master `to` (best effort).
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the valid pointer.
    if unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) } == 0 {
        // SAFETY: TIOCSWINSZ reads one winsize through the valid pointer.
        unsafe { libc::ioctl(to, libc::TIOCSWINSZ, &ws) };
    }
}

/// Puts a terminal in raw mode and restores its settings when dropped (on every path out of
/// `attach`, errors included).
pub struct RawGuard {
    fd: RawFd,
    saved: Termios,
}

impl RawGuard {
    pub fn new(fd: RawFd) -> Result<RawGuard, AttachError> {
        // SAFETY: the descriptor outlives the guard (it is one of our stdio descriptors).
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(bfd).map_err(|errno| AttachError::Sys {
            op: "read terminal settings (tcgetattr)",
            errno,
        })?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(bfd, SetArg::TCSANOW, &raw).map_err(|errno| AttachError::Sys {
            op: "set the terminal to raw mode (tcsetattr)",
            errno,
        })?;
        Ok(RawGuard { fd, saved })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        // SAFETY: see `new`: the descriptor is still open.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(bfd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// write(2) everything, waiting for a non-blocking descriptor when needed. Errors other than
/// `EINTR`/`EAGAIN` are returned.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf = &buf[n as usize..];
            continue;
        }
        match Errno::last() {
            Errno::EINTR => {}
            Errno::EAGAIN => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 1000) };
            }
            e => return Err(e),
        }
    }
    Ok(())
}

/// read(2) into `buf`: `Ok(0)` = end of file.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we hold, integer arguments only.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl != -1 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}
