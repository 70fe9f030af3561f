//! What the template and image tests share: the binary under test, [`T`] (a temporary
//! lxcpath, run directory and image cache, with `lxrs` runners, that stops and destroys what a
//! failed test left), and [`http_server`], a one-request-per-connection HTTP/1.1 server on
//! 127.0.0.1 (the only place these tests download from).
//!
//! Needs `mod lifecycle_common;` in the test crate. `LXRS_BIN` may name the binary to test
//! (default: this package's `lxrs`).
#![allow(dead_code)]

use crate::lifecycle_common::{text, Env};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    std::env::var_os("LXRS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lxrs").into())
}

/// A temporary lxcpath, run directory and image cache. Its Drop stops and destroys every
/// container left in the lxcpath (then `Env`'s Drop kills any monitor), so a failing test
/// leaves nothing running.
pub struct T {
    pub env: Env,
    pub cache: PathBuf,
}

impl T {
    pub fn new() -> T {
        let env = Env::new();
        let cache = env.dir.path().join("cache");
        T { env, cache }
    }

    /// `lxrs -P <lxcpath> ARGS` with this test's run directory and cache, stdin from
    /// /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("-P")
            .arg(&self.env.lxcpath)
            .args(args)
            .env("LXRS_RUNDIR", &self.env.rundir)
            .env("LXRS_CACHE_DIR", &self.cache)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run lxrs")
    }

    /// Run, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "lxrs {args:?} failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// Run, assert failure, return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "lxrs {args:?} unexpectedly succeeded: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stderr)
    }

    /// A path in the test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.env.lxcpath.join(name)
    }

    /// A config file `nonet.conf` with `lxc.net.0.type = empty` and `extra` lines; its path.
    pub fn nonet_with(&self, extra: &str) -> String {
        let p = self.path("nonet.conf");
        std::fs::write(&p, format!("lxc.net.0.type = empty\n{extra}")).unwrap();
        p.display().to_string()
    }

    pub fn nonet(&self) -> String {
        self.nonet_with("")
    }
}

impl Drop for T {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.env.lxcpath) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                let _ = self.run(&["stop", "-n", &n, "-k"]);
                let _ = self.run(&["destroy", "-n", &n, "-f"]);
            }
        }
    }
}

/// What [`http_server`]'s handler answers a GET with.
pub struct Reply {
    pub status: u16,
    /// Sent as `Content-Length` (may be more than `body`, to play a cut connection).
    pub length: usize,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            length: body.len(),
            body,
        }
    }
    pub fn not_found() -> Reply {
        Reply {
            status: 404,
            length: 0,
            body: Vec::new(),
        }
    }
}

/// An HTTP/1.1 server on 127.0.0.1 (one request per connection, in a thread of its own);
/// `handler` gets each request's path. Returns the port.
pub fn http_server(handler: impl Fn(&str) -> Reply + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let reply = handler(line.split_whitespace().nth(1).unwrap_or("/"));
            let reason = if reply.status == 200 {
                "OK"
            } else {
                "Not Found"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.status, reply.length
            );
            let _ = s.write_all(&reply.body);
        }
    });
    port
}
