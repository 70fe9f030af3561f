//! The lifecycle API the commands use: start, stop, state/info, console, leftover cleanup.
//!
//! Every function takes a [`RunDir`] (`RunDir::default()` = `$LXRS_RUNDIR` or `/run/lxrs`) and
//! the lxcpath/name of the container. Start, stop and leftover cleanup hold the container lock.

use crate::console::ConsoleSession;
use crate::error::LifecycleError;
use crate::host::{HostError, HostSetup};
use crate::lock::ContainerLock;
use crate::monitor;
use crate::paths::{self, RunDir};
use crate::proto::{self, Conn, MonitorInit, Request, Response, StopKind};
use crate::record;
use crate::spec::StartSpec;
use crate::state::State;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for a monitor to answer a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the monitor to finish after a kill.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of [`start`].
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub rundir: RunDir,
    /// The binary re-executed as the monitor (default `/proc/self/exe`) when it is not forked
    /// (see `fork_monitor`).
    pub monitor_exe: PathBuf,
    /// Make the monitor a fork of this process, without an exec, when this process has one
    /// thread and room for the monitor's title in its argument strings (default). Else, or
    /// when false, `monitor_exe` is executed as the monitor: its `main` must call
    /// [`monitor::run_if_monitor`] first thing.
    pub fork_monitor: bool,
    /// `-o`: the monitor's log file (else `lxc.log.file`).
    pub log_file: Option<PathBuf>,
    /// `-l`: the monitor's log priority (else `lxc.log.level`).
    pub log_level: Option<String>,
    /// `-s KEY=VAL` defines, passed through (already folded into the spec by the builder).
    pub defines: Vec<String>,
    /// `-p`: file receiving the monitor pid; removed when the container stops.
    pub pidfile: Option<PathBuf>,
    /// Foreground start: the console (tty 0) comes back in [`Started::console`].
    pub attach_console: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            rundir: RunDir::default(),
            monitor_exe: PathBuf::from("/proc/self/exe"),
            fork_monitor: true,
            log_file: None,
            log_level: None,
            defines: Vec::new(),
            pidfile: None,
            attach_console: false,
        }
    }
}

/// A started container.
#[derive(Debug)]
pub struct Started {
    pub monitor_pid: i32,
    pub init_pid: i32,
    /// Foreground starts with a console: the console session (its connection closes when the
    /// container stops).
    pub console: Option<ConsoleSession>,
    /// Foreground starts without a console: a connection that reaches EOF when the container
    /// stopped.
    pub conn: Option<Conn>,
}

/// What `info` reports; a container without a monitor is `STOPPED` with no pids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub state: State,
    pub init_pid: Option<i32>,
    pub monitor_pid: Option<i32>,
}

/// Take the container lock (serialises start, stop, destroy).
pub fn lock(rundir: &RunDir, lxcpath: &Path, name: &str) -> Result<ContainerLock, LifecycleError> {
    ContainerLock::acquire(&rundir.lock_path(lxcpath, name))
}

/// Connect to a container's monitor; `Ok(None)` when no monitor listens (not running).
pub fn connect(lxcpath: &Path, name: &str) -> Result<Option<Conn>, LifecycleError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let mon = |op, e: nix::errno::Errno| LifecycleError::Monitor {
        op,
        name: name.to_string(),
        source: e.into(),
    };
    let sname = paths::socket_name(lxcpath, name);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| mon("create socket", e))?;
    let addr = UnixAddr::new_abstract(&sname).map_err(|e| mon("socket name", e))?;
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => return Ok(Some(Conn::new(fd))),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNREFUSED) | Err(nix::errno::Errno::ENOENT) => {
                return Ok(None)
            }
            Err(e) => return Err(mon("connect to monitor", e)),
        }
    }
}

