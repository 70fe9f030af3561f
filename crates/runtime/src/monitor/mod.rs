//! The per-container monitor process.
//!
//! `lxrs start` forks it (`lifecycle::spawn_monitor`: double fork, setsid, stdio on
//! /dev/null, every other descriptor closed; [`run_forked`] writes the title
//! `[lxrs monitor] <lxcpath> <name>` over the argument strings), or, when it cannot fork one
//! ([`ForkLayout`]), re-executes its own binary with that title as `argv[0]`
//! ([`run_if_monitor`]), which reads a [`MonitorInit`] line from the socketpair end in
//! `_LXRS_MONITOR_FD`. Either way the monitor answers with the start result on that
//! connection (which then behaves as a command-socket client).
//!
//! The monitor is single-threaded: one `poll` loop over the command socket, a signalfd
//! (SIGCHLD, SIGTERM), the child's error pipe, the console pty master and the clients. It:
//! 1. binds `@lxrs<lxcpath>/<name>/command` (state STARTING), allocates the console and tty ptys;
//! 2. runs [`HostSetup::before_clone`] (the v2 cgroup), takes the network namespace the
//!    starter made, clones the child with `child::clone_flags` (fork semantics) which runs
//!    `child::run`, and sends it to another CPU for its early setup
//!    ([`crate::syscall::CpuNudge`]);
//! 3. runs the host-side seam ([`HostSetup::prepare`]), records what it created, writes the sync
//!    byte;
//! 4. waits for the error pipe: EOF without a message = init exec'd (RUNNING, reported to the
//!    starter), a message = ABORTING (kill, teardown, report, exit 1);
//! 5. serves commands; drains the console into a ring buffer (and `lxc.console.logfile`) while
//!    no client holds it; on init death by SIGHUP (reboot) restarts the container under the same
//!    monitor and socket; on any other init death tears down and exits.

mod trim;

use crate::child::ChildContext;
use crate::host::{CleanupItem, HostSetup};
use crate::paths::{self, RunDir};
use crate::proto::{self, Conn, MonitorInit, Request, Response, StopKind};
use crate::record::{self, StateRecord};
use crate::ringbuf::RingBuffer;
use crate::spec::StartSpec;
use crate::state::State;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// argv[0] prefix that makes `lxrs` run as a monitor.
pub const TITLE_PREFIX: &str = "[lxrs monitor]";
/// Environment variable carrying the starter socket's fd number.
pub const FD_ENV: &str = "_LXRS_MONITOR_FD";
/// How often, and how long, the monitor looks whether init has come to take a halt or reboot
/// signal it showed no handler for when it was sent.
const SIGNAL_RETRY: Duration = Duration::from_millis(20);
const SIGNAL_WATCH: Duration = Duration::from_secs(30);
/// Quiet time after the last command before the monitor drops its code pages again.
const TRIM_AFTER_QUIET: Duration = Duration::from_secs(2);
/// How long after RUNNING the monitor leaves the caller's cgroups and gives back its start-up
/// pages ([`Monitor::settle`]).
const SETTLE_AFTER: Duration = Duration::from_millis(30);
/// How long after the last client left the monitor drops its executable's pages again.
const TEXT_TRIM_AFTER: Duration = Duration::from_millis(20);
/// After SIGTERM to the monitor: halt signal first, kill after this long.
const SIGTERM_GRACE: Duration = Duration::from_secs(10);

/// The two functions the monitor needs from the container side (`crate::child`), as a seam.
#[derive(Clone, Copy)]
pub struct ChildEntry {
    pub clone_flags: fn(&StartSpec) -> nix::sched::CloneFlags,
    pub run: fn(&StartSpec, ChildContext) -> !,
}

impl ChildEntry {
    /// The real container setup.
    pub fn real() -> Self {
        ChildEntry {
            clone_flags: crate::child::clone_flags,
            run: crate::child::run,
        }
    }
}

/// The process title of a container's monitor.
pub fn title(lxcpath: &std::path::Path, name: &str) -> String {
    format!(
        "{TITLE_PREFIX} {} {name}",
        paths::normalize_lxcpath(lxcpath).display()
    )
}

/// If this process was exec'd as a container monitor, run it to completion and return its exit
/// code; otherwise return `None` at once (cheap: called first thing in `lxrs`'s `main`).
pub fn run_if_monitor() -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let arg0 = std::env::args_os().next()?;
    if !arg0.as_bytes().starts_with(TITLE_PREFIX.as_bytes()) {
        return None;
    }
    Some(monitor_main(
        ChildEntry::real(),
        crate::host::default_host_setup(),
    ))
}

/// The monitor's `main`, with the child entry and host setup as parameters.
pub fn monitor_main(entry: ChildEntry, host: Box<dyn HostSetup>) -> i32 {
    let Some(fd) = std::env::var(FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        eprintln!("lxrs monitor: started without {FD_ENV}; it is started by `lxrs start`");
        return 2;
    };
    // Single-threaded here; the variable must not leak into the container.
    std::env::remove_var(FD_ENV);
    // SAFETY: the starter passed this descriptor to us (inherited across exec); we take sole
    // ownership of it and set it close-on-exec so the container never sees it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    set_comm("lxrs-monitor");
    let mut starter = Conn::new(fd);
    let init = match starter.read_line(Some(Instant::now() + Duration::from_secs(30))) {
        Ok(Some(line)) => match serde_json::from_slice::<MonitorInit>(&line) {
            Ok(i) if i.v == proto::VERSION => i,
            Ok(i) => {
                let _ = starter.send(
                    &proto::encode(&Response::err(format!(
                        "monitor speaks protocol {} but starter sent {}",
                        proto::VERSION,
                        i.v
                    ))),
                    None,
                );
                return 1;
            }
            Err(e) => {
                let _ = starter.send(
                    &proto::encode(&Response::err(format!("bad start request: {e}"))),
                    None,
                );
                return 1;
            }
        },
        _ => return 1,
    };
    if let Some(d) = log_dispatch(&init) {
        let _ = tracing::dispatcher::set_global_default(d);
    }
    serve(init, starter, host, entry)
}

