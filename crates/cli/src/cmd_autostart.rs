//! `lxrs autostart`: start, reboot, shut down or kill the containers marked `lxc.start.auto`,
//! in order, with delays and groups (reference section 3, section 0's decisions).

use crate::autostart::{self, Candidate, Mode, Selection};
use crate::globals::Globals;
use crate::inventory;
use anyhow::{bail, Result};
use lxrs_runtime::error::LifecycleError;
use lxrs_runtime::lifecycle::{self, StartOptions, StopMode, StopOptions};
use lxrs_runtime::state::State;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ignore groups: act on every autostart container.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Ignore lxc.start.auto: act on every selected container.
    #[arg(short = 'A', long = "ignore-auto")]
    pub ignore_auto: bool,
    /// Groups to act on, in order (comma-separated, repeatable; an empty field means "no group").
    #[arg(short = 'g', long = "groups", value_name = "GROUPS")]
    pub groups: Vec<String>,
    /// Reboot the selected running containers.
    #[arg(short = 'r', long = "reboot")]
    pub reboot: bool,
    /// Shut the selected running containers down cleanly (killed after the timeout).
    #[arg(short = 's', long = "shutdown")]
    pub shutdown: bool,
    /// Kill the selected running containers.
    #[arg(short = 'k', long = "kill")]
    pub kill: bool,
    /// List what would be done (`NAME DELAY`, or `NAME` for shutdown and kill); do nothing.
    #[arg(short = 'L', long = "list")]
    pub list: bool,
    /// Shutdown timeout in seconds (-1: wait forever, 0: don't wait).
    #[arg(
        short = 't',
        long = "timeout",
        default_value_t = 60,
        allow_negative_numbers = true
    )]
    pub timeout: i64,
    /// Boot: start the `onboot` group, then the containers with no group.
    #[arg(long = "boot")]
    pub boot: bool,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    if a.all && !a.groups.is_empty() {
        bail!("-a ignores groups: don't combine it with -g");
    }
    // LXC's precedence: shutdown, then kill, then reboot, then start.
    let mode = if a.shutdown {
        Mode::Shutdown
    } else if a.kill {
        Mode::Kill
    } else if a.reboot {
        Mode::Reboot
    } else {
        Mode::Start
    };
    let groups = if a.boot {
        autostart::parse_groups(&["onboot,".to_string()])
    } else {
        autostart::parse_groups(&a.groups)
    };
    let sel = Selection {
        all: a.all,
        ignore_auto: a.ignore_auto,
        groups,
    };
    let lxcpath = g.lxcpath();

    let mut cands = Vec::new();
    for name in inventory::defined(&lxcpath) {
        match lxrs_config::ContainerConfig::load(lxcpath.join(&name).join("config")) {
            Ok(l) => cands.push(Candidate {
                name,
                auto: l.config.start.auto,
                delay: l.config.start.delay,
                order: i64::from(l.config.start.order),
                groups: l.config.groups.clone(),
            }),
            Err(e) => eprintln!("lxrs autostart: skipping {name}: {e}"),
        }
    }
    let plan = autostart::plan(&cands, &sel, mode);

    if a.list {
        for c in plan {
            match mode {
                Mode::Start | Mode::Reboot => println!("{} {}", c.name, c.delay),
                Mode::Shutdown | Mode::Kill => println!("{}", c.name),
            }
        }
        return Ok(0);
    }

    let (mut attempted, mut failed) = (0usize, 0usize);
    for c in plan {
        let running = lifecycle::state(&lxcpath, &c.name) != State::Stopped;
        let acts = match mode {
            Mode::Start => !running,
            _ => running,
        };
        if !acts {
            continue;
        }
        attempted += 1;
        let r = act(g, &lxcpath, &c.name, mode, a.timeout);
        match r {
            Ok(()) => {
                if !g.quiet {
                    eprintln!("lxrs autostart: {} {}", verb(mode), c.name);
                }
                if matches!(mode, Mode::Start | Mode::Reboot) && c.delay > 0 {
                    std::thread::sleep(Duration::from_secs(u64::from(c.delay)));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "lxrs autostart: failed to {} {}: {e:#}",
                    verb_inf(mode),
                    c.name
                );
            }
        }
    }
    Ok(autostart::exit_status(attempted, failed))
}

fn verb(m: Mode) -> &'static str {
    match m {
        Mode::Start => "started",
        Mode::Reboot => "rebooted",
        Mode::Shutdown => "shut down",
        Mode::Kill => "killed",
    }
}

fn verb_inf(m: Mode) -> &'static str {
    match m {
        Mode::Start => "start",
        Mode::Reboot => "reboot",
        Mode::Shutdown => "shut down",
        Mode::Kill => "kill",
    }
}

fn act(
    _g: &Globals,
    lxcpath: &std::path::Path,
    name: &str,
    mode: Mode,
    timeout: i64,
) -> Result<()> {
    match mode {
        Mode::Start => {
            let spec = crate::spec_build::load_spec(lxcpath, name, None, &[])?;
            match lifecycle::start(&spec, &StartOptions::default()) {
                Ok(_) | Err(LifecycleError::AlreadyRunning { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Mode::Reboot | Mode::Shutdown | Mode::Kill => {
            let (m, t) = match mode {
                // The reboot signal is sent and not waited for, as LXC's autostart does.
                Mode::Reboot => (StopMode::Reboot, Some(Duration::ZERO)),
                Mode::Shutdown => (
                    StopMode::Halt,
                    if timeout < 0 {
                        None
                    } else {
                        Some(Duration::from_secs(timeout as u64))
                    },
                ),
                _ => (StopMode::Kill, None),
            };
            let opts = StopOptions {
                rundir: Default::default(),
                mode: m,
                timeout: t,
                nokill: false,
            };
            match lifecycle::stop(lxcpath, name, &opts) {
                Ok(_) | Err(LifecycleError::NotRunning { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    }
}