/// Send one request and read its answer (skipping notifications). `Ok(None)` on EOF.
pub fn request(
    conn: &mut Conn,
    name: &str,
    req: &Request,
    deadline: Option<Instant>,
) -> Result<Option<Response>, LifecycleError> {
    let op = "command";
    let ioerr = |e: std::io::Error| LifecycleError::Monitor {
        op,
        name: name.to_string(),
        source: e,
    };
    match conn.send(&proto::encode_request(req), None) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Ok(None),
        Err(e) => return Err(ioerr(e)),
    }
    loop {
        let Some(line) = conn.read_line(deadline).map_err(ioerr)? else {
            if conn.is_eof() {
                return Ok(None);
            }
            return Err(LifecycleError::Timeout {
                name: name.to_string(),
                what: "an answer from the monitor",
                secs: QUERY_TIMEOUT.as_secs(),
            });
        };
        let r = proto::decode_response(&line).map_err(|detail| LifecycleError::Protocol {
            op,
            name: name.to_string(),
            detail,
        })?;
        if !r.notify {
            return Ok(Some(r));
        }
    }
}

/// State and pids from the monitor, without leftover cleanup. `None` = no monitor.
pub fn query(lxcpath: &Path, name: &str) -> Result<Option<Info>, LifecycleError> {
    let Some(mut conn) = connect(lxcpath, name)? else {
        return Ok(None);
    };
    let r = request(
        &mut conn,
        name,
        &Request::Info,
        Some(Instant::now() + QUERY_TIMEOUT),
    )?;
    Ok(r.and_then(|r| {
        Some(Info {
            state: r.state?,
            init_pid: r.init_pid,
            monitor_pid: r.monitor_pid,
        })
    }))
}

/// State, init pid and monitor pid. No monitor answering means STOPPED, and then leftovers of a
/// killed monitor (its state record) are cleaned up on the way if no other command holds the
/// lock.
pub fn info_in(rundir: &RunDir, lxcpath: &Path, name: &str, host: &mut dyn HostSetup) -> Info {
    match query(lxcpath, name) {
        Ok(Some(i)) => i,
        Ok(None) | Err(_) => {
            // Only a dead monitor's state record means leftovers: without one (a container
            // that stopped cleanly, the common case when listing) there is no lock to take.
            let leftovers = rundir.record_path(lxcpath, name).exists();
            if leftovers {
                if let Ok(Some(_lock)) =
                    ContainerLock::try_acquire(&rundir.lock_path(lxcpath, name))
                {
                    for e in cleanup_leftovers(rundir, lxcpath, name, host) {
                        tracing::warn!("leftover cleanup of {name}: {e}");
                    }
                }
            }
            Info {
                state: State::Stopped,
                init_pid: None,
                monitor_pid: None,
            }
        }
    }
}

/// [`info_in`] with the default run directory and host setup.
pub fn info(lxcpath: &Path, name: &str) -> Info {
    info_in(
        &RunDir::default(),
        lxcpath,
        name,
        crate::host::default_host_setup().as_mut(),
    )
}

/// The container's state (STOPPED when no monitor answers; leftovers cleaned on the way).
pub fn state(lxcpath: &Path, name: &str) -> State {
    info(lxcpath, name).state
}

/// Undo what a dead monitor left (per its state record): kill a surviving init, tear down the
/// recorded host objects, remove the pidfile and the record. Call with the lock held and no
/// monitor answering. Returns the teardown errors.
pub fn cleanup_leftovers(
    rundir: &RunDir,
    lxcpath: &Path,
    name: &str,
    host: &mut dyn HostSetup,
) -> Vec<HostError> {
    let path = rundir.record_path(lxcpath, name);
    let rec = match record::read(&path) {
        Ok(Some(r)) => r,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![HostError::Io {
                op: "read state record",
                path,
                source: e,
            }]
        }
    };
    if record::same_process(rec.monitor_pid, rec.monitor_start) {
        // A live monitor that does not listen is still starting or just exiting: not ours.
        return Vec::new();
    }
    tracing::info!("cleaning up after the dead monitor of {name}");
    // A frozen container only dies once thawed.
    crate::cgroups::thaw_recorded(&rec.items);
    if let (Some(pid), Some(start)) = (rec.init_pid, rec.init_start) {
        kill_if_same(pid, start);
    }
    let errors = host.teardown(&rec.items);
    if let Some(p) = &rec.pidfile {
        let _ = std::fs::remove_file(p);
    }
    record::remove(&path);
    crate::cgroups::prune_monitor_cgroup(None);
    errors
}

