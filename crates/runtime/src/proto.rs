//! The command-socket protocol: versioned, line-delimited JSON over a unix stream socket.
//!
//! A client sends one request per line and reads one response line per request. A `console`
//! response carries the pty master fd as SCM_RIGHTS and is followed by `replay_len` raw bytes
//! (the console ring buffer). After `watch`, the monitor also sends `notify` lines on every state
//! change. The monitor closes every connection when it exits, so EOF on a connection means "the
//! container has stopped and was cleaned up".

use crate::spec::StartSpec;
use crate::state::State;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Instant;

/// Protocol version; a monitor rejects requests with another major version.
pub const VERSION: u32 = 1;

/// Longest request/response line accepted (a guard against garbage).
pub const MAX_LINE: usize = 1 << 20;

/// Which of the container's stop signals to send to init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// `lxc.signal.halt` (clean shutdown).
    Halt,
    /// `lxc.signal.reboot`.
    Reboot,
    /// `lxc.signal.stop` (kill).
    Kill,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// State, init pid and monitor pid in one round trip (what `ls`/`info` need).
    Info,
    /// Send one of the stop signals to init.
    Stop { kind: StopKind },
    /// Hand over a pty master: `Some(0)` console, `Some(n)` tty n, `None` first free tty.
    Console { tty: Option<u32> },
    /// Receive `notify` lines on every state change from now on.
    Watch,
    /// Freeze the container (a no-op success when FROZEN): FREEZING, then FROZEN.
    Freeze,
    /// Thaw the container when FROZEN or FREEZING (else a no-op success): THAWED, RUNNING.
    Unfreeze,
    /// Add a rule (`c 10:200 rwm`) to the running device filter: `device add` allows,
    /// `device del` denies. On cgroup2 the monitor rebuilds and replaces its eBPF program.
    DeviceRule { allow: bool, rule: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RequestLine {
    v: u32,
    #[serde(flatten)]
    req: Request,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// Console responses: the tty handed over (its master fd rides along as SCM_RIGHTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<u32>,
    /// Console responses: this many raw ring-buffer bytes follow the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_len: Option<usize>,
    /// A state-change notification (after `watch`), not an answer to a request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            v: VERSION,
            ok: true,
            ..Default::default()
        }
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Response {
            v: VERSION,
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// What the starter sends the monitor first, on the start socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorInit {
    pub v: u32,
    pub spec: StartSpec,
    pub rundir: PathBuf,
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub defines: Vec<String>,
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
    /// Foreground start: hand the console to the starter together with the start result.
    #[serde(default)]
    pub attach_console: bool,
    /// A line follows from the starter before the clone: [`NETNS_AHEAD`] with the
    /// container's network namespace (SCM_RIGHTS), which the starter makes while the monitor
    /// sets up, or [`NO_NETNS_AHEAD`]. The monitor clones init into the one it gets instead of
    /// having `clone` make one.
    #[serde(default)]
    pub netns: bool,
}

/// The line that carries a network namespace made ahead ([`MonitorInit::netns`]).
pub const NETNS_AHEAD: &[u8] = b"netns";
/// The line that says the starter made none.
pub const NO_NETNS_AHEAD: &[u8] = b"none";

pub fn encode_request(req: &Request) -> Vec<u8> {
    let mut v = serde_json::to_vec(&RequestLine {
        v: VERSION,
        req: req.clone(),
    })
    .expect("requests always serialise");
    v.push(b'\n');
    v
}

/// Decode a request line; the error text is what the monitor answers.
pub fn decode_request(line: &[u8]) -> Result<Request, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
    match raw.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported protocol version {v} (monitor speaks {VERSION})"
            ))
        }
        None => return Err("request without protocol version".into()),
    }
    serde_json::from_value::<RequestLine>(raw)
        .map(|l| l.req)
        .map_err(|e| format!("unknown request: {e}"))
}

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec(msg).expect("messages always serialise");
    v.push(b'\n');
    v
}

pub fn decode_response(line: &[u8]) -> Result<Response, String> {
    serde_json::from_slice(line).map_err(|e| format!("malformed response: {e}"))
}

