//! The client side of a console: the escape filter (a pure state machine), the banner, and the
//! session loop that joins the caller's terminal (raw mode, window size) to a pty master handed
//! over by the monitor.

use crate::proto::Conn;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Default escape prefix: Ctrl-a.
pub const DEFAULT_ESCAPE: u8 = 1;

/// LXC's console escape handling (`lxc:src/lxc/terminal.c lxc_terminal_stdin_cb`): the prefix is
/// swallowed and remembered; `q` next detaches; any other byte next is forwarded alone (so
/// prefix+prefix forwards one prefix) and clears the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeFilter {
    prefix: u8,
    armed: bool,
}

impl EscapeFilter {
    pub fn new(prefix: u8) -> Self {
        EscapeFilter {
            prefix,
            armed: false,
        }
    }

    /// Filter `input`, appending what goes to the container to `out`. Returns true when the
    /// detach sequence was seen (bytes after it are dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.prefix && !self.armed {
                self.armed = true;
                continue;
            }
            if b == b'q' && self.armed {
                self.armed = false;
                return true;
            }
            self.armed = false;
            out.push(b);
        }
        false
    }
}

/// Parse `-e X` / `-e ^X` into a control code (`a` → 1 ... `z` → 26).
pub fn parse_escape(s: &str) -> Option<u8> {
    let s = s.strip_prefix('^').unwrap_or(s);
    let mut it = s.chars();
    let c = it.next()?;
    if it.next().is_some() || !c.is_ascii_alphabetic() {
        return None;
    }
    Some((c.to_ascii_lowercase() as u8) - b'a' + 1)
}

/// The lines printed when a console connects (LXC's wording).
pub fn banner(tty: u32, escape: u8) -> String {
    let c = (b'a' + escape - 1) as char;
    format!(
        "\nConnected to tty {tty}\nType <Ctrl+{c} q> to exit the console, <Ctrl+{c} Ctrl+{c}> to enter Ctrl+{c} itself\n"
    )
}

/// A console handed over by the monitor: the connection it came on (EOF = container stopped),
/// the pty master, and the ring-buffer replay.
#[derive(Debug)]
pub struct ConsoleSession {
    pub conn: Conn,
    pub master: OwnedFd,
    pub tty: u32,
    pub replay: Vec<u8>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The user typed the escape sequence; the container keeps running.
    Detached,
    /// The monitor closed the connection: the container stopped.
    Stopped,
}

/// Restores the terminal attributes when dropped.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is the caller's terminal; t is a valid out-pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: t is a valid termios obtained above.
        unsafe { libc::cfmakeraw(&mut t) };
        // SAFETY: valid fd and termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &t) } != 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring attributes saved from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls read/write exactly one winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Read what is available from `fd` (after poll said so). `Ok(0)` = EOF/EIO.
fn read_some(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Write all of `data` to `fd`, waiting on EAGAIN.
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: data is valid for data.len() bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            data = &data[n as usize..];
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                crate::proto::wait_fd(fd, libc::POLLOUT, Some(1000))?;
            }
            _ => return Err(e),
        }
    }
    Ok(())
}

/// Join `input`/`output` to the session's pty until detach or container stop. Raw mode and
/// window-size forwarding (including SIGWINCH) apply when `input` is a terminal; otherwise the
/// bytes just stream. `escape: None` disables the escape sequence.
///
/// `banner` goes to stderr once the terminal is in raw mode (so keys typed after it are seen
/// by the session), then the replay goes to `output`.
///
/// Blocks SIGWINCH in the calling thread for the duration (the CLI is single-threaded).
pub fn run_session(
    mut s: ConsoleSession,
    escape: Option<u8>,
    input: RawFd,
    output: RawFd,
    banner: Option<&str>,
) -> std::io::Result<SessionEnd> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let master = s.master.as_raw_fd();
    let tty = is_tty(input);
    let _raw = if tty { RawMode::enter(input) } else { None };
    if let Some(b) = banner {
        let b = if tty {
            b.replace('\n', "\r\n")
        } else {
            b.to_string()
        };
        let _ = write_all_fd(2, b.as_bytes());
    }
    write_all_fd(output, &s.replay)?;
    s.replay.clear();
    let mut winch = None;
    let mut old_mask = SigSet::empty();
    if tty {
        copy_winsize(input, master);
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(std::io::Error::from)?;
        winch = nix::sys::signalfd::SignalFd::with_flags(
            &set,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        )
        .ok();
    }
    let result = session_loop(&mut s, escape, input, output, winch.as_ref());
    if tty {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    }
    result
}

