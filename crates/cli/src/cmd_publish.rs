//! `lxrs publish`: a stopped container becomes an image in a static simplestreams tree
//! (`streams/v1/index.json`, `streams/v1/images.json`, LXC's `meta/1.0/index-system`, the
//! rootfs and meta tarballs) that `lxrs create -t download -- --server URL` can use.

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_runtime::lifecycle;
use lxrs_runtime::paths::RunDir;
use lxrs_runtime::state::State;
use lxrs_templates::images::ImageKey;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container to publish (must be stopped).
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Root of the image tree (served as is by any static web server).
    #[arg(long = "dir")]
    pub dir: PathBuf,
    /// Distribution name (default: ID from the rootfs's /etc/os-release, else the container name).
    #[arg(long)]
    pub dist: Option<String>,
    /// Release (default: VERSION_CODENAME or VERSION_ID from /etc/os-release, else "current").
    #[arg(long)]
    pub release: Option<String>,
    /// Architecture (default: the host's, e.g. amd64).
    #[arg(long)]
    pub arch: Option<String>,
    /// Variant.
    #[arg(long, default_value = "default")]
    pub variant: String,
    /// Days until cached copies of the image expire.
    #[arg(long, default_value_t = 30)]
    pub expiry_days: u64,
}

fn os_release(rootfs: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rootfs.join("etc/os-release"))
        .or_else(|_| std::fs::read_to_string(rootfs.join("usr/lib/os-release")))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    lxrs_rootfs::validate_name(&a.name)?;
    let lxcpath = g.lxcpath();
    let paths = lxrs_rootfs::ContainerPaths::new(&lxcpath, &a.name);
    if !paths.is_defined() {
        bail!(
            "container '{}' does not exist in {}",
            a.name,
            lxcpath.display()
        );
    }
    let cfg = lxrs_config::ContainerConfig::load(paths.config())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .config;
    let Some(rootfs) = cfg.rootfs.as_ref() else {
        bail!("{}: no lxc.rootfs.path", paths.config().display())
    };
    if rootfs.backend != lxrs_config::typed::Backend::Dir {
        bail!(
            "{}: lxc.rootfs.path = {}: publish supports dir rootfs only",
            paths.config().display(),
            rootfs.spec
        );
    }
    let rootfs_dir = PathBuf::from(&rootfs.path);
    // Under the container lock nothing can start it while it is packed.
    let _lock = lifecycle::lock(&RunDir::default(), &lxcpath, &a.name)?;
    let st = lifecycle::state(&lxcpath, &a.name);
    if st != State::Stopped {
        bail!("container '{}' is {st}: stop it before publishing (an image of a running system is inconsistent)", a.name);
    }
    let osr = os_release(&rootfs_dir);
    let get = |k: &str| {
        osr.iter()
            .find(|(x, v)| x == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let key = ImageKey {
        dist: a
            .dist
            .clone()
            .or_else(|| get("ID"))
            .unwrap_or_else(|| a.name.clone()),
        release: a
            .release
            .clone()
            .or_else(|| get("VERSION_CODENAME"))
            .or_else(|| get("VERSION_ID"))
            .unwrap_or_else(|| "current".into()),
        arch: a
            .arch
            .clone()
            .unwrap_or_else(|| lxrs_templates::download::host_arch().into()),
        variant: a.variant.clone(),
    };
    let text = std::fs::read_to_string(paths.config())
        .with_context(|| format!("reading {}", paths.config().display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let req = lxrs_templates::publish::Request {
        key: key.clone(),
        rootfs: &rootfs_dir,
        config: lxrs_templates::publish::image_config(&text),
        build_id: lxrs_templates::publish::build_id(now),
        expiry: now + a.expiry_days * 86400,
        create_message: format!(
            "Container created from image {key} (published from container {}).\n",
            a.name
        ),
    };
    let p = lxrs_templates::publish::publish(&a.dir, &req)?;
    if !g.quiet {
        println!(
            "Published {key} build {} to {} (rootfs.tar.xz: {} bytes, sha256 {})",
            req.build_id,
            p.dir.display(),
            p.rootfs_size,
            p.rootfs_sha256
        );
    }
    Ok(0)
}