/// A unix stream connection with a line buffer and received file descriptors.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    eof: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd) -> Self {
        Conn {
            fd,
            buf: Vec::new(),
            fds: VecDeque::new(),
            eof: false,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Send all of `data`; `pass` rides along with the first byte as SCM_RIGHTS.
    pub fn send(&self, data: &[u8], pass: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
        let mut off = 0;
        let mut first = true;
        while off < data.len() {
            let raw_fds;
            let cmsgs: &[ControlMessage] = match (first, pass) {
                (true, Some(fd)) => {
                    raw_fds = [fd.as_raw_fd()];
                    &[ControlMessage::ScmRights(&raw_fds)]
                }
                _ => &[],
            };
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[IoSlice::new(&data[off..])],
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(n) => {
                    off += n;
                    first = false;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    // A peer that does not read for a second is dropped, never waited on.
                    if !wait_fd(self.fd.as_raw_fd(), libc::POLLOUT, Some(1000))? {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// One `recvmsg` (blocking unless `dontwait`) into the buffer. Returns bytes read; 0 = EOF.
    pub fn recv_some(&mut self, dontwait: bool) -> std::io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
        if dontwait {
            flags |= MsgFlags::MSG_DONTWAIT;
        }
        loop {
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let res = recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), flags);
            match res {
                Ok(msg) => {
                    let n = msg.bytes;
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(fds) = c {
                                for fd in fds {
                                    // SAFETY: the kernel just installed this descriptor for us
                                    // (SCM_RIGHTS); nothing else owns it.
                                    self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
                                }
                            }
                        }
                    }
                    if n == 0 {
                        self.eof = true;
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => {
                    self.eof = true;
                    return Ok(0);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A complete line from the buffer, without the newline.
    pub fn take_line(&mut self) -> Option<Vec<u8>> {
        let pos = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        Some(line)
    }

    /// Whether the buffer holds an over-long partial line (the peer is misbehaving).
    pub fn overlong(&self) -> bool {
        self.buf.len() > MAX_LINE
    }

    /// Blocking read of one line; `Ok(None)` on EOF or when `deadline` passes.
    pub fn read_line(&mut self, deadline: Option<Instant>) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(l) = self.take_line() {
                return Ok(Some(l));
            }
            if self.eof || self.overlong() {
                return Ok(None);
            }
            if !wait_fd(self.fd.as_raw_fd(), libc::POLLIN, ms_until(deadline))? {
                return Ok(None);
            }
            self.recv_some(true).or_else(|e| {
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    Ok(1)
                } else {
                    Err(e)
                }
            })?;
        }
    }

    /// Blocking read of exactly `n` raw bytes (after a line); short on EOF.
    pub fn read_raw(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n && !self.eof {
            self.recv_some(false)?;
        }
        let n = n.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// Wait until the peer closes the connection (discarding anything it sends).
    /// Returns false if `deadline` passed first.
    pub fn wait_eof(&mut self, deadline: Option<Instant>) -> std::io::Result<bool> {
        while !self.eof {
            if !wait_fd(self.fd.as_raw_fd(), libc::POLLIN, ms_until(deadline))? {
                return Ok(false);
            }
            match self.recv_some(true) {
                Ok(_) => self.buf.clear(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }
}

fn ms_until(deadline: Option<Instant>) -> Option<u64> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64)
}

/// poll one fd for `events`; false on timeout. `None` waits forever.
pub fn wait_fd(fd: RawFd, events: libc::c_short, timeout_ms: Option<u64>) -> std::io::Result<bool> {
    let deadline = timeout_ms.map(|ms| Instant::now() + std::time::Duration::from_millis(ms));
    loop {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let t = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
        };
        // SAFETY: one valid pollfd on the stack, count 1.
        let rc = unsafe { libc::poll(&mut p, 1, t) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(rc > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    #[test]
    fn request_encoding_is_versioned_lines() {
        let cases = [
            (Request::Info, r#"{"v":1,"cmd":"info"}"#),
            (
                Request::Stop {
                    kind: StopKind::Halt,
                },
                r#"{"v":1,"cmd":"stop","kind":"halt"}"#,
            ),
            (
                Request::Console { tty: Some(0) },
                r#"{"v":1,"cmd":"console","tty":0}"#,
            ),
            (
                Request::Console { tty: None },
                r#"{"v":1,"cmd":"console","tty":null}"#,
            ),
            (Request::Watch, r#"{"v":1,"cmd":"watch"}"#),
        ];
        for (req, text) in cases {
            let enc = encode_request(&req);
            assert_eq!(enc.last(), Some(&b'\n'));
            assert_eq!(std::str::from_utf8(&enc[..enc.len() - 1]).unwrap(), text);
            assert_eq!(decode_request(text.as_bytes()).unwrap(), req);
        }
    }

    #[test]
    fn bad_requests_are_explained() {
        assert!(decode_request(b"{").unwrap_err().contains("malformed"));
        assert!(decode_request(br#"{"cmd":"info"}"#)
            .unwrap_err()
            .contains("version"));
        assert!(decode_request(br#"{"v":2,"cmd":"info"}"#)
            .unwrap_err()
            .contains("version 2"));
        assert!(decode_request(br#"{"v":1,"cmd":"explode"}"#)
            .unwrap_err()
            .contains("unknown"));
        assert!(decode_request(br#"{"v":1,"cmd":"stop","kind":"nuke"}"#).is_err());
    }

    #[test]
    fn responses_are_compact_and_round_trip() {
        let mut r = Response::ok();
        r.state = Some(State::Running);
        r.init_pid = Some(42);
        let enc = encode(&r);
        assert_eq!(
            enc,
            b"{\"v\":1,\"ok\":true,\"state\":\"RUNNING\",\"init_pid\":42}\n"
        );
        assert_eq!(decode_response(&enc[..enc.len() - 1]).unwrap(), r);
        let e = Response::err("busy");
        assert_eq!(
            decode_response(&encode(&e)[..]).unwrap().error.as_deref(),
            Some("busy")
        );
    }

    #[test]
    fn conn_passes_lines_raw_bytes_and_fds() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let a = Conn::new(a);
        let mut b = Conn::new(b);
        let (pr, pw) = nix::unistd::pipe().unwrap();
        let mut msg = encode(&Response::ok());
        msg.extend_from_slice(b"RAW");
        use std::os::fd::AsFd;
        a.send(&msg, Some(pw.as_fd())).unwrap();
        let line = b.read_line(None).unwrap().unwrap();
        assert!(decode_response(&line).unwrap().ok);
        assert_eq!(b.read_raw(3).unwrap(), b"RAW");
        let got = b.take_fd().expect("fd passed");
        nix::unistd::write(&got, b"z").unwrap();
        let mut one = [0u8; 1];
        nix::unistd::read(pr.as_raw_fd(), &mut one).unwrap();
        assert_eq!(&one, b"z");
        drop(a);
        assert!(b.wait_eof(None).unwrap());
    }
}