fn session_loop(
    s: &mut ConsoleSession,
    escape: Option<u8>,
    input: RawFd,
    output: RawFd,
    winch: Option<&nix::sys::signalfd::SignalFd>,
) -> std::io::Result<SessionEnd> {
    let master = s.master.as_raw_fd();
    let mut filter = escape.map(EscapeFilter::new);
    let mut input_open = true;
    let mut master_open = true;
    let mut buf = vec![0u8; 16384];
    let mut out = Vec::with_capacity(16384);
    loop {
        let mut fds = Vec::with_capacity(4);
        fds.push(libc::pollfd {
            fd: s.conn.raw(),
            events: libc::POLLIN,
            revents: 0,
        });
        if master_open {
            fds.push(libc::pollfd {
                fd: master,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if input_open {
            fds.push(libc::pollfd {
                fd: input,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(w) = winch {
            fds.push(libc::pollfd {
                fd: w.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: fds is a valid array of pollfd of the given length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == master {
                let n = read_some(master, &mut buf)?;
                if n == 0 {
                    // No slave open (monitor gone): wait for the connection to close.
                    master_open = false;
                } else {
                    write_all_fd(output, &buf[..n])?;
                }
            } else if p.fd == input {
                let n = read_some(input, &mut buf)?;
                if n == 0 {
                    input_open = false;
                    continue;
                }
                out.clear();
                let detach = match filter.as_mut() {
                    Some(f) => f.feed(&buf[..n], &mut out),
                    None => {
                        out.extend_from_slice(&buf[..n]);
                        false
                    }
                };
                if master_open && !out.is_empty() {
                    write_all_fd(master, &out)?;
                }
                if detach {
                    return Ok(SessionEnd::Detached);
                }
            } else if winch.is_some_and(|w| w.as_raw_fd() == p.fd) {
                while let Ok(Some(_)) = winch.expect("checked").read_signal() {}
                copy_winsize(input, master);
            } else if p.fd == s.conn.raw() {
                match s.conn.recv_some(true) {
                    Ok(0) => {
                        drain(master, output, &mut buf);
                        return Ok(SessionEnd::Stopped);
                    }
                    Ok(_) => {
                        // Notifications are not used here; drop them.
                        while s.conn.take_line().is_some() {}
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Copy whatever is still buffered in the pty to `output` (after the container stopped).
fn drain(master: RawFd, output: RawFd, buf: &mut [u8]) {
    while let Ok(true) = crate::proto::wait_fd(master, libc::POLLIN, Some(0)) {
        match read_some(master, buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if write_all_fd(output, &buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, bool) {
        let mut f = EscapeFilter::new(DEFAULT_ESCAPE);
        let mut out = Vec::new();
        let d = f.feed(input, &mut out);
        (out, d)
    }

    #[test]
    fn escape_state_machine() {
        assert_eq!(run(b"ls\r"), (b"ls\r".to_vec(), false));
        // Ctrl-a q detaches; what came before is forwarded, what comes after is dropped.
        assert_eq!(run(b"ab\x01qcd"), (b"ab".to_vec(), true));
        // Ctrl-a Ctrl-a forwards one Ctrl-a.
        assert_eq!(run(b"\x01\x01x"), (b"\x01x".to_vec(), false));
        // Ctrl-a followed by another byte forwards only that byte (LXC behaviour).
        assert_eq!(run(b"\x01z"), (b"z".to_vec(), false));
        // q without the prefix is just a q.
        assert_eq!(run(b"qq"), (b"qq".to_vec(), false));
        // Ctrl-a Ctrl-a q: the second prefix is forwarded and clears the flag; q is literal.
        assert_eq!(run(b"\x01\x01q"), (b"\x01q".to_vec(), false));
    }

    #[test]
    fn escape_survives_split_reads() {
        let mut f = EscapeFilter::new(DEFAULT_ESCAPE);
        let mut out = Vec::new();
        assert!(!f.feed(b"x\x01", &mut out));
        assert!(f.feed(b"q", &mut out));
        assert_eq!(out, b"x");
    }

    #[test]
    fn escape_argument_and_banner() {
        assert_eq!(parse_escape("a"), Some(1));
        assert_eq!(parse_escape("^b"), Some(2));
        assert_eq!(parse_escape("B"), Some(2));
        assert_eq!(parse_escape("ab"), None);
        assert_eq!(parse_escape("1"), None);
        assert_eq!(parse_escape(""), None);
        let b = banner(1, 1);
        assert!(b.contains("Connected to tty 1"));
        assert!(b.contains(
            "Type <Ctrl+a q> to exit the console, <Ctrl+a Ctrl+a> to enter Ctrl+a itself"
        ));
        assert!(banner(0, 2).contains("<Ctrl+b q>"));
    }
}