/// The monitor as a fork of the starter, without an exec (see [`ForkLayout`]): the start
/// request is already in memory. The caller has daemonized this process (session, second
/// fork, stdio on `/dev/null`, only `fd` left open). Never returns.
pub(crate) fn run_forked(init: MonitorInit, fd: OwnedFd, title: &str, layout: &ForkLayout) -> ! {
    set_title(title, layout);
    set_comm("lxrs-monitor");
    // As an executed monitor is given it: what `RunDir::default()` means from here on
    // (single-threaded, and the environment is on the heap now).
    std::env::set_var(paths::RUNDIR_ENV, &init.rundir);
    // The starter's global subscriber (if any) writes to what is now /dev/null: this thread
    // (the only one) logs where the container's log settings say, or nowhere.
    let dispatch = log_dispatch(&init).unwrap_or_else(tracing::Dispatch::none);
    std::mem::forget(tracing::dispatcher::set_default(&dispatch));
    // Never unwind into the starter's frames below us.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(
            init,
            Conn::new(fd),
            crate::host::default_host_setup(),
            ChildEntry::real(),
        )
    }))
    .unwrap_or(101);
    // SAFETY: _exit ends the process without running the starter's atexit handlers or
    // flushing its stdio buffers (ours go to /dev/null).
    unsafe { libc::_exit(code) }
}

fn serve(init: MonitorInit, starter: Conn, host: Box<dyn HostSetup>, entry: ChildEntry) -> i32 {
    tracing::debug!("monitor up, start request read");
    let netns_pending = init.netns;
    let mut m = match Monitor::new(init, starter, host, entry) {
        Ok(m) => m,
        Err((starter, msg)) => {
            tracing::error!("{msg}");
            let _ = starter.send(&proto::encode(&Response::err(msg)), None);
            return 1;
        }
    };
    m.netns_pending = netns_pending;
    let code = m.run();
    tracing::info!("monitor exiting with {code}");
    // Keep every descriptor open until the process really exits: clients take EOF on their
    // connection as "the container is stopped and cleaned up, the monitor is gone".
    std::mem::forget(m);
    code
}

/// What a fork of this process needs to become a monitor without an exec: one thread (a fork
/// of a multi-threaded process may only make async-signal-safe calls), and room for the
/// monitor's title where `/proc/PID/cmdline` reads it (`/proc/self/stat` fields 20 and 48-51).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkLayout {
    pub threads: u64,
    pub arg_start: usize,
    pub arg_end: usize,
    pub env_start: usize,
    pub env_end: usize,
}

impl ForkLayout {
    /// This process's layout; `None` if `/proc/self/stat` cannot be read or parsed.
    pub fn current() -> Option<ForkLayout> {
        ForkLayout::parse(&lxrs_cgroup::read_pseudo(std::path::Path::new("/proc/self/stat")).ok()?)
    }

    /// Parse a `/proc/PID/stat` line.
    pub fn parse(stat: &str) -> Option<ForkLayout> {
        // comm may contain spaces and parentheses: fields after the last ')' (field 3 on).
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |field: usize| -> Option<u64> { f.get(field - 3)?.parse().ok() };
        Some(ForkLayout {
            threads: num(20)?,
            arg_start: num(48)? as usize,
            arg_end: num(49)? as usize,
            env_start: num(50)? as usize,
            env_end: num(51)? as usize,
        })
    }

    /// Bytes a process title can take, its NUL included: the argument strings, and the
    /// environment strings when they follow directly; at most one page, what the kernel reads
    /// of a title that does not end where the arguments did.
    pub fn title_room(&self) -> usize {
        if self.arg_end < self.arg_start {
            return 0;
        }
        let area = if self.env_start == self.arg_end && self.env_end >= self.env_start {
            self.env_end - self.arg_start
        } else {
            self.arg_end - self.arg_start
        };
        area.min(4096)
    }

    /// Whether a fork of this process can run as the monitor titled `title`.
    pub fn can_fork_monitor(&self, title: &str) -> bool {
        self.threads == 1 && title.len() < self.title_room()
    }
}

/// Overwrite this process's argument strings (and environment strings after them) with
/// `title`, which `/proc/PID/cmdline` and `ps` then show. The environment is copied to the
/// heap first. Call single-threaded, with the layout of the process this one was forked from
/// (the same addresses), after [`ForkLayout::can_fork_monitor`] said yes.
fn set_title(title: &str, l: &ForkLayout) {
    if title.len() >= l.title_room() {
        return;
    }
    let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    for (k, _) in &vars {
        std::env::remove_var(k);
    }
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    let arg_len = l.arg_end - l.arg_start;
    let start = l.arg_start as *mut u8;
    // SAFETY: [arg_start, arg_start + title_room) is this process's own argument and
    // environment strings area (writable, on the initial stack), and title.len() + 1 fits in
    // it. Nothing refers to it any more: the environment now lives on the heap, and the
    // monitor never reads its arguments.
    unsafe {
        std::ptr::copy_nonoverlapping(title.as_ptr(), start, title.len());
        *start.add(title.len()) = 0;
        // A last argument byte that is not NUL tells the kernel to read the title up to its
        // NUL instead of the whole argument area (shorter titles would show trailing NULs).
        if title.len() + 1 < arg_len {
            std::ptr::write_bytes(start.add(title.len() + 1), b' ', arg_len - title.len() - 1);
        }
    }
}

fn set_comm(name: &str) {
    let c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// The monitor's log subscriber: `-o`/`-l`, else `lxc.log.file`/`lxc.log.level`; `None`
/// without a log file.
fn log_dispatch(init: &MonitorInit) -> Option<tracing::Dispatch> {
    let file = init
        .log_file
        .clone()
        .or_else(|| init.spec.log.file.clone())?;
    let level = init
        .log_level
        .clone()
        .unwrap_or_else(|| init.spec.log.level.clone());
    let level = match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" | "NOTICE" => "info",
        "ERROR" | "CRIT" | "ALERT" | "FATAL" => "error",
        _ => "warn",
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .ok()?;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::sync::Mutex::new(f))
        .finish();
    Some(tracing::Dispatch::new(subscriber))
}

/// A pty pair the monitor keeps for the container's whole life (across reboots). The monitor
/// keeps a slave fd open so the master never hangs up between inits.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    /// Client id holding the master.
    held_by: Option<u64>,
}

struct Client {
    id: u64,
    conn: Conn,
    watching: bool,
}

struct Child {
    pid: i32,
    pidfd: OwnedFd,
    /// The error pipe until it reaches EOF.
    err: Option<OwnedFd>,
    err_msg: Vec<u8>,
}