/// SIGKILL `pid` if it is still the process that started at `start`, and wait (bounded) for it
/// to be gone.
fn kill_if_same(pid: i32, start: u64) {
    if !record::same_process(pid, start) {
        return;
    }
    // SAFETY: pidfd_open returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return;
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(pidfd as i32) };
    if !record::same_process(pid, start) {
        return;
    }
    // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    // A pidfd polls readable when the process exits.
    let _ = proto::wait_fd(pidfd.as_raw_fd(), libc::POLLIN, Some(5000));
}

/// Start a container: take the lock, refuse if running, clean leftovers, spawn the monitor,
/// wait for its result (RUNNING, or the error that aborted the start).
pub fn start(spec: &StartSpec, opts: &StartOptions) -> Result<Started, LifecycleError> {
    let name = spec.name.as_str();
    let lxcpath = spec.lxcpath.as_path();
    let _lock = lock(&opts.rundir, lxcpath, name)?;
    if query(lxcpath, name)?.is_some() {
        return Err(LifecycleError::AlreadyRunning {
            name: name.to_string(),
        });
    }
    for e in cleanup_leftovers(
        &opts.rundir,
        lxcpath,
        name,
        crate::host::default_host_setup().as_mut(),
    ) {
        tracing::warn!("leftover cleanup of {name}: {e}");
    }
    tracing::debug!("{name}: spawning the monitor");
    let init = MonitorInit {
        v: proto::VERSION,
        spec: spec.clone(),
        rundir: opts.rundir.root().to_path_buf(),
        log_file: opts.log_file.clone(),
        log_level: opts.log_level.clone(),
        defines: opts.defines.clone(),
        pidfile: opts.pidfile.clone(),
        attach_console: opts.attach_console,
        netns: !spec.share_host_net,
    };
    let ioerr = |op, e| LifecycleError::Monitor {
        op,
        name: name.to_string(),
        source: e,
    };
    let mut conn = spawn_monitor(spec, opts, init)?;
    tracing::debug!("{name}: monitor spawned");
    let line = conn
        .read_line(None)
        .map_err(|e| ioerr("read the start result", e))?
        .ok_or_else(|| LifecycleError::StartFailed {
            name: name.to_string(),
            message: "the monitor exited without reporting a result (see the log, -o/-l)".into(),
        })?;
    tracing::debug!("{name}: start result received");
    let r = proto::decode_response(&line).map_err(|detail| LifecycleError::Protocol {
        op: "start",
        name: name.to_string(),
        detail,
    })?;
    if !r.ok {
        // The monitor cleaned up before answering; its exit closes the connection.
        let _ = conn.wait_eof(Some(Instant::now() + QUERY_TIMEOUT));
        return Err(LifecycleError::StartFailed {
            name: name.to_string(),
            message: r.error.unwrap_or_else(|| "unknown error".into()),
        });
    }
    let monitor_pid = r.monitor_pid.unwrap_or(0);
    if let Some(p) = &opts.pidfile {
        record::write_atomic(p, format!("{monitor_pid}\n").as_bytes()).map_err(|e| {
            LifecycleError::Io {
                op: "write pidfile",
                path: p.clone(),
                source: e,
            }
        })?;
    }
    let mut started = Started {
        monitor_pid,
        init_pid: r.init_pid.unwrap_or(0),
        console: None,
        conn: None,
    };
    if !opts.attach_console {
        return Ok(started);
    }
    match (r.tty, conn.take_fd()) {
        (Some(tty), Some(master)) => {
            let replay = conn
                .read_raw(r.replay_len.unwrap_or(0))
                .map_err(|e| ioerr("read the console replay", e))?;
            started.console = Some(ConsoleSession {
                conn,
                master,
                tty,
                replay,
            });
        }
        _ => started.conn = Some(conn),
    }
    Ok(started)
}

