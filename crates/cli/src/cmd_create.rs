//! `lxrs create`: a new container from a template (LXC's `lxc-create` convention).

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_rootfs::{Backend, ContainerPaths, Creation};
use lxrs_templates::{SearchPath, Template, TemplateRun};
use std::path::{Path, PathBuf};

/// Used when neither `-f` nor `/etc/lxrs/default.conf` exist (the same text `cargo xtask
/// install` puts in /etc/lxrs/default.conf).
pub const BUILTIN_DEFAULT_CONFIG: &str = include_str!("../../../etc/default.conf");

/// Where new containers' default configuration lives.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lxrs/default.conf";

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Template: a built-in (busybox), NAME for lxc-NAME in the template directories, or a
    /// path to an executable template. `none` creates an empty rootfs.
    #[arg(short = 't', long = "template")]
    pub template: Option<String>,
    /// Initial configuration instead of /etc/lxrs/default.conf.
    #[arg(short = 'f', long = "config")]
    pub config: Option<PathBuf>,
    /// Storage backend (dir).
    #[arg(short = 'B', long = "bdev", default_value = "dir")]
    pub backend: String,
    /// Print help (with -t, the template's help follows).
    #[arg(short = 'h', long = "help")]
    pub help: bool,
    /// Template arguments (after --).
    #[arg(last = true)]
    pub template_args: Vec<String>,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    if a.help {
        use clap::CommandFactory;
        let mut cmd = crate::Cli::command();
        let sub = cmd
            .find_subcommand_mut("create")
            .expect("create subcommand");
        println!("{}", sub.render_help());
        if let Some(t) = &a.template {
            let t = lxrs_templates::resolve(t, &SearchPath::default())?;
            println!("\nTemplate {}:\n{}", t.describe(), t.help()?);
        }
        return Ok(0);
    }
    if a.template.as_deref() == Some("download") {
        // `--list` only reads the server: nothing is created, no name is needed.
        let o = lxrs_templates::download::parse(&a.template_args)?;
        if o.list {
            print!("{}", lxrs_templates::download::list(&o)?);
            return Ok(0);
        }
    }
    let Some(name) = a.name.as_deref() else {
        bail!("-n NAME is required")
    };
    let Some(tname) = a.template.as_deref() else {
        bail!("-t TEMPLATE is required (see `lxrs templates`, or `-t none` for an empty rootfs)")
    };
    lxrs_rootfs::validate_name(name)?;
    let backend = Backend::parse(&a.backend)?;
    // Everything that can be checked is checked before anything is created.
    let template = match tname {
        "none" => None,
        t => Some(lxrs_templates::resolve(t, &SearchPath::default())?),
    };
    if let Some(t) = &template {
        if !t.supports(backend) {
            bail!(
                "-B {}: template {} cannot make that backend (overlay snapshots need a cached rootfs: -t debian)",
                a.backend,
                t.describe()
            );
        }
        t.preflight(&a.template_args)?;
    } else if backend != Backend::Dir {
        bail!("-B {} needs a template (-t debian)", a.backend);
    }
    let (initial, initial_src) = initial_config(a.config.as_deref())?;

    let lxcpath = g.lxcpath();
    let creation = Creation::begin(ContainerPaths::new(&lxcpath, name))?;
    let paths = creation.paths().clone();
    let rootfs = paths.rootfs();
    std::fs::create_dir(&rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    // The rootfs directory itself is 0755 root:root, like LXC's.

    let mut doc = lxrs_config::Document::parse(&initial, paths.config());
    lxrs_config::expand_document_hwaddrs(&mut doc);
    let mut text = doc.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !has_key(&text, &["lxc.rootfs.path", "lxc.rootfs"]) {
        text.push_str(&format!(
            "lxc.rootfs.path = {}\n",
            backend.rootfs_value(&rootfs)
        ));
    }
    lxrs_config::write_atomic(&paths.config(), text.as_bytes())?;

    if let Some(t) = &template {
        let run = TemplateRun {
            name: name.to_string(),
            path: paths.dir(),
            rootfs: rootfs.clone(),
            args: a.template_args.clone(),
            quiet: g.quiet,
        };
        t.run_on(&run, backend)?;
    }

    let body = std::fs::read_to_string(paths.config())
        .with_context(|| format!("reading {}", paths.config().display()))?;
    let header = header(template.as_ref(), &a.template_args);
    let full = format!("{header}{body}");
    lxrs_config::write_atomic(&paths.config(), full.as_bytes())?;

    // A config the template produced must be one lxrs can start.
    let checked = lxrs_config::ContainerConfig::load(paths.config());
    if let Err(e) = checked {
        bail!("the new container's configuration is invalid (from {initial_src} and the template): {e}");
    }
    creation.commit()?;
    if !g.quiet {
        eprintln!("Created container {name} in {}", lxcpath.display());
    }
    Ok(0)
}

fn has_key(text: &str, keys: &[&str]) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.split_once('=')
            .is_some_and(|(k, _)| keys.contains(&k.trim()))
    })
}

fn initial_config(f: Option<&Path>) -> Result<(String, String)> {
    if let Some(p) = f {
        let t = std::fs::read_to_string(p)
            .with_context(|| format!("reading initial config {}", p.display()))?;
        // Validate it now: a bad -f file must not produce a container.
        lxrs_config::ContainerConfig::load(p).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((t, p.display().to_string()));
    }
    match std::fs::read_to_string(DEFAULT_CONFIG_PATH) {
        Ok(t) => Ok((t, DEFAULT_CONFIG_PATH.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            BUILTIN_DEFAULT_CONFIG.to_string(),
            "lxrs's built-in default configuration".to_string(),
        )),
        Err(e) => Err(e).with_context(|| format!("reading {DEFAULT_CONFIG_PATH}")),
    }
}

/// The header LXC prepends to a created container's config.
fn header(t: Option<&Template>, args: &[String]) -> String {
    let mut h = format!(
        "# Template used to create this container: {}\n",
        t.map(Template::describe).unwrap_or_else(|| "none".into())
    );
    if !args.is_empty() {
        h.push_str(&format!(
            "# Parameters passed to the template: {}\n",
            args.join(" ")
        ));
    }
    h.push_str("# For additional config options, please look at lxc.container.conf(5)\n\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_like_lxc() {
        let h = header(Some(&Template::Busybox), &["--ttys".into(), "2".into()]);
        assert_eq!(
            h,
            "# Template used to create this container: busybox (built-in)\n\
             # Parameters passed to the template: --ttys 2\n\
             # For additional config options, please look at lxc.container.conf(5)\n\n"
        );
        assert!(!header(None, &[]).contains("Parameters"));
    }

    #[test]
    fn finds_keys() {
        assert!(has_key(
            "a = b\n  lxc.rootfs.path = dir:/x\n",
            &["lxc.rootfs.path"]
        ));
        assert!(!has_key("# lxc.rootfs.path = x\n", &["lxc.rootfs.path"]));
    }
}