struct Monitor {
    spec: StartSpec,
    init: MonitorInit,
    rundir: RunDir,
    host: Box<dyn HostSetup>,
    entry: ChildEntry,
    state: State,
    listener: OwnedFd,
    sigfd: SignalFd,
    /// Index 0: console (None when disabled); 1..=N: ttys.
    ptys: Vec<Option<Pty>>,
    ring: RingBuffer,
    console_log: Option<std::fs::File>,
    clients: Vec<Client>,
    next_id: u64,
    /// The starter's client id until the start result was sent.
    starter: Option<u64>,
    child: Option<Child>,
    items: Vec<CleanupItem>,
    record: StateRecord,
    kill_at: Option<Instant>,
    /// The starter still sends the network namespace it makes for the first start
    /// ([`MonitorInit::netns`]).
    netns_pending: bool,
    /// When to give back the pages the last commands faulted in (quiet since then).
    trim_at: Option<Instant>,
    /// When to run [`Monitor::settle`] after RUNNING.
    settle_at: Option<Instant>,
    /// When to drop the executable's pages again after the last client left.
    text_trim_at: Option<Instant>,
    /// The executable's own mappings, dropped again each time the last client leaves.
    own_text: Option<trim::OwnText>,
    /// A halt or reboot signal sent while init showed no handler for it, to send again once
    /// it does (until the deadline), and when to look again.
    pending_signal: Option<(i32, Instant)>,
    signal_retry_at: Option<Instant>,
}

type NewError = (Conn, String);

