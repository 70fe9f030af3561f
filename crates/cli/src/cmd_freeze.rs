//! `lxrs freeze` / `lxrs unfreeze` (LXC's `lxc-freeze` / `lxc-unfreeze`, reference §2.6).
//!
//! The container's monitor does the work (it owns the freezer state it reports): freezing a
//! FROZEN container is a no-op success, unfreezing acts only when FROZEN or FREEZING. Any
//! failure, including a container that is not running, prints `Failed to (un)freeze NAME`
//! with the reason and exits 1.

use crate::globals::Globals;
use anyhow::{bail, Result};
use lxrs_runtime::cgroups::{self, CgroupRequest};

#[derive(clap::Args, Debug)]
pub struct FreezeArgs {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Container name (same as -n).
    #[arg(value_name = "NAME")]
    pub pos_name: Option<String>,
}

impl FreezeArgs {
    fn name(&self) -> Result<String> {
        match (&self.name, &self.pos_name) {
            (Some(n), None) | (None, Some(n)) => Ok(n.clone()),
            (Some(n), Some(p)) if n == p => Ok(n.clone()),
            (Some(_), Some(_)) => bail!("give the container name once (-n NAME or NAME)"),
            (None, None) => bail!("-n NAME is required"),
        }
    }
}

/// `lxrs freeze -n NAME`.
pub fn run_freeze(a: FreezeArgs, g: &Globals) -> Result<i32> {
    run(&a.name()?, g, CgroupRequest::Freeze, "freeze")
}

/// `lxrs unfreeze -n NAME`.
pub fn run_unfreeze(a: FreezeArgs, g: &Globals) -> Result<i32> {
    run(&a.name()?, g, CgroupRequest::Unfreeze, "unfreeze")
}

fn run(name: &str, g: &Globals, req: CgroupRequest, verb: &str) -> Result<i32> {
    match cgroups::control(&g.lxcpath(), name, &req) {
        Ok(_) => Ok(0),
        Err(e) => {
            // LXC's wording, with the reason (printed even with -q: it is an error).
            eprintln!("lxrs: Failed to {verb} {name}: {e}");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: FreezeArgs,
    }

    fn name(args: &[&str]) -> Result<String> {
        let mut v = vec!["freeze"];
        v.extend_from_slice(args);
        T::try_parse_from(v)?.a.name()
    }

    #[test]
    fn name_by_option_or_position() {
        assert_eq!(name(&["-n", "c1"]).unwrap(), "c1");
        assert_eq!(name(&["--name", "c1"]).unwrap(), "c1");
        assert_eq!(name(&["c1"]).unwrap(), "c1");
        assert_eq!(name(&["-n", "c1", "c1"]).unwrap(), "c1");
        assert!(name(&[]).is_err());
        assert!(name(&["-n", "a", "b"]).is_err());
    }
}
