//! `lxrs config ...`: check, read, edit, show and upgrade lxc.conf(5) files.
//!
//! Edits are written atomically (temp file, fsync, rename, directory fsync), so a crash never
//! leaves a truncated config, and `set`/`unset` of a container hold its lock (the one start, stop
//! and destroy take), so concurrent edits are serialised and none is lost.

use anyhow::{bail, Context};
use lxrs_config::{keys, ContainerConfig, Document, ExpandOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Check config files: every error and warning with file:line; exit 1 on any error.
    Check {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the effective value(s) of KEY for a container (includes resolved).
    Get {
        #[arg(short = 'n', long = "name")]
        name: String,
        key: String,
    },
    /// Set KEY to VALUE in a container's config (list keys get a new line).
    Set {
        #[arg(short = 'n', long = "name")]
        name: String,
        key: String,
        value: String,
    },
    /// Remove every line of KEY from a container's config.
    Unset {
        #[arg(short = 'n', long = "name")]
        name: String,
        key: String,
    },
    /// Print a container's config expanded: includes resolved, current key names.
    Show {
        #[arg(short = 'n', long = "name")]
        name: String,
    },
    /// Rewrite legacy key names to current ones (`<file>.backup` is kept).
    Upgrade {
        /// Config file to upgrade.
        #[arg(conflicts_with = "name", required_unless_present = "name")]
        file: Option<PathBuf>,
        /// Upgrade this container's config.
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
    },
}

fn config_path(g: &crate::globals::Globals, name: &str) -> anyhow::Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("invalid container name `{name}`");
    }
    let p = g.lxcpath().join(name).join("config");
    if !p.exists() {
        bail!(
            "container `{name}` does not exist ({} not found)",
            p.display()
        );
    }
    Ok(p)
}

pub fn run(a: Args, g: &crate::globals::Globals) -> anyhow::Result<i32> {
    match a.cmd {
        Sub::Check { files } => Ok(check(&files, g.quiet)),
        Sub::Get { name, key } => {
            let path = config_path(g, &name)?;
            resolve_key(&key)?;
            let loaded = ContainerConfig::load(&path)?;
            for v in loaded.config.get(&key) {
                println!("{v}");
            }
            Ok(0)
        }
        Sub::Set { name, key, value } => {
            let path = config_path(g, &name)?;
            let _lock = container_lock(g, &name)?;
            edit(&path, &key, |doc| {
                let mut value = value.clone();
                if keys::is_hwaddr_key(&key) {
                    value = lxrs_config::expand_hwaddr(&value);
                }
                // List keys get a new line (as LXC's set_config_item); cgroup limits other than
                // device rules replace the last line, which is what a user setting a limit means.
                let canon = lxrs_config::canonical_key(&key);
                let is_cgroup_limit = (canon.starts_with("lxc.cgroup.")
                    || canon.starts_with("lxc.cgroup2."))
                    && !canon.ends_with(".devices.allow")
                    && !canon.ends_with(".devices.deny");
                if keys::is_list_key(&canon) && !is_cgroup_limit && !value.is_empty() {
                    doc.append(&key, &value)?;
                } else {
                    doc.set(&key, &value)?;
                }
                Ok(())
            })?;
            Ok(0)
        }
        Sub::Unset { name, key } => {
            let path = config_path(g, &name)?;
            let _lock = container_lock(g, &name)?;
            edit(&path, &key, |doc| {
                if doc.unset(&key) == 0 {
                    tracing::info!(%key, "key was not set");
                }
                Ok(())
            })?;
            Ok(0)
        }
        Sub::Show { name } => {
            let path = config_path(g, &name)?;
            let loaded = ContainerConfig::load(&path)?;
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            print!("{}", loaded.config.render_expanded());
            Ok(0)
        }
        Sub::Upgrade { file, name } => {
            let path = match (file, name) {
                (Some(f), _) => f,
                (None, Some(n)) => config_path(g, &n)?,
                (None, None) => bail!("give a FILE or -n NAME"),
            };
            let rep = lxrs_config::upgrade_file(&path)?;
            for n in &rep.notes {
                eprintln!("{n}");
            }
            if !g.quiet {
                match &rep.backup {
                    Some(b) => println!(
                        "{}: {} line(s) rewritten, {} removed; backup in {}",
                        path.display(),
                        rep.changed,
                        rep.removed,
                        b.display()
                    ),
                    None => println!("{}: nothing to upgrade", path.display()),
                }
            }
            Ok(if rep.notes.is_empty() { 0 } else { 1 })
        }
    }
}

fn resolve_key(key: &str) -> anyhow::Result<()> {
    if let Err(u) = keys::resolve(key) {
        match (u.suggestion, u.detail) {
            (_, Some(d)) => bail!("{key}: {d}"),
            (Some(s), None) => bail!("unknown configuration key `{key}` (did you mean `{s}`?)"),
            (None, None) => bail!("unknown configuration key `{key}`"),
        }
    }
    Ok(())
}

/// The per-container lock that start, stop and destroy take.
fn container_lock(
    g: &crate::globals::Globals,
    name: &str,
) -> anyhow::Result<lxrs_runtime::lock::ContainerLock> {
    let rundir = lxrs_runtime::paths::RunDir::default();
    Ok(lxrs_runtime::lifecycle::lock(&rundir, &g.lxcpath(), name)?)
}

/// Load, edit, validate the result (with includes), then save atomically.
fn edit(
    path: &Path,
    key: &str,
    f: impl FnOnce(&mut Document) -> Result<(), lxrs_config::ConfigError>,
) -> anyhow::Result<()> {
    resolve_key(key)?;
    let mut doc = Document::load(path)?;
    f(&mut doc)?;
    // Refuse to write a config that would not load.
    ContainerConfig::from_document(&doc, ExpandOptions::default())
        .with_context(|| format!("not saving {}: the result would be invalid", path.display()))?;
    doc.save_atomic(path)?;
    Ok(())
}

fn check(files: &[PathBuf], quiet: bool) -> i32 {
    let mut failed = false;
    for f in files {
        let rep = ContainerConfig::check(f);
        for e in &rep.errors {
            for e in e.flatten() {
                println!("error: {e}");
            }
        }
        for w in &rep.warnings {
            println!("warning: {w}");
        }
        if !rep.errors.is_empty() {
            failed = true;
        } else if !quiet {
            println!("{}: ok ({} warning(s))", f.display(), rep.warnings.len());
        }
    }
    i32::from(failed)
}
