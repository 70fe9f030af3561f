//! `lxrs copy`: clone a stopped container (LXC's `lxc-copy`): a full copy of the rootfs
//! (owners, modes, links, xattrs and devices kept; a reflink where the filesystem has one),
//! a config with the new name and paths, and new MAC addresses (`00:16:3e:xx:xx:xx`, lxrs's
//! default-config prefix, fresh random bytes for every interface). `-s` makes an overlay
//! snapshot clone instead, in constant time: the original's rootfs is the lower layer,
//! `delta0`/`olwork` in the clone's directory the upper/work ones; the original then cannot be
//! destroyed while the clone exists.

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_rootfs::{ContainerPaths, Creation};
use lxrs_runtime::lifecycle;
use lxrs_runtime::paths::RunDir;
use lxrs_runtime::state::State;
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container to copy (must be stopped).
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Name of the new container.
    #[arg(short = 'N', long = "newname")]
    pub newname: String,
    /// Snapshot clone (overlay over the original rootfs).
    #[arg(short = 's', long = "snapshot")]
    pub snapshot: bool,
    /// Storage backend of the copy (dir, or overlay = the same as -s).
    #[arg(short = 'B', long = "backingstorage", default_value = "dir")]
    pub backend: String,
}

/// The clone's config: new name, every path under the old container directory moved to the
/// new one, `lxc.rootfs.path` set, and every hwaddr made new.
pub fn clone_config(
    text: &str,
    old_dir: &Path,
    new_dir: &Path,
    new_name: &str,
    rootfs_value: &str,
) -> String {
    let (old_s, new_s) = (old_dir.display().to_string(), new_dir.display().to_string());
    let mut out = String::new();
    for l in text.lines() {
        let t = l.trim_start();
        let key = t.split('=').next().unwrap_or("").trim();
        let line = if !t.starts_with("lxc.") {
            l.to_string()
        } else if key == "lxc.uts.name" || key == "lxc.utsname" {
            format!("{key} = {new_name}")
        } else if key == "lxc.rootfs.path" || key == "lxc.rootfs" {
            format!("lxc.rootfs.path = {rootfs_value}")
        } else if key.ends_with(".hwaddr")
            && (key.starts_with("lxc.net.") || key.starts_with("lxc.network."))
        {
            format!("{key} = 00:16:3e:xx:xx:xx")
        } else {
            // paths like lxc.mount.fstab = <old dir>/fstab follow the container
            l.replace(&format!("{old_s}/"), &format!("{new_s}/"))
        };
        out.push_str(&line);
        out.push('\n');
    }
    let mut doc = lxrs_config::Document::parse(&out, new_dir.join("config"));
    lxrs_config::expand_document_hwaddrs(&mut doc);
    doc.to_string()
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    lxrs_rootfs::validate_name(&a.name)?;
    lxrs_rootfs::validate_name(&a.newname)?;
    let overlay = a.snapshot || a.backend == "overlay" || a.backend == "overlayfs";
    if !matches!(
        a.backend.as_str(),
        "dir" | "none" | "best" | "overlay" | "overlayfs"
    ) {
        bail!(
            "unsupported storage backend '{}' for copy (supported: dir, overlay)",
            a.backend
        );
    }
    let lxcpath = g.lxcpath();
    let src = ContainerPaths::new(&lxcpath, &a.name);
    if !src.is_defined() {
        bail!(
            "container '{}' does not exist in {}",
            a.name,
            lxcpath.display()
        );
    }
    let cfg = lxrs_config::ContainerConfig::load(src.config())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .config;
    let src_rootfs = match &cfg.rootfs {
        Some(r) if r.backend == lxrs_config::typed::Backend::Dir => {
            std::path::PathBuf::from(&r.path)
        }
        Some(r) => bail!(
            "{}: lxc.rootfs.path = {}: copy supports dir rootfs only",
            src.config().display(),
            r.spec
        ),
        None => src.rootfs(),
    };
    // The source stays stopped while it is copied.
    let _lock = lifecycle::lock(&RunDir::default(), &lxcpath, &a.name)?;
    let st = lifecycle::state(&lxcpath, &a.name);
    if st != State::Stopped {
        bail!("container '{}' is {st}: stop it before copying", a.name);
    }
    let creation = Creation::begin(ContainerPaths::new(&lxcpath, &a.newname))?;
    let dst = creation.paths().clone();
    // other files of the container directory (fstab, ...) come along
    for e in
        std::fs::read_dir(src.dir()).with_context(|| format!("reading {}", src.dir().display()))?
    {
        let e = e?;
        let n = e.file_name();
        let ft = e.file_type()?;
        if n == "config" || n == "rootfs" || n == "partial" || !ft.is_file() {
            continue;
        }
        std::fs::copy(e.path(), dst.dir().join(&n))
            .with_context(|| format!("copying {}", e.path().display()))?;
    }
    let rootfs = dst.rootfs();
    std::fs::create_dir(&rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    let (rootfs_value, hostname_file) = if overlay {
        // constant time: the original's rootfs is the lower layer, writes go to delta0
        let upper = dst.dir().join("delta0");
        let work = dst.dir().join("olwork");
        for d in [&upper, &work] {
            std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
        }
        if src_rootfs.to_string_lossy().contains([',', ':']) {
            bail!(
                "{}: an overlay lower directory cannot contain ',' or ':'",
                src_rootfs.display()
            );
        }
        lxrs_rootfs::record_snapshot(&src.dir(), &dst.dir())
            .with_context(|| format!("recording the snapshot in {}", src.dir().display()))?;
        (
            format!("overlay:{}:{}", src_rootfs.display(), upper.display()),
            upper.join("etc/hostname"),
        )
    } else {
        lxrs_rootfs::copy_tree(&src_rootfs, &rootfs)?;
        (
            format!("dir:{}", rootfs.display()),
            rootfs.join("etc/hostname"),
        )
    };
    let text = std::fs::read_to_string(src.config())
        .with_context(|| format!("reading {}", src.config().display()))?;
    let new = clone_config(&text, &src.dir(), &dst.dir(), &a.newname, &rootfs_value);
    lxrs_config::write_atomic(&dst.config(), new.as_bytes())?;
    // the hostname file follows the name, when it held the old one
    let lower_hn = src_rootfs.join("etc/hostname");
    if std::fs::symlink_metadata(&lower_hn).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(&lower_hn).is_ok_and(|t| t.trim() == a.name)
    {
        if let Some(etc) = hostname_file.parent().filter(|e| !e.exists()) {
            // an overlay upper: etc/ like the lower one (owner, mode)
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let md = std::fs::metadata(src_rootfs.join("etc"))?;
            std::fs::create_dir(etc)?;
            std::fs::set_permissions(etc, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            std::os::unix::fs::chown(etc, Some(md.uid()), Some(md.gid()))?;
        }
        if std::fs::symlink_metadata(&hostname_file).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&hostname_file)?;
        }
        std::fs::write(&hostname_file, format!("{}\n", a.newname))
            .with_context(|| format!("writing {}", hostname_file.display()))?;
    }
    lxrs_config::ContainerConfig::load(dst.config())
        .map_err(|e| anyhow::anyhow!("the copy's configuration is invalid: {e}"))?;
    creation.commit()?;
    if !g.quiet {
        eprintln!("Copied container {} to {}", a.name, a.newname);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_config_renames_moves_paths_and_makes_new_macs() {
        let t = "# c\nlxc.uts.name = a\nlxc.rootfs.path = dir:/l/a/rootfs\nlxc.mount.fstab = /l/a/fstab\n\
                 lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:11:22:33\nlxc.apparmor.profile = /l/ab\n";
        let c = clone_config(
            t,
            Path::new("/l/a"),
            Path::new("/l/b"),
            "b",
            "dir:/l/b/rootfs",
        );
        assert!(
            c.contains("lxc.uts.name = b\n") && c.contains("lxc.rootfs.path = dir:/l/b/rootfs\n"),
            "{c}"
        );
        assert!(
            c.contains("lxc.mount.fstab = /l/b/fstab\n") && c.contains("= /l/ab\n"),
            "{c}"
        );
        let mac = c
            .lines()
            .find(|l| l.starts_with("lxc.net.0.hwaddr"))
            .unwrap();
        let v = mac.split('=').nth(1).unwrap().trim();
        assert!(
            v.starts_with("00:16:3e:") && v != "00:16:3e:11:22:33",
            "{mac}"
        );
        assert!(
            v.chars().all(|c| c.is_ascii_hexdigit() || c == ':') && v.len() == 17,
            "{mac}"
        );
        assert!(c.starts_with("# c\n"));
    }
}
