//! `lxrs start`: foreground by default (the terminal becomes the container console; Ctrl-a q
//! detaches and the container keeps running), `-d` to daemonize.

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_runtime::console::{self, SessionEnd};
use lxrs_runtime::error::LifecycleError;
use lxrs_runtime::lifecycle::{self, StartOptions};
use lxrs_runtime::spec::StartSpec;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Daemonize: return once init runs.
    #[arg(short = 'd', long = "daemon", conflicts_with = "foreground")]
    pub daemon: bool,
    /// Stay in the foreground with the console (the default).
    #[arg(short = 'F', long = "foreground")]
    pub foreground: bool,
    /// Write the monitor's pid to this file.
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Use this configuration file instead of the container's.
    #[arg(short = 'f', long = "rcfile")]
    pub rcfile: Option<PathBuf>,
    /// Define a configuration KEY=VAL (repeatable).
    #[arg(short = 's', long = "define", value_name = "KEY=VAL")]
    pub defines: Vec<String>,
    /// Start from a resolved StartSpec in JSON (development and tests).
    #[arg(long = "spec-json", hide = true)]
    pub spec_json: Option<PathBuf>,
    /// Container name (same as -n).
    #[arg(value_name = "NAME")]
    pub pos_name: Option<String>,
    /// Command to run as init instead of the configured one.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let name = match (&a.name, &a.pos_name) {
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (Some(n), Some(p)) if n == p => n.clone(),
        (Some(_), Some(_)) => bail!("give the container name once (-n NAME or NAME)"),
        (None, None) => bail!("-n NAME is required"),
    };
    let mut spec = match &a.spec_json {
        Some(p) => {
            let data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            let mut s: StartSpec = serde_json::from_slice(&data)
                .with_context(|| format!("{}: not a valid start spec", p.display()))?;
            s.name = name.clone();
            s.lxcpath = g.lxcpath();
            s
        }
        None => crate::spec_build::build(g, &name, &a)?,
    };
    if !a.command.is_empty() {
        spec.init.argv = a.command.clone();
    }
    let pidfile = match &a.pidfile {
        Some(p) if p.is_relative() => Some(std::env::current_dir()?.join(p)),
        other => other.clone(),
    };
    let opts = StartOptions {
        log_file: g.logfile.as_ref().map(|p| {
            if p.is_relative() {
                std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.clone())
            } else {
                p.clone()
            }
        }),
        log_level: g.logpriority.clone(),
        defines: a.defines.clone(),
        pidfile,
        attach_console: !a.daemon,
        ..StartOptions::default()
    };
    let started = match lifecycle::start(&spec, &opts) {
        Ok(s) => s,
        Err(e @ LifecycleError::AlreadyRunning { .. }) => {
            // LXC: message, exit 0 (starting a running container is not a failure).
            if !g.quiet {
                eprintln!("lxrs: {e}");
            }
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    if a.daemon {
        return Ok(0);
    }
    if let Some(session) = started.console {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(0) } == 1;
        let hint = format!(
            "lxrs: {name} is running; type <Ctrl+a q> to detach (the container keeps running)\n"
        );
        let banner = (tty && !g.quiet).then_some(hint.as_str());
        match console::run_session(session, Some(console::DEFAULT_ESCAPE), 0, 1, banner)
            .context("console")?
        {
            SessionEnd::Detached => {
                if !g.quiet {
                    eprintln!("\r\nlxrs: detached; container {name} still running\r");
                }
            }
            SessionEnd::Stopped => {}
        }
    } else if let Some(mut conn) = started.conn {
        conn.wait_eof(None)
            .context("wait for the container to stop")?;
    }
    Ok(0)
}