impl Monitor {
    fn new(
        init: MonitorInit,
        starter: Conn,
        host: Box<dyn HostSetup>,
        entry: ChildEntry,
    ) -> Result<Monitor, NewError> {
        let spec = init.spec.clone();
        let listener = match bind_command_socket(&spec) {
            Ok(l) => l,
            Err(e) => return Err((starter, e)),
        };
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            mask.add(s);
        }
        if let Err(e) = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        {
            return Err((starter, format!("block signals: {e}")));
        }
        let sigfd =
            match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
                Ok(s) => s,
                Err(e) => return Err((starter, format!("signalfd: {e}"))),
            };
        let mut ptys = Vec::new();
        for i in 0..=spec.tty.count {
            if i == 0 && !spec.console.enabled {
                ptys.push(None);
                continue;
            }
            match open_pty() {
                Ok(p) => ptys.push(Some(p)),
                Err(e) => return Err((starter, format!("allocate pty for tty {i}: {e}"))),
            }
        }
        let console_log = match &spec.console.logfile {
            Some(p) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => Some(f),
                Err(e) => {
                    return Err((
                        starter,
                        format!("open console log file {}: {e}", p.display()),
                    ))
                }
            },
            None => None,
        };
        let rundir = RunDir::new(&init.rundir);
        let me = std::process::id() as i32;
        let record = StateRecord {
            version: 1,
            name: spec.name.clone(),
            lxcpath: paths::normalize_lxcpath(&spec.lxcpath),
            monitor_pid: me,
            monitor_start: record::proc_start_time(me).unwrap_or(0),
            init_pid: None,
            init_start: None,
            items: Vec::new(),
            pidfile: init.pidfile.clone(),
        };
        let mut m = Monitor {
            ring: RingBuffer::new(spec.console.buffer_size),
            spec,
            init,
            rundir,
            host,
            entry,
            state: State::Starting,
            listener,
            sigfd,
            ptys,
            console_log,
            clients: Vec::new(),
            next_id: 1,
            starter: None,
            child: None,
            items: Vec::new(),
            record,
            kill_at: None,
            trim_at: None,
            settle_at: None,
            text_trim_at: None,
            own_text: None,
            netns_pending: false,
            pending_signal: None,
            signal_retry_at: None,
        };
        let id = m.add_client(starter);
        m.starter = Some(id);
        Ok(m)
    }

    fn add_client(&mut self, conn: Conn) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.clients.push(Client {
            id,
            conn,
            watching: false,
        });
        id
    }

    fn record_path(&self) -> PathBuf {
        self.rundir.record_path(&self.spec.lxcpath, &self.spec.name)
    }

    fn write_record(&mut self) -> Result<(), String> {
        self.record.items = self.items.clone();
        let p = self.record_path();
        record::write(&p, &self.record)
            .map_err(|e| format!("write state record {}: {e}", p.display()))
    }

    fn set_state(&mut self, s: State) {
        if s == self.state {
            return;
        }
        if !self.state.can_become(s) {
            tracing::warn!("unexpected state change {} -> {}", self.state, s);
        }
        tracing::info!("state {} -> {}", self.state, s);
        self.state = s;
        let mut r = Response::ok();
        r.notify = true;
        r.state = Some(s);
        let msg = proto::encode(&r);
        for c in self.clients.iter().filter(|c| c.watching) {
            let _ = c.conn.send(&msg, None);
        }
    }

    /// Run until the container is gone; returns the exit code.
    fn run(&mut self) -> i32 {
        if let Err(msg) = self.start_container() {
            return self.abort(msg);
        }
        self.event_loop()
    }

    /// The network namespace the starter made while this monitor set up (first start only):
    /// its `netns` line carries it, a `none` line says it could make none. `None` then, and
    /// when the starter is gone or silent for long: the clone makes one.
    fn netns_ahead(&mut self) -> Option<OwnedFd> {
        if !std::mem::take(&mut self.netns_pending) {
            return None;
        }
        let id = self.starter?;
        let c = self.clients.iter_mut().find(|c| c.id == id)?;
        match c
            .conn
            .read_line(Some(Instant::now() + Duration::from_secs(10)))
        {
            Ok(Some(l)) if l == proto::NETNS_AHEAD => c.conn.take_fd(),
            _ => None,
        }
    }

    /// Clone the child, run the host seam, let it go. STARTING on return.
    fn start_container(&mut self) -> Result<(), String> {
        let (sync_r, sync_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let dup = |fd: BorrowedFd<'_>| fd.try_clone_to_owned().map_err(|e| format!("dup pty: {e}"));
        let console = match &self.ptys[0] {
            Some(p) => Some(dup(p.slave.as_fd())?),
            None => None,
        };
        let mut ttys = Vec::new();
        for p in self.ptys[1..].iter().flatten() {
            ttys.push(dup(p.slave.as_fd())?);
        }
        // The child's early setup on another CPU than our cgroup work that follows the clone.
        let nudge = crate::syscall::CpuNudge::plan();
        let ctx = ChildContext {
            sync_read: sync_r,
            err_write: err_w,
            console,
            ttys,
            affinity: nudge.map(|n| *n.mask()),
        };
        // On v2 the cgroup the child is born in.
        let mut created = Vec::new();
        let into = self.host.before_clone(&self.spec, &mut created);
        if !created.is_empty() {
            self.items.extend(created);
            self.write_record()?;
        }
        let into = into.map_err(|e| format!("host setup: {e}"))?;
        let mut flags = (self.entry.clone_flags)(&self.spec);
        // A network namespace made ahead by the starter (first start only): the child is
        // cloned with the monitor inside it, then the monitor goes back.
        let ahead = match self.netns_ahead() {
            Some(ns) if flags.contains(CloneFlags::CLONE_NEWNET) => {
                let home = std::fs::File::open("/proc/self/ns/net")
                    .map_err(|e| format!("open /proc/self/ns/net: {e}"))?;
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("enter the network namespace made ahead: {e}"))?;
                flags.remove(CloneFlags::CLONE_NEWNET);
                Some(home)
            }
            _ => None,
        };
        let flags = flags.bits() as libc::c_long;
        let t0 = Instant::now();
        let pid = match into.as_ref() {
            Some(dir) => match crate::syscall::clone_into_cgroup(flags as u64, dir.as_raw_fd()) {
                // A kernel without clone3 or CLONE_INTO_CGROUP: the host setup moves the
                // child after a plain clone.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::E2BIG)) => {
                    crate::syscall::plain_clone(flags)
                }
                r => r,
            },
            None => crate::syscall::plain_clone(flags),
        }
        .map_err(|e| format!("clone: {e}"));
        if let (Some(home), Ok(p)) = (&ahead, &pid) {
            if *p != 0 {
                // Every later netlink call of the monitor acts on the host: not coming back
                // is not recoverable.
                if let Err(e) = nix::sched::setns(home, CloneFlags::CLONE_NEWNET) {
                    kill_pid(*p as i32);
                    panic!("cannot return to the host network namespace: {e}");
                }
            }
        }
        let pid = pid?;
        drop(into);
        if pid == 0 {
            // Child: drop the monitor's ends so a dead monitor means EOF to the child.
            drop(sync_w);
            drop(err_r);
            // Undo the monitor's signal set-up: blocked signals and ignored SIGPIPE would be
            // inherited by init across exec.
            let _ = nix::sys::signal::pthread_sigmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            // SAFETY: restoring the default disposition of SIGPIPE; no handler is involved.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            (self.entry.run)(&self.spec, ctx);
        }
        let pid = pid as i32;
        if let Some(n) = nudge {
            n.push(pid);
        }
        drop(ctx);
        tracing::debug!("cloned init {pid} in {:?}", t0.elapsed());
        // SAFETY: pidfd_open on our own unreaped child; returns a new fd or -1.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            let e = std::io::Error::last_os_error();
            kill_pid(pid);
            return Err(format!("pidfd_open({pid}): {e}"));
        }
        // SAFETY: pidfd_open returned a fresh descriptor we now own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(pidfd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        self.child = Some(Child {
            pid,
            pidfd,
            err: Some(err_r),
            err_msg: Vec::new(),
        });
        // One record write for init and what the host side made for it. A monitor killed
        // before it leaves no init behind (it dies with its parent) and nothing unrecorded but
        // what the host setup made part-way, as before.
        self.record.init_pid = Some(pid);
        self.record.init_start = record::proc_start_time(pid);
        let mut created = Vec::new();
        let prep = self.host.prepare(&self.spec, pid, &mut created);
        self.items.extend(created);
        self.write_record()?;
        prep.map_err(|e| format!("host setup: {e}"))?;
        // Let the child continue (and join the cgroups it moves itself into). EPIPE: it
        // failed in its early setup and said why.
        let release = crate::child::release_message(&self.host.child_joins());
        if let Err(e) = crate::console::write_all_fd(sync_w.as_raw_fd(), &release) {
            return Err(self
                .child_error_message()
                .unwrap_or_else(|| format!("sync write: {e}")));
        }
        drop(sync_w);
        tracing::debug!("child {pid} released {:?} after clone", t0.elapsed());
        Ok(())
    }

    /// What a child that gave up before its release wrote on the error pipe (read to EOF,
    /// waiting at most a second: the child is exiting).
    fn child_error_message(&mut self) -> Option<String> {
        let ch = self.child.as_mut()?;
        let fd = ch.err.take()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut msg = std::mem::take(&mut ch.err_msg);
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => msg.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&msg).trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// ABORTING: kill the child, tear down, tell the starter; STOPPED; exit code 1.
    fn abort(&mut self, msg: String) -> i32 {
        tracing::error!("start failed: {msg}");
        self.set_state(State::Aborting);
        self.kill_and_reap_child();
        self.teardown();
        self.finish();
        self.set_state(State::Stopped);
        // Last: the starter waits for EOF after this, so when it returns nothing is left.
        if let Some(id) = self.starter.take() {
            if let Some(c) = self.clients.iter().find(|c| c.id == id) {
                let _ = c.conn.send(&proto::encode(&Response::err(msg)), None);
            }
        }
        1
    }

    fn kill_and_reap_child(&mut self) {
        if let Some(ch) = self.child.take() {
            pidfd_signal(ch.pidfd.as_fd(), libc::SIGKILL);
            while let Err(nix::errno::Errno::EINTR) =
                nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ch.pid), None)
            {}
        }
    }

    fn teardown(&mut self) {
        let items = std::mem::take(&mut self.items);
        for e in self.host.teardown(&items) {
            tracing::error!("teardown: {e}");
        }
        let _ = self.write_record();
    }

    /// Remove the record and pidfile; the process exits right after (closing all clients).
    fn finish(&mut self) {
        record::remove(&self.record_path());
        if let Some(p) = &self.init.pidfile {
            let _ = std::fs::remove_file(p);
        }
    }

    fn event_loop(&mut self) -> i32 {
        let mut buf = vec![0u8; 16384];
        loop {
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8 + self.clients.len());
            let pfd = |fd: RawFd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            fds.push(pfd(self.listener.as_raw_fd()));
            fds.push(pfd(self.sigfd.as_raw_fd()));
            let err_fd = self
                .child
                .as_ref()
                .and_then(|c| c.err.as_ref())
                .map(|f| f.as_raw_fd());
            if let Some(fd) = err_fd {
                fds.push(pfd(fd));
            }
            let console_fd = match &self.ptys[0] {
                Some(p) if p.held_by.is_none() => Some(p.master.as_raw_fd()),
                _ => None,
            };
            if let Some(fd) = console_fd {
                fds.push(pfd(fd));
            }
            let first_client = fds.len();
            for c in &self.clients {
                fds.push(pfd(c.conn.raw()));
            }
            let timers = [
                self.kill_at,
                self.trim_at,
                self.signal_retry_at,
                self.settle_at,
                self.text_trim_at,
            ];
            let timeout = match timers.into_iter().flatten().min() {
                Some(t) => t.saturating_duration_since(Instant::now()).as_millis() as i32,
                None => -1,
            };
            // SAFETY: fds is a valid pollfd array of the given length.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                tracing::error!("poll: {e}");
                return self.abort(format!("poll: {e}"));
            }
            if let Some(t) = self.kill_at {
                if Instant::now() >= t {
                    self.kill_at = None;
                    let _ = self.signal_init(StopKind::Kill);
                }
            }
            if self.signal_retry_at.is_some_and(|t| Instant::now() >= t) {
                self.signal_retry_at = None;
                if let (Some((sig, until)), Some(ch)) = (self.pending_signal, self.child.as_ref()) {
                    if catches(ch.pid, sig) {
                        tracing::info!("init {} takes signal {sig} now: sending it again", ch.pid);
                        pidfd_signal(ch.pidfd.as_fd(), sig);
                        self.pending_signal = None;
                    } else if Instant::now() < until {
                        self.signal_retry_at = Some(Instant::now() + SIGNAL_RETRY);
                    } else {
                        self.pending_signal = None;
                    }
                } else {
                    self.pending_signal = None;
                }
            }
            if self.trim_at.is_some_and(|t| Instant::now() >= t) {
                self.trim_at = None;
                trim::release_startup_pages();
            }
            if self.text_trim_at.is_some_and(|t| Instant::now() >= t) {
                self.text_trim_at = None;
                // Not while the container starts, nor while a command is being served.
                if self.clients.is_empty() && matches!(self.state, State::Running | State::Frozen) {
                    self.own_text
                        .get_or_insert_with(trim::OwnText::find)
                        .release();
                }
            }
            if self.settle_at.is_some_and(|t| Instant::now() >= t) {
                self.settle_at = None;
                if matches!(self.state, State::Running | State::Frozen) {
                    self.settle();
                }
            }
            let ready = |fd: RawFd| fds.iter().any(|p| p.fd == fd && p.revents != 0);
            // Order matters: the error pipe before SIGCHLD, so an exec followed by a quick
            // exit is seen as RUNNING then STOPPING.
            if let Some(fd) = err_fd {
                if ready(fd) {
                    if let Some(code) = self.on_err_pipe() {
                        return code;
                    }
                }
            }
            if let Some(fd) = console_fd {
                if ready(fd) {
                    self.on_console(&mut buf);
                }
            }
            let client_fds: Vec<RawFd> = fds[first_client..]
                .iter()
                .filter(|p| p.revents != 0)
                .map(|p| p.fd)
                .collect();
            for fd in client_fds {
                self.on_client(fd);
            }
            if ready(self.listener.as_raw_fd()) {
                self.on_accept();
            }
            if ready(self.sigfd.as_raw_fd()) {
                if let Some(code) = self.on_signals() {
                    return code;
                }
            }
        }
    }

    /// Error pipe readable. Returns an exit code if the monitor is done.
    fn on_err_pipe(&mut self) -> Option<i32> {
        let ch = self.child.as_mut()?;
        let fd = ch.err.as_ref()?.as_raw_fd();
        let mut buf = [0u8; 4096];
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => {
                ch.err = None;
                let msg = std::mem::take(&mut ch.err_msg);
                if msg.is_empty() {
                    self.on_running();
                    None
                } else {
                    let text = String::from_utf8_lossy(&msg).trim().to_string();
                    Some(self.abort(text))
                }
            }
            Ok(n) => {
                ch.err_msg.extend_from_slice(&buf[..n]);
                None
            }
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => None,
            Err(e) => Some(self.abort(format!("read child error pipe: {e}"))),
        }
    }

    fn on_running(&mut self) {
        self.set_state(State::Running);
        self.report_running();
        // Off the start path: the starter has its answer and init its first moments, with
        // both CPUs of a small host to themselves.
        self.settle_at = Some(Instant::now() + SETTLE_AFTER);
    }

    /// A moment after RUNNING: the host seam's late part (the monitor leaves the caller's
    /// cgroups for its own), and the pages the start faulted in go back.
    fn settle(&mut self) {
        let mut created = Vec::new();
        let r = self.host.after_running(&self.spec, &mut created);
        if !created.is_empty() {
            self.items.extend(created);
            if let Err(e) = self.write_record() {
                tracing::warn!("{e}");
            }
        }
        if let Err(e) = r {
            tracing::warn!("{}: {e}", self.spec.name);
        }
        let bytes = trim::release_startup_pages();
        tracing::debug!("released {} KiB of start-up mappings", bytes / 1024);
    }

    /// Send the start result (RUNNING, and the console when asked for) to the starter.
    fn report_running(&mut self) {
        let Some(id) = self.starter.take() else {
            return;
        };
        let Some(idx) = self.clients.iter().position(|c| c.id == id) else {
            return;
        };
        let mut r = Response::ok();
        r.state = Some(State::Running);
        r.init_pid = self.child.as_ref().map(|c| c.pid);
        r.monitor_pid = Some(std::process::id() as i32);
        if self.init.attach_console {
            if let Some(p) = self.ptys[0].as_mut() {
                if p.held_by.is_none() {
                    let replay = self.ring.contents();
                    r.tty = Some(0);
                    r.replay_len = Some(replay.len());
                    let mut msg = proto::encode(&r);
                    msg.extend_from_slice(&replay);
                    if self.clients[idx]
                        .conn
                        .send(&msg, Some(p.master.as_fd()))
                        .is_ok()
                    {
                        p.held_by = Some(id);
                    }
                    return;
                }
            }
        }
        let _ = self.clients[idx].conn.send(&proto::encode(&r), None);
    }

    fn on_console(&mut self, buf: &mut [u8]) {
        // Handed to a client earlier in this loop iteration: its data is the client's now.
        let Some(p) = self.ptys[0].as_ref().filter(|p| p.held_by.is_none()) else {
            return;
        };
        match nix::unistd::read(p.master.as_raw_fd(), buf) {
            Ok(n) if n > 0 => {
                self.ring.push(&buf[..n]);
                if let Some(f) = self.console_log.as_mut() {
                    let _ = f.write_all(&buf[..n]);
                }
            }
            _ => {}
        }
    }

    fn on_accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listening socket; null address pointers are allowed.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return;
            }
            // SAFETY: accept4 returned a fresh descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // Writes to a client that stops reading give up after a second instead of
            // blocking the monitor (the client is then dropped).
            let tv = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            // SAFETY: setsockopt reads one timeval from a valid pointer.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if !peer_allowed(fd.as_raw_fd()) {
                tracing::warn!("refusing command-socket client with another uid");
                continue;
            }
            self.add_client(Conn::new(fd));
        }
    }

    fn drop_client(&mut self, idx: usize) {
        let c = self.clients.swap_remove(idx);
        for p in self.ptys.iter_mut().flatten() {
            if p.held_by == Some(c.id) {
                p.held_by = None;
            }
        }
        if self.starter == Some(c.id) {
            self.starter = None;
        }
        // No command left: give back the code serving it faulted in (the next one faults
        // back what it needs), a moment later: not while the client that just hung up exits
        // (on a small host the two would share a CPU), nor between commands of a burst.
        if self.clients.is_empty() {
            self.text_trim_at = Some(Instant::now() + TEXT_TRIM_AFTER);
        }
    }

    fn on_client(&mut self, fd: RawFd) {
        let Some(idx) = self.clients.iter().position(|c| c.conn.raw() == fd) else {
            return;
        };
        // Serving commands faults code back in; give it back once they stop.
        self.trim_at = Some(Instant::now() + TRIM_AFTER_QUIET);
        match self.clients[idx].conn.recv_some(true) {
            Ok(0) => {
                self.drop_client(idx);
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                self.drop_client(idx);
                return;
            }
        }
        while let Some(line) = self.clients[idx].conn.take_line() {
            let req = proto::decode_request(&line);
            let id = self.clients[idx].id;
            let (resp, pass, replay) = match req {
                Ok(r) => self.handle(id, r),
                Err(e) => (Response::err(e), None, Vec::new()),
            };
            let mut msg = proto::encode(&resp);
            msg.extend_from_slice(&replay);
            let master = pass.and_then(|t| {
                self.ptys
                    .get(t as usize)?
                    .as_ref()
                    .map(|p| p.master.as_raw_fd())
            });
            // SAFETY: the master fd stays open (owned by self.ptys) for the duration of send.
            let master = master.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
            if self.clients[idx].conn.send(&msg, master).is_err() {
                self.drop_client(idx);
                return;
            }
        }
        if self.clients[idx].conn.overlong() {
            self.drop_client(idx);
        }
    }

    /// Answer one request: the response, a tty whose master to pass, raw bytes to append.
    fn handle(&mut self, id: u64, req: Request) -> (Response, Option<u32>, Vec<u8>) {
        match req {
            Request::Info => (self.info(), None, Vec::new()),
            Request::Watch => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
                    c.watching = true;
                }
                (self.info(), None, Vec::new())
            }
            Request::Stop { kind } => {
                if self.child.is_none() {
                    return (Response::err("container is not running"), None, Vec::new());
                }
                if kind == StopKind::Kill {
                    self.kill_at = None;
                }
                match self.signal_init(kind) {
                    Ok(()) => (self.info(), None, Vec::new()),
                    Err(e) => (Response::err(e), None, Vec::new()),
                }
            }
            Request::Console { tty } => match self.pick_tty(tty) {
                Ok(n) => {
                    let p = self.ptys[n as usize]
                        .as_mut()
                        .expect("picked an existing pty");
                    p.held_by = Some(id);
                    let replay = if n == 0 {
                        self.ring.contents()
                    } else {
                        Vec::new()
                    };
                    let mut r = self.info();
                    r.tty = Some(n);
                    r.replay_len = Some(replay.len());
                    (r, Some(n), replay)
                }
                Err(e) => (Response::err(e), None, Vec::new()),
            },
            Request::Freeze => (self.cgroup_freeze(), None, Vec::new()),
            Request::Unfreeze => (self.cgroup_unfreeze(), None, Vec::new()),
            Request::DeviceRule { allow, rule } => {
                (self.cgroup_device_rule(allow, &rule), None, Vec::new())
            }
        }
    }

    fn info(&self) -> Response {
        let mut r = Response::ok();
        r.state = Some(self.state);
        r.init_pid = self.child.as_ref().map(|c| c.pid);
        r.monitor_pid = Some(std::process::id() as i32);
        r
    }

    fn pick_tty(&self, want: Option<u32>) -> Result<u32, String> {
        let free =
            |n: u32| matches!(self.ptys.get(n as usize), Some(Some(p)) if p.held_by.is_none());
        pick_tty(want, self.spec.tty.count, self.ptys[0].is_some(), free)
    }

    fn signal_init(&mut self, kind: StopKind) -> Result<(), String> {
        let Some(pid) = self.child.as_ref().map(|c| c.pid) else {
            return Err("container is not running".into());
        };
        let sig = match kind {
            StopKind::Halt => self.spec.signals.halt,
            StopKind::Reboot => self.spec.signals.reboot,
            StopKind::Kill => self.spec.signals.stop,
        };
        // The namespace's init drops a signal it neither catches nor blocks: one sent before
        // init has set itself up (systemd just started) would be lost. It is sent now all the
        // same (an init waiting in sigtimedwait() takes it without showing it in its masks, as
        // busybox does), and sent once more as soon as init shows it takes it.
        self.pending_signal = None;
        self.signal_retry_at = None;
        if kind != StopKind::Kill && sig != libc::SIGKILL && !catches(pid, sig) {
            tracing::info!(
                "init {pid} does not show a handler for signal {sig} yet: sending it again once it does"
            );
            self.pending_signal = Some((sig, Instant::now() + SIGNAL_WATCH));
            self.signal_retry_at = Some(Instant::now() + SIGNAL_RETRY);
        }
        tracing::info!("sending signal {sig} ({kind:?}) to init {pid}");
        let Some(ch) = &self.child else {
            return Err("container is not running".into());
        };
        if pidfd_signal(ch.pidfd.as_fd(), sig) {
            if kind == StopKind::Kill {
                // A frozen container only dies once thawed (v1; LXC's `lxc-stop -k`).
                self.thaw_for_kill();
            }
            Ok(())
        } else {
            Err(format!(
                "send signal {sig} to init {}: {}",
                ch.pid,
                std::io::Error::last_os_error()
            ))
        }
    }

    /// Returns an exit code when the monitor is done.
    fn on_signals(&mut self) -> Option<i32> {
        while let Ok(Some(si)) = self.sigfd.read_signal() {
            match si.ssi_signo as i32 {
                libc::SIGCHLD => {
                    if let Some(code) = self.reap() {
                        return Some(code);
                    }
                }
                libc::SIGTERM => {
                    tracing::info!("SIGTERM: stopping the container");
                    if self.child.is_some() {
                        let _ = self.signal_init(StopKind::Halt);
                        self.kill_at = Some(Instant::now() + SIGTERM_GRACE);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn reap(&mut self) -> Option<i32> {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(st) => {
                    let pid = st.pid()?;
                    if self.child.as_ref().map(|c| c.pid) != Some(pid.as_raw()) {
                        continue;
                    }
                    return self.on_init_exit(st);
                }
            }
        }
    }

    fn on_init_exit(&mut self, st: nix::sys::wait::WaitStatus) -> Option<i32> {
        use nix::sys::wait::WaitStatus;
        tracing::info!("init {}", describe(st));
        // The error pipe not yet seen at EOF: collect what the child wrote before dying.
        let pending = self.child.as_mut().and_then(|ch| {
            let err = ch.err.take()?;
            let mut buf = [0u8; 4096];
            while let Ok(n) = nix::unistd::read(err.as_raw_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                ch.err_msg.extend_from_slice(&buf[..n]);
            }
            Some(std::mem::take(&mut ch.err_msg))
        });
        match pending {
            Some(msg) if !msg.is_empty() => {
                self.child = None;
                let text = String::from_utf8_lossy(&msg).trim().to_string();
                return Some(self.abort(text));
            }
            // Exec'd (error pipe closed empty) and exited at once.
            Some(_) => self.on_running(),
            None => {}
        }
        self.child = None;
        self.kill_at = None;
        let reboot = matches!(st, WaitStatus::Signaled(_, Signal::SIGHUP, _));
        self.set_state(State::Stopping);
        self.teardown();
        if reboot {
            tracing::info!("container rebooted: starting it again");
            self.record.init_pid = None;
            self.record.init_start = None;
            self.set_state(State::Starting);
            if let Err(msg) = self.start_container() {
                return Some(self.abort(msg));
            }
            return None;
        }
        self.set_state(State::Stopped);
        self.finish();
        Some(0)
    }
}

/// Which tty a console request gets: `Some(0)` the console, `Some(n)` tty n, `None` the first
/// free tty 1..=count (the console when there are no ttys). Busy or missing ones are errors.
fn pick_tty(
    want: Option<u32>,
    count: u32,
    has_console: bool,
    free: impl Fn(u32) -> bool,
) -> Result<u32, String> {
    match want {
        Some(0) | None if count == 0 || want == Some(0) => {
            if !has_console {
                Err(if count == 0 {
                    "the container has no console (lxc.console.path = none) and no ttys (lxc.tty.max = 0)".into()
                } else {
                    "the container has no console (lxc.console.path = none)".into()
                })
            } else if free(0) {
                Ok(0)
            } else {
                Err("tty 0 (the console) is busy".into())
            }
        }
        Some(n) if n > count => Err(format!("tty {n} does not exist (lxc.tty.max = {count})")),
        Some(n) if free(n) => Ok(n),
        Some(n) => Err(format!("tty {n} is busy")),
        None => (1..=count)
            .find(|n| free(*n))
            .ok_or_else(|| format!("no free tty (all {count} busy)")),
    }
}

fn describe(st: nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match st {
        WaitStatus::Exited(_, c) => format!("exit status {c}"),
        WaitStatus::Signaled(_, s, _) => format!("killed by {s}"),
        other => format!("{other:?}"),
    }
}

fn bind_command_socket(spec: &StartSpec) -> Result<OwnedFd, String> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let name = paths::socket_name(&spec.lxcpath, &spec.name);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("command socket: {e}"))?;
    let addr = UnixAddr::new_abstract(&name).map_err(|e| format!("command socket name: {e}"))?;
    match bind(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(nix::errno::Errno::EADDRINUSE) => {
            return Err(format!("container {:?} is already running", spec.name));
        }
        Err(e) => {
            return Err(format!("bind @{}: {e}", String::from_utf8_lossy(&name)));
        }
    }
    listen(&fd, Backlog::new(128).expect("valid backlog")).map_err(|e| format!("listen: {e}"))?;
    Ok(fd)
}

