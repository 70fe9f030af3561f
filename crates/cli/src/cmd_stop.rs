//! `lxrs stop`: halt (wait, then kill), kill, or reboot a container (LXC's `lxc-stop`).

use crate::globals::Globals;
use anyhow::{bail, Result};
use lxrs_runtime::error::LifecycleError;
use lxrs_runtime::lifecycle::{self, StopMode, StopOptions, StopOutcome};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Reboot the container (reboot signal, wait for RUNNING again).
    #[arg(short = 'r', long = "reboot")]
    pub reboot: bool,
    /// Do not wait (same as -t 0).
    #[arg(short = 'W', long = "nowait")]
    pub nowait: bool,
    /// Seconds to wait for a clean stop (default 60; -1 waits forever; 0 does not wait).
    #[arg(short = 't', long = "timeout", allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    /// Kill at once (lxc.signal.stop, SIGKILL).
    #[arg(short = 'k', long = "kill")]
    pub kill: bool,
    /// On timeout, fail instead of killing.
    #[arg(long = "nokill")]
    pub nokill: bool,
    /// Accepted for LXC compatibility (only with -k).
    #[arg(long = "nolock")]
    pub nolock: bool,
    /// Container name (same as -n).
    #[arg(value_name = "NAME")]
    pub pos_name: Option<String>,
}

/// LXC's option checks (`lxc:src/lxc/tools/lxc_stop.c`): the stop mode and the timeout
/// (`None` = forever).
pub fn resolve(a: &Args) -> Result<(StopMode, Option<Duration>)> {
    let mut timeout = a.timeout.unwrap_or(if a.kill { 0 } else { 60 });
    if a.nowait {
        timeout = 0;
    }
    if !a.kill && timeout < -1 {
        bail!("invalid timeout {timeout} (seconds, -1 = forever)");
    }
    if a.kill && a.nokill {
        bail!("-k can't be used with --nokill");
    }
    if a.kill && a.reboot {
        bail!("-k can't be used with -r");
    }
    if a.kill && timeout != 0 {
        bail!("-k doesn't allow timeouts");
    }
    if a.nolock && !a.kill {
        bail!("--nolock may only be used with -k");
    }
    let mode = if a.kill {
        StopMode::Kill
    } else if a.reboot {
        StopMode::Reboot
    } else {
        StopMode::Halt
    };
    let t = if timeout < 0 {
        None
    } else {
        Some(Duration::from_secs(timeout as u64))
    };
    Ok((mode, t))
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let name = match (&a.name, &a.pos_name) {
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => bail!("-n NAME is required"),
    };
    let (mode, timeout) = resolve(&a)?;
    let opts = StopOptions {
        rundir: Default::default(),
        mode,
        timeout,
        nokill: a.nokill,
    };
    match lifecycle::stop(&g.lxcpath(), &name, &opts) {
        Ok(StopOutcome::Killed) => {
            if !g.quiet {
                eprintln!("lxrs: {name} did not stop cleanly in time and was killed");
            }
            Ok(0)
        }
        Ok(_) => Ok(0),
        Err(e @ LifecycleError::NotRunning { .. }) => {
            if !g.quiet {
                eprintln!("lxrs: {e}");
            }
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn parse(args: &[&str]) -> Result<(StopMode, Option<Duration>)> {
        let mut v = vec!["stop"];
        v.extend_from_slice(args);
        resolve(&T::try_parse_from(v)?.a)
    }

    #[test]
    fn option_rules_follow_lxc() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(parse(&["-n", "c"]).unwrap(), (StopMode::Halt, s(60)));
        assert_eq!(
            parse(&["-n", "c", "-t", "5"]).unwrap(),
            (StopMode::Halt, s(5))
        );
        assert_eq!(
            parse(&["-n", "c", "-t", "-1"]).unwrap(),
            (StopMode::Halt, None)
        );
        assert_eq!(parse(&["-n", "c", "-W"]).unwrap(), (StopMode::Halt, s(0)));
        assert_eq!(parse(&["-n", "c", "-k"]).unwrap(), (StopMode::Kill, s(0)));
        assert_eq!(
            parse(&["-n", "c", "-k", "-W"]).unwrap(),
            (StopMode::Kill, s(0))
        );
        assert_eq!(
            parse(&["-n", "c", "-k", "--nolock"]).unwrap(),
            (StopMode::Kill, s(0))
        );
        assert_eq!(
            parse(&["-n", "c", "-r"]).unwrap(),
            (StopMode::Reboot, s(60))
        );
        for bad in [
            &["-n", "c", "-k", "-r"][..],
            &["-n", "c", "-k", "--nokill"],
            &["-n", "c", "-k", "-t", "5"],
            &["-n", "c", "--nolock"],
            &["-n", "c", "-t", "-2"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }
}
