//! `lxrs destroy`: remove a container and everything it owns.

use crate::globals::Globals;
use anyhow::{bail, Result};
use lxrs_runtime::lifecycle::{self, StopMode, StopOptions};
use lxrs_runtime::paths::RunDir;
use lxrs_runtime::state::State;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Kill a running container first.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    lxrs_rootfs::validate_name(&a.name)?;
    let lxcpath = g.lxcpath();
    let paths = lxrs_rootfs::ContainerPaths::new(&lxcpath, &a.name);
    if !paths.dir().exists() {
        bail!(
            "container '{}' does not exist in {}",
            a.name,
            lxcpath.display()
        );
    }
    let rundir = RunDir::default();
    loop {
        let st = lifecycle::state(&lxcpath, &a.name);
        if st != State::Stopped {
            if !a.force {
                bail!(
                    "container '{}' is {st}: stop it first, or use destroy -f to kill it",
                    a.name
                );
            }
            let opts = StopOptions {
                rundir: rundir.clone(),
                mode: StopMode::Kill,
                timeout: None,
                nokill: false,
            };
            match lifecycle::stop(&lxcpath, &a.name, &opts) {
                Ok(_) | Err(lxrs_runtime::error::LifecycleError::NotRunning { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Under the lock nothing can start it between the check and the removal.
        let _lock = lifecycle::lock(&rundir, &lxcpath, &a.name)?;
        if lifecycle::query(&lxcpath, &a.name)?.is_some() {
            continue; // started again meanwhile: go round
        }
        lxrs_rootfs::remove_container_dir(&paths.dir())?;
        break;
    }
    lxrs_runtime::cgroups::prune_monitor_cgroup(None);
    if !g.quiet {
        eprintln!("Destroyed container {}", a.name);
    }
    Ok(0)
}