fn open_pty() -> Result<Pty, String> {
    let r = nix::pty::openpty(None, None).map_err(|e| e.to_string())?;
    for fd in [r.master.as_raw_fd(), r.slave.as_raw_fd()] {
        // SAFETY: fcntl on descriptors we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(Pty {
        master: r.master,
        slave: r.slave,
        held_by: None,
    })
}

fn peer_allowed(fd: RawFd) -> bool {
    // SAFETY: ucred is plain data; getsockopt writes at most len bytes into it.
    unsafe {
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        ) != 0
        {
            return false;
        }
        cred.uid == 0 || cred.uid == libc::geteuid()
    }
}

/// pidfd_send_signal; true on success.
fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> bool {
    // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// Whether `pid` takes `sig` (see [`sig_caught`]). Unknown (no such file, odd text): true, so
/// the signal is sent.
fn catches(pid: i32, sig: i32) -> bool {
    let Ok(status) = lxrs_cgroup::read_pseudo(std::path::Path::new(&format!("/proc/{pid}/status")))
    else {
        return true;
    };
    sig_caught(&status, sig).unwrap_or(true)
}

/// Whether a `/proc/PID/status` text shows `sig` caught by a handler (`SigCgt`) or blocked
/// (`SigBlk`: taken from a signalfd, as systemd does). Either way the kernel queues it for a
/// namespace's init; otherwise it drops it.
fn sig_caught(status: &str, sig: i32) -> Option<bool> {
    let mask = |key: &str| crate::syscall::signal_masks(status, &[key]);
    let bits = mask("SigCgt:")? | mask("SigBlk:").unwrap_or(0);
    let bit = u32::try_from(sig.checked_sub(1)?).ok()?;
    Some(bit < 64 && bits & (1u64 << bit) != 0)
}

fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}