/// Spawn the monitor detached (double fork, setsid, stdio on /dev/null, cwd /) with the title
/// `[lxrs monitor] <lxcpath> <name>` and hand it `init`; returns our end of the start socket.
/// A fork of this process when it can be one (`StartOptions::fork_monitor`): the exec, the
/// start-up of a new image and the start request's trip through the socket cost about 1 ms.
fn spawn_monitor(
    spec: &StartSpec,
    opts: &StartOptions,
    init: MonitorInit,
) -> Result<Conn, LifecycleError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let name = spec.name.as_str();
    let mon = |op, e: std::io::Error| LifecycleError::Monitor {
        op,
        name: name.to_string(),
        source: e,
    };
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| mon("socketpair", e.into()))?;
    let title = monitor::title(&spec.lxcpath, name);
    // On v2 the monitor is born in its shared cgroup (see `monitor_birth_cgroup`).
    let birth = crate::cgroups::monitor_birth_cgroup();
    let layout =
        monitor::ForkLayout::current().filter(|l| opts.fork_monitor && l.can_fork_monitor(&title));
    let netns = init.netns;
    let conn = Conn::new(ours);
    let mut first = None;
    if let Some(layout) = layout {
        first = fork_monitor(theirs, birth.as_ref(), init, &title, layout)
            .map_err(|e| mon("fork", e))?;
    } else {
        exec_monitor(opts, theirs, birth.as_ref(), &title)?;
        conn.send(&proto::encode(&init), None)
            .map_err(|e| mon("send the start request to the monitor", e))?;
    }
    if netns {
        send_netns_ahead(&conn);
    }
    if let Some(pid) = first {
        reap_first_child(pid).map_err(|e| mon("fork", e))?;
    }
    Ok(conn)
}

