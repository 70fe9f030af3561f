//! `lxrs console`: attach to the container console or one of its ttys (LXC's `lxc-console`).

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_runtime::console::{self, SessionEnd};
use lxrs_runtime::error::LifecycleError;
use lxrs_runtime::lifecycle;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// tty number (0 = the console); default: the first free tty.
    #[arg(short = 't', long = "tty")]
    pub tty: Option<u32>,
    /// Escape prefix letter: `-e b` or `-e ^b` for Ctrl-b (default Ctrl-a).
    #[arg(short = 'e', long = "escape")]
    pub escape: Option<String>,
    /// Container name (same as -n).
    #[arg(value_name = "NAME")]
    pub pos_name: Option<String>,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let name = match (&a.name, &a.pos_name) {
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => bail!("-n NAME is required"),
    };
    let escape = match &a.escape {
        Some(e) => console::parse_escape(e).with_context(|| {
            format!("invalid escape {e:?}: expected a letter, e.g. -e b or -e ^b")
        })?,
        None => console::DEFAULT_ESCAPE,
    };
    let session = match lifecycle::console(&g.lxcpath(), &name, a.tty) {
        Ok(s) => s,
        Err(e @ LifecycleError::NotRunning { .. }) => {
            eprintln!("lxrs: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let banner = (!g.quiet).then(|| console::banner(session.tty, escape));
    match console::run_session(session, Some(escape), 0, 1, banner.as_deref()).context("console")? {
        SessionEnd::Detached => {
            if !g.quiet {
                eprintln!();
            }
        }
        SessionEnd::Stopped => {
            if !g.quiet {
                eprintln!("\r\nlxrs: container {name} stopped\r");
            }
        }
    }
    Ok(0)
}
