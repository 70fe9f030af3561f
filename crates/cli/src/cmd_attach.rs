//! `lxrs attach`: run a command (default: the user's login shell) inside a running container.

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_runtime::attach::{
    self, parse_arch, parse_elevated, parse_namespaces, AttachOptions, AttachTarget, Elevated,
    EnvPolicy,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name", required_unless_present = "pid")]
    pub name: Option<String>,
    /// Attach to this host process's namespaces and cgroups instead of a named container
    /// (for tests and debugging).
    #[arg(long = "pid", hide = true, conflicts_with = "name")]
    pub pid: Option<i32>,
    /// Skip privilege reductions: LIST is `|`-separated from CGROUP, CAP, LSM (no list: all).
    #[arg(
        short = 'e',
        long = "elevated-privileges",
        value_name = "LIST",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    pub elevated: Option<String>,
    /// Enter only these namespaces, `|`-separated (MOUNT PID UTSNAME IPC USER NETWORK CGROUP
    /// TIME, or mnt pid uts ipc user net cgroup time). Implies -e.
    #[arg(short = 's', long = "namespaces", value_name = "LIST")]
    pub namespaces: Option<String>,
    /// Remount /proc and /sys (in a private mount namespace) when MOUNT is not entered.
    #[arg(short = 'R', long = "remount-sys-proc")]
    pub remount_sys_proc: bool,
    /// Start from an empty environment (plus --keep-var variables and a default PATH).
    #[arg(long = "clear-env", conflicts_with = "keep_env")]
    pub clear_env: bool,
    /// Keep the caller's environment (the default).
    #[arg(long = "keep-env")]
    pub keep_env: bool,
    /// With --clear-env, keep this variable (repeatable).
    #[arg(long = "keep-var", value_name = "VAR")]
    pub keep_var: Vec<String>,
    /// Set VAR=VALUE in the command's environment, after everything else (repeatable; a bare
    /// VAR copies the caller's value).
    #[arg(short = 'v', long = "set-var", value_name = "VAR=VALUE")]
    pub set_var: Vec<OsString>,
    /// Run as this uid inside the container (default 0).
    #[arg(short = 'u', long = "uid")]
    pub uid: Option<u32>,
    /// Run as this gid inside the container (default 0).
    #[arg(short = 'g', long = "gid")]
    pub gid: Option<u32>,
    /// Append the pseudo-terminal's output to FILE.
    #[arg(short = 'L', long = "pty-log", value_name = "FILE")]
    pub pty_log: Option<PathBuf>,
    /// Personality for the command (lxc.arch names: x86_64, i686, ...); default: the container's.
    #[arg(short = 'a', long = "arch")]
    pub arch: Option<String>,
    /// Read lxc.environment and lxc.no_new_privs from this file instead of the container's config.
    #[arg(short = 'f', long = "rcfile")]
    pub rcfile: Option<PathBuf>,
    /// Command to run (default: the user's login shell in the container).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let opts = options(&a)?;
    let mut target = match (a.pid, &a.name) {
        (Some(pid), _) => AttachTarget::new(format!("pid {pid}"), pid),
        (None, Some(name)) => find_target(g, name)?,
        (None, None) => bail!("-n NAME is required"),
    };
    let config = match (&a.rcfile, &a.name) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(name)) if a.pid.is_none() => Some(g.lxcpath().join(name).join("config")),
        _ => None,
    };
    if let Some(path) = config {
        apply_config(&mut target, &path, a.rcfile.is_some())?;
    }
    match attach::attach(&target, &opts) {
        Ok(code) => Ok(code),
        // The command could not be exec'd: 126/127 as a shell would, with the message.
        Err(e @ attach::AttachError::Exec { .. }) => {
            eprintln!("lxrs: {e}");
            Ok(e.exit_code())
        }
        Err(e) => Err(e.into()),
    }
}

fn options(a: &Args) -> Result<AttachOptions> {
    let mut elevated = match &a.elevated {
        None => Elevated::NONE,
        Some(list) => parse_elevated(Some(list))?,
    };
    let namespaces = match &a.namespaces {
        Some(list) => {
            // As in LXC: -s implies -e (all).
            elevated = Elevated::ALL;
            Some(parse_namespaces(list)?)
        }
        None => None,
    };
    Ok(AttachOptions {
        elevated,
        namespaces,
        remount_sys_proc: a.remount_sys_proc,
        env_policy: if a.clear_env {
            EnvPolicy::Clear
        } else {
            EnvPolicy::Keep
        },
        keep_vars: a.keep_var.clone(),
        set_vars: a.set_var.clone(),
        uid: a.uid,
        gid: a.gid,
        pty_log: a.pty_log.clone(),
        personality: a.arch.as_deref().map(parse_arch).transpose()?,
        command: a.command.clone(),
        ..Default::default()
    })
}

/// The running container's init.
///
/// TODO(lead): this is the one place attach talks to the monitor. It uses
/// `lxrs_runtime::lifecycle::query` (the `Info` request) for the state and init pid; when the
/// monitor can hand out a pidfd of init, set `AttachTarget::pidfd` here (attach then refuses a
/// recycled pid).
fn find_target(g: &Globals, name: &str) -> Result<AttachTarget> {
    use lxrs_runtime::state::State;
    let info = lxrs_runtime::lifecycle::query(&g.lxcpath(), name)
        .with_context(|| format!("ask the monitor of {name:?}"))?;
    match info {
        Some(i) if i.state == State::Frozen || i.state == State::Freezing => {
            bail!("container {name:?} is frozen: unfreeze it first")
        }
        Some(lxrs_runtime::lifecycle::Info {
            init_pid: Some(pid),
            state: State::Running | State::Thawed | State::Starting,
            ..
        }) => Ok(AttachTarget::new(name, pid)),
        _ => bail!("container {name:?} is not running"),
    }
}

/// `lxc.environment`, `lxc.environment.runtime` (an empty value resets the list) and
/// `lxc.no_new_privs` from the container's config. A missing config is only an error when it
/// was named with `-f`.
fn apply_config(t: &mut AttachTarget, path: &Path, explicit: bool) -> Result<()> {
    if !explicit && !path.exists() {
        tracing::debug!("no config at {}; no lxc.environment", path.display());
        return Ok(());
    }
    let doc = lxrs_config::document::Document::load(path)
        .with_context(|| format!("read {}", path.display()))?;
    let mut env = Vec::new();
    for e in doc.entries() {
        if e.key == "lxc.environment" || e.key == "lxc.environment.runtime" {
            if e.value.trim().is_empty() {
                env.clear();
            } else {
                env.push(e.value.trim().to_string());
            }
        }
    }
    t.environment = env;
    t.no_new_privs = matches!(doc.get("lxc.no_new_privs").map(str::trim), Some("1"));
    Ok(())
}