/// The monitor as a fork of this single-threaded process. The first child makes a session
/// and forks the monitor (not a session leader: it can never get a controlling terminal;
/// re-parented away from us), which puts its stdio on `/dev/null`, goes to `/`, closes every
/// descriptor but `theirs` and runs [`monitor::run_forked`].
///
/// The first child is sent to another CPU ([`crate::syscall::CpuNudge`]; the monitor puts the
/// starter's affinity back): the monitor then sets up while the starter makes the network
/// namespace, instead of after it on the same CPU. Returns the first child to reap with
/// [`reap_first_child`] once the namespace is sent, or `None` when it is gone already (no
/// other CPU: waited for here, so that the namespace does not delay it on our CPU).
fn fork_monitor(
    theirs: OwnedFd,
    birth: Option<&OwnedFd>,
    init: MonitorInit,
    title: &str,
    layout: monitor::ForkLayout,
) -> std::io::Result<Option<libc::pid_t>> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let nudge = crate::syscall::CpuNudge::plan();
    // Opened here: the forked side opens nothing before it is the monitor.
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let first = match birth {
        Some(dir) => crate::syscall::clone_into_cgroup(0, dir.as_raw_fd()),
        None => Err(std::io::ErrorKind::Unsupported.into()),
    }
    // SAFETY: fork of a single-threaded process (`ForkLayout::can_fork_monitor`); the child
    // never returns into our frames (it ends in `_exit`).
    .or_else(|_| match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        pid => Ok(pid as libc::c_long),
    })?;
    if first != 0 {
        drop(theirs);
        let first = first as libc::pid_t;
        if nudge.is_some_and(|n| n.push(first)) {
            return Ok(Some(first));
        }
        // Waiting here (a fraction of the first child's short life) keeps the network
        // namespace the starter makes next (half a millisecond of kernel work) from delaying
        // the first child on our CPU; measured, this order starts containers 0.5 ms sooner
        // than the first child making the namespace itself.
        reap_first_child(first)?;
        return Ok(None);
    }
    // SAFETY: the first child, single-threaded: setsid and fork; `_exit` runs no destructors
    // and no atexit handlers of the starter.
    unsafe {
        if libc::setsid() < 0 {
            libc::_exit(1);
        }
        match libc::fork() {
            -1 => libc::_exit(1),
            0 => {}
            _ => libc::_exit(0),
        }
    }
    // The monitor. Nudged or not (forked before its parent was), its affinity is the
    // starter's again.
    if let Some(n) = nudge {
        let _ = n.restore();
    }
    let mut keep = theirs.into_raw_fd();
    let null = devnull.into_raw_fd();
    // SAFETY: descriptor juggling on our own descriptors: `keep` moved above stdio first,
    // /dev/null onto 0-2, then every other descriptor closed (their owners are the starter's
    // frames, which never run again in this process). Every call is checked or harmless if
    // it fails.
    unsafe {
        if keep < 3 {
            keep = libc::fcntl(keep, libc::F_DUPFD_CLOEXEC, 3);
            if keep < 0 {
                libc::_exit(1);
            }
        }
        for target in 0..3 {
            if libc::dup2(null, target) < 0 {
                libc::_exit(1);
            }
        }
        libc::chdir(c"/".as_ptr());
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
    // Caught signals back to their default, as an exec would (which ones: one read of
    // /proc/self/status, not a query per signal).
    if let Some(caught) = crate::syscall::own_signals(&["SigCgt:"]) {
        crate::syscall::set_default_dispositions(caught);
    }
    // SAFETY: `keep` is our end of the start socket, open, owned by nothing else now.
    let fd = unsafe { OwnedFd::from_raw_fd(keep) };
    monitor::run_forked(init, fd, title, &layout)
}

/// Wait for the monitor's first child, which exits once it has forked the monitor.
fn reap_first_child(first: libc::pid_t) -> std::io::Result<()> {
    let mut status = 0;
    // SAFETY: waitpid on our own child, status written to a local.
    while unsafe { libc::waitpid(first, &mut status, 0) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(std::io::Error::other(
            "its first child failed to start a session and fork it",
        ));
    }
    Ok(())
}

/// Make the container's network namespace and send it to the monitor on `conn`
/// ([`proto::NETNS_AHEAD`], or [`proto::NO_NETNS_AHEAD`] when it cannot be made: the monitor's
/// clone makes one then). A new network namespace costs the kernel about 0.5 ms, most of the
/// clone of init: made while the monitor sets up, it is off the start path. A monitor that is
/// gone already said why (the start result, read next).
fn send_netns_ahead(conn: &Conn) {
    let netns = lxrs_netns::NetNs::create()
        .inspect_err(|e| tracing::debug!("no network namespace made ahead: {e}"))
        .ok();
    let line = match netns {
        Some(_) => proto::NETNS_AHEAD,
        None => proto::NO_NETNS_AHEAD,
    };
    let _ = conn.send(&[line, b"\n"].concat(), netns.as_ref().map(|n| n.as_fd()));
}