/// Cgroup requests (reference §2.6, §6.1): the work is `crate::cgroups`; the monitor owns the
/// state it reports (FREEZING/FROZEN, THAWED/RUNNING) and, on cgroup2, the device program.
impl Monitor {
    fn cgroup_freeze(&mut self) -> Response {
        match self.state {
            State::Frozen => return self.info(),
            State::Running | State::Thawed if self.child.is_some() => {}
            s => return Response::err(format!("container is {s}, not RUNNING")),
        }
        if self.host.cgroups().is_none() {
            return Response::err("the container has no cgroup to freeze");
        }
        self.set_state(State::Freezing);
        let r = self
            .host
            .cgroups()
            .map(|c| c.freeze())
            .expect("checked above");
        match r {
            Ok(()) => {
                self.set_state(State::Frozen);
                self.info()
            }
            Err(e) => {
                // The cgroup crate thawed it back.
                self.set_state(State::Running);
                Response::err(e.to_string())
            }
        }
    }

    fn cgroup_unfreeze(&mut self) -> Response {
        match self.state {
            State::Frozen | State::Freezing if self.child.is_some() => {}
            State::Running | State::Thawed if self.child.is_some() => return self.info(),
            s => return Response::err(format!("container is {s}, not RUNNING or FROZEN")),
        }
        if self.host.cgroups().is_none() {
            return Response::err("the container has no cgroup to thaw");
        }
        self.set_state(State::Thawed);
        let r = self
            .host
            .cgroups()
            .map(|c| c.thaw())
            .expect("checked above");
        match r {
            Ok(()) => {
                self.set_state(State::Running);
                self.info()
            }
            Err(e) => {
                self.set_state(State::Frozen);
                Response::err(e.to_string())
            }
        }
    }

    fn cgroup_device_rule(&mut self, allow: bool, rule: &str) -> Response {
        if self.child.is_none() {
            return Response::err("container is not running");
        }
        if rule.trim_start().starts_with('/') {
            return Response::err(format!(
                "device rule {rule:?}: give `c|b MAJOR:MINOR ACCESS`, not a path"
            ));
        }
        let parsed = match lxrs_cgroup::DeviceRule::parse(allow, rule) {
            Ok(r) => r,
            Err(e) => return Response::err(e.to_string()),
        };
        let Some(cgs) = self.host.cgroups() else {
            return Response::err("the container has no cgroup device filter");
        };
        match cgs.device_rule(parsed) {
            Ok(()) => {
                tracing::info!(
                    "device rule {} {parsed}",
                    if allow { "allow" } else { "deny" }
                );
                self.info()
            }
            Err(e) => Response::err(e.to_string()),
        }
    }

    /// After the kill signal: thaw, so a frozen init can die.
    fn thaw_for_kill(&mut self) {
        if let Some(cgs) = self.host.cgroups() {
            if let Err(e) = cgs.thaw() {
                tracing::warn!("thawing for the kill: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{pick_tty, sig_caught, ForkLayout};

    /// A `/proc/PID/stat` line of a process named `comm` with the given thread count and
    /// argument and environment areas (fields 20 and 48-51).
    fn stat_line(comm: &str, threads: u64, areas: [usize; 4]) -> String {
        let mut f: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        f[0] = "S".into();
        f[20 - 3] = threads.to_string();
        for (i, v) in areas.iter().enumerate() {
            f[48 - 3 + i] = v.to_string();
        }
        format!("1234 ({comm}) {}\n", f.join(" "))
    }

    #[test]
    fn fork_layout_from_proc_stat() {
        let l = ForkLayout::parse(&stat_line("a (b) c", 1, [1000, 1040, 1040, 1100])).unwrap();
        assert_eq!(
            l,
            ForkLayout {
                threads: 1,
                arg_start: 1000,
                arg_end: 1040,
                env_start: 1040,
                env_end: 1100,
            }
        );
        // The environment follows the arguments: a title may run on into it.
        assert_eq!(l.title_room(), 100);
        assert!(l.can_fork_monitor(&"t".repeat(99)));
        assert!(!l.can_fork_monitor(&"t".repeat(100)), "no room for the NUL");
        // Two threads: a fork may not run the monitor's code.
        let two = ForkLayout::parse(&stat_line("lxrs", 2, [1000, 1040, 1040, 1100])).unwrap();
        assert!(!two.can_fork_monitor("t"));
        // An environment elsewhere (moved by the program): the arguments only.
        let apart = ForkLayout::parse(&stat_line("lxrs", 1, [1000, 1040, 5000, 5100])).unwrap();
        assert_eq!(apart.title_room(), 40);
        // The kernel reads a title that overflows the arguments up to one page.
        let big = ForkLayout::parse(&stat_line("lxrs", 1, [1000, 1040, 1040, 99000])).unwrap();
        assert_eq!(big.title_room(), 4096);
        let huge = ForkLayout::parse(&stat_line("lxrs", 1, [1000, 9000, 9000, 9100])).unwrap();
        assert_eq!(huge.title_room(), 4096);
        assert!(ForkLayout::parse("1234 (truncated) S 1 2").is_none());
    }

    #[test]
    fn caught_signals_from_proc_status() {
        // systemd (read off a running one): crash handlers caught, SIGRTMIN+3 (37), SIGINT
        // and more blocked for its signalfd. Early on, nothing blocked yet.
        let systemd = "Name:\tsystemd\nSigBlk:\t7fe3c0fe28014a03\nSigIgn:\t0000000000001000\nSigCgt:\t00000000000004ec\n";
        assert_eq!(sig_caught(systemd, 37), Some(true));
        assert_eq!(sig_caught(systemd, libc::SIGINT), Some(true));
        assert_eq!(sig_caught(systemd, libc::SIGSEGV), Some(true));
        assert_eq!(sig_caught(systemd, libc::SIGTRAP), Some(false));
        let early = "Name:\tsystemd\nSigBlk:\t0000000000000000\nSigCgt:\t00000000000004ec\n";
        assert_eq!(sig_caught(early, 37), Some(false));
        let bare = "Name:\tinit\nSigCgt:\t0000000000000000\n";
        assert_eq!(sig_caught(bare, libc::SIGUSR1), Some(false));
        assert_eq!(sig_caught("Name:\tx\n", 15), None);
        assert_eq!(sig_caught(bare, 0), None);
    }

    #[test]
    fn tty_allocation() {
        let all = |_: u32| true;
        assert_eq!(pick_tty(Some(0), 4, true, all), Ok(0));
        assert_eq!(pick_tty(None, 4, true, all), Ok(1));
        assert_eq!(pick_tty(None, 4, true, |n| n > 2), Ok(3));
        assert_eq!(pick_tty(Some(3), 4, true, all), Ok(3));
        assert!(pick_tty(Some(3), 4, true, |n| n != 3)
            .unwrap_err()
            .contains("busy"));
        assert!(pick_tty(Some(5), 4, true, all)
            .unwrap_err()
            .contains("does not exist"));
        assert!(pick_tty(None, 4, true, |n| n == 0)
            .unwrap_err()
            .contains("no free tty"));
        // No ttys: the console; no console either: a clear error.
        assert_eq!(pick_tty(None, 0, true, all), Ok(0));
        assert!(pick_tty(None, 0, false, all)
            .unwrap_err()
            .contains("no console"));
        assert!(pick_tty(Some(0), 2, false, all)
            .unwrap_err()
            .contains("no console"));
        assert!(pick_tty(Some(0), 2, true, |n| n != 0)
            .unwrap_err()
            .contains("busy"));
    }
}