/// The monitor as `monitor_exe` executed (this process may have threads): double fork in the
/// `pre_exec` hook, which makes only async-signal-safe calls.
fn exec_monitor(
    opts: &StartOptions,
    theirs: OwnedFd,
    birth: Option<&OwnedFd>,
    title: &str,
) -> Result<(), LifecycleError> {
    use std::os::unix::process::CommandExt;
    let their_fd = theirs.as_raw_fd();
    let birth_fd = birth.map_or(-1, |f| f.as_raw_fd());
    let mut cmd = std::process::Command::new(&opts.monitor_exe);
    cmd.arg0(title)
        .env(monitor::FD_ENV, their_fd.to_string())
        .env(paths::RUNDIR_ENV, opts.rundir.root())
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (close_range, fcntl, setsid, clone3/fork, _exit); it allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Nothing the starter inherited (a caller's pty, a jobserver pipe, ...) may leak
            // into the long-lived monitor: mark everything close-on-exec but our socket.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if libc::fcntl(their_fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Second fork: the monitor is not a session leader (can never get a controlling
            // terminal) and is re-parented away from the starter.
            let pid = match birth_fd {
                -1 => libc::fork() as libc::c_long,
                fd => crate::syscall::clone_into_cgroup(0, fd)
                    .unwrap_or_else(|_| libc::fork() as libc::c_long),
            };
            match pid {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = cmd.spawn().map_err(|e| LifecycleError::Io {
        op: "spawn the monitor",
        path: opts.monitor_exe.clone(),
        source: e,
    })?;
    let _ = child.wait();
    drop(theirs);
    Ok(())
}

/// What `stop` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Halt signal, wait, then (unless `nokill`) kill.
    Halt,
    /// Kill at once.
    Kill,
    /// Reboot signal, wait for RUNNING again.
    Reboot,
}

#[derive(Debug, Clone)]
pub struct StopOptions {
    pub rundir: RunDir,
    pub mode: StopMode,
    /// How long to wait: `None` forever, `Some(0)` not at all.
    pub timeout: Option<Duration>,
    /// Halt: do not kill on timeout (fail instead).
    pub nokill: bool,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The container stopped and its monitor cleaned up.
    Stopped,
    /// Halt timed out and the container was killed.
    Killed,
    /// The signal was sent; not waited for (`-W` / `-t 0`).
    Signalled,
    /// The container rebooted and is RUNNING again.
    Rebooted,
}

/// Stop, kill or reboot a container. `NotRunning` when no monitor answers.
pub fn stop(lxcpath: &Path, name: &str, opts: &StopOptions) -> Result<StopOutcome, LifecycleError> {
    let _lock = lock(&opts.rundir, lxcpath, name)?;
    let monitor = record::read(&opts.rundir.record_path(lxcpath, name))
        .ok()
        .flatten()
        .map(|r| r.monitor_pid);
    let outcome = stop_locked(lxcpath, name, opts);
    if matches!(outcome, Ok(StopOutcome::Stopped | StopOutcome::Killed)) {
        // The last monitor out takes the shared monitor cgroup with it.
        crate::cgroups::prune_monitor_cgroup(monitor);
    }
    outcome
}

fn stop_locked(
    lxcpath: &Path,
    name: &str,
    opts: &StopOptions,
) -> Result<StopOutcome, LifecycleError> {
    let not_running = || LifecycleError::NotRunning {
        name: name.to_string(),
    };
    let Some(mut conn) = connect(lxcpath, name)? else {
        cleanup_leftovers(
            &opts.rundir,
            lxcpath,
            name,
            crate::host::default_host_setup().as_mut(),
        );
        return Err(not_running());
    };
    let qd = || Some(Instant::now() + QUERY_TIMEOUT);
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let ioerr = |e| LifecycleError::Monitor {
        op: "wait for the container to stop",
        name: name.to_string(),
        source: e,
    };
    let signal = |conn: &mut Conn, kind| -> Result<bool, LifecycleError> {
        match request(conn, name, &Request::Stop { kind }, qd())? {
            None => Ok(false),
            Some(r) if r.ok => Ok(true),
            Some(r) => Err(LifecycleError::Refused {
                op: "stop",
                name: name.to_string(),
                message: r.error.unwrap_or_default(),
            }),
        }
    };
    let timeout_err = |what| LifecycleError::Timeout {
        name: name.to_string(),
        what,
        secs: opts.timeout.map(|t| t.as_secs()).unwrap_or(0),
    };
    match opts.mode {
        StopMode::Kill => {
            if !signal(&mut conn, StopKind::Kill)? {
                return Ok(StopOutcome::Stopped);
            }
            if conn
                .wait_eof(Some(Instant::now() + KILL_TIMEOUT))
                .map_err(ioerr)?
            {
                Ok(StopOutcome::Stopped)
            } else {
                Err(LifecycleError::Timeout {
                    name: name.to_string(),
                    what: "stop after kill",
                    secs: KILL_TIMEOUT.as_secs(),
                })
            }
        }
        StopMode::Halt => {
            if !signal(&mut conn, StopKind::Halt)? {
                return Ok(StopOutcome::Stopped);
            }
            if opts.timeout == Some(Duration::ZERO) {
                return Ok(StopOutcome::Signalled);
            }
            if conn.wait_eof(deadline).map_err(ioerr)? {
                return Ok(StopOutcome::Stopped);
            }
            if opts.nokill {
                return Err(timeout_err("a clean shutdown"));
            }
            tracing::info!("{name}: no clean shutdown within the timeout, killing");
            if !signal(&mut conn, StopKind::Kill)? {
                return Ok(StopOutcome::Killed);
            }
            if conn
                .wait_eof(Some(Instant::now() + KILL_TIMEOUT))
                .map_err(ioerr)?
            {
                Ok(StopOutcome::Killed)
            } else {
                Err(LifecycleError::Timeout {
                    name: name.to_string(),
                    what: "stop after kill",
                    secs: KILL_TIMEOUT.as_secs(),
                })
            }
        }
        StopMode::Reboot => {
            if request(&mut conn, name, &Request::Watch, qd())?.is_none() {
                return Err(not_running());
            }
            if !signal(&mut conn, StopKind::Reboot)? {
                return Err(not_running());
            }
            if opts.timeout == Some(Duration::ZERO) {
                return Ok(StopOutcome::Signalled);
            }
            let mut went_down = false;
            loop {
                let Some(line) = conn.read_line(deadline).map_err(ioerr)? else {
                    if conn.is_eof() {
                        return Err(LifecycleError::Invalid {
                            name: name.to_string(),
                            message: "the container stopped instead of rebooting".into(),
                        });
                    }
                    return Err(timeout_err("a reboot"));
                };
                let Ok(r) = proto::decode_response(&line) else {
                    continue;
                };
                match (r.notify, r.state) {
                    (true, Some(State::Stopping | State::Starting)) => went_down = true,
                    (true, Some(State::Running)) if went_down => return Ok(StopOutcome::Rebooted),
                    _ => {}
                }
            }
        }
    }
}

/// Ask the monitor for a console: `Some(0)` the console, `Some(n)` tty n, `None` the first free
/// tty. `NotRunning` when no monitor answers; `Refused` with the monitor's reason (busy, no such
/// tty).
pub fn console(
    lxcpath: &Path,
    name: &str,
    tty: Option<u32>,
) -> Result<ConsoleSession, LifecycleError> {
    let Some(mut conn) = connect(lxcpath, name)? else {
        return Err(LifecycleError::NotRunning {
            name: name.to_string(),
        });
    };
    let r = request(
        &mut conn,
        name,
        &Request::Console { tty },
        Some(Instant::now() + QUERY_TIMEOUT),
    )?
    .ok_or_else(|| LifecycleError::NotRunning {
        name: name.to_string(),
    })?;
    if !r.ok {
        return Err(LifecycleError::Refused {
            op: "console",
            name: name.to_string(),
            message: r.error.unwrap_or_default(),
        });
    }
    let master = conn.take_fd().ok_or_else(|| LifecycleError::Protocol {
        op: "console",
        name: name.to_string(),
        detail: "no pty descriptor in the answer".into(),
    })?;
    let replay = conn
        .read_raw(r.replay_len.unwrap_or(0))
        .map_err(|e| LifecycleError::Monitor {
            op: "read the console replay",
            name: name.to_string(),
            source: e,
        })?;
    Ok(ConsoleSession {
        conn,
        master,
        tty: r.tty.unwrap_or(0),
        replay,
    })
}
