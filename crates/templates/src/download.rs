//! The built-in `download` template: an image from a simplestreams (or LXC index) server,
//! verified, cached under `<cache>/download/<dist>/<release>/<arch>/<variant>`, unpacked safely.

use crate::cache;
use crate::images::{format_list, Client, ImageEntry, ImageError, ImageKey};
use crate::{TemplateError, TemplateRun};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Usage: lxrs create -t download -n NAME -- [OPTIONS]
  -d, --dist DIST        distribution (e.g. debian, busybox)
  -r, --release RELEASE  release (e.g. bookworm)
  -a, --arch ARCH        architecture (default: the host's, e.g. amd64)
      --variant VARIANT  variant (default: default)
      --server SERVER    host name (HTTPS) or full URL (default: images.linuxcontainers.org)
  -l, --list             list the images on the server and exit (creates nothing)
      --flush-cache      download again even when the image is cached
      --force-cache      use the cached image even when it has expired
Every file is checked against the SHA-256 the server's index publishes before anything is
unpacked; unverified images are refused. A cached image is used until it expires; then the
server's index is read, and the image is downloaded again only if its build changed.";

pub const DEFAULT_SERVER: &str = "images.linuxcontainers.org";

/// Parsed `download` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub dist: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
    pub variant: String,
    pub server: String,
    pub list: bool,
    pub flush_cache: bool,
    pub force_cache: bool,
}

fn bad(arg: &str, why: &str) -> TemplateError {
    TemplateError::bad("download", arg, why)
}

pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
    let mut o = Options {
        variant: "default".into(),
        server: DEFAULT_SERVER.into(),
        ..Default::default()
    };
    let mut args = crate::OptionArgs::new("download", args);
    while let Some(k) = args.next_key() {
        let mut val = |k: &str| args.value(k);
        match k {
            "-d" | "--dist" => o.dist = Some(val(k)?),
            "-r" | "--release" => o.release = Some(val(k)?),
            "-a" | "--arch" => o.arch = Some(val(k)?),
            "--variant" => o.variant = val(k)?,
            "--server" => o.server = val(k)?,
            "-l" | "--list" => o.list = true,
            "--flush-cache" => o.flush_cache = true,
            "--force-cache" => o.force_cache = true,
            "--no-validate" => {
                return Err(bad(
                    k,
                    "lxrs always verifies images (SHA-256 from the index)",
                ))
            }
            "--keyid" | "--keyserver" => {
                val(k)?;
            }
            other => {
                return Err(bad(
                    other,
                    "unknown option (see `lxrs create -t download -h`)",
                ))
            }
        }
    }
    for (n, v) in [
        ("--dist", &o.dist),
        ("--release", &o.release),
        ("--arch", &o.arch),
        ("--variant", &Some(o.variant.clone())),
    ] {
        if let Some(v) = v {
            if v.is_empty() || v.contains('/') || v.contains("..") || v.contains(';') {
                return Err(bad(
                    &format!("{n} {v}"),
                    "must be a plain name (no '/', '..' or ';')",
                ));
            }
        }
    }
    if o.flush_cache && o.force_cache {
        return Err(bad(
            "--flush-cache",
            "cannot be combined with --force-cache",
        ));
    }
    Ok(o)
}

/// Debian's name of the host architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `--list`: the server's images as a table.
pub fn list(o: &Options) -> Result<String, TemplateError> {
    let client = Client::new(&o.server).map_err(img)?;
    let mut e = client.index().map_err(img)?;
    e.retain(|e| {
        o.dist.as_ref().is_none_or(|d| *d == e.key.dist)
            && o.release.as_ref().is_none_or(|r| *r == e.key.release)
            && o.arch.as_ref().is_none_or(|a| *a == e.key.arch)
    });
    Ok(format_list(&e))
}

fn img(e: ImageError) -> TemplateError {
    TemplateError::Image(e)
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError {
    TemplateError::io("download", op, path)
}

pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    let o = parse(&run.args)?;
    if o.list {
        print!("{}", list(&o)?);
        return Ok(());
    }
    let missing: Vec<&str> = [("--dist", &o.dist), ("--release", &o.release)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(bad(
            &missing.join(" "),
            "required (use --list to see what the server offers)",
        ));
    }
    let key = ImageKey {
        dist: o.dist.clone().unwrap_or_default(),
        release: o.release.clone().unwrap_or_default(),
        arch: o.arch.clone().unwrap_or_else(|| host_arch().into()),
        variant: o.variant.clone(),
    };
    let cdir = cache::dir(&["download", &key.dist, &key.release, &key.arch, &key.variant]);
    let quiet = run.quiet;
    // the server's current entry, when the expiry check already read the index
    let current: std::cell::RefCell<Option<ImageEntry>> = Default::default();
    let _guard = cache::ensure(
        &cdir,
        o.flush_cache,
        |have| {
            let Some(have) = have else {
                return Ok(cache::Decision::Build);
            };
            if o.force_cache || !expired(have) {
                return Ok(cache::Decision::Keep);
            }
            // expired: the same build is not downloaded again (LXC's build_id check)
            let e = server_entry(&o, &key)?;
            if cached_build_id(have).as_deref() == Some(e.build_id.as_str()) {
                if !quiet {
                    eprintln!(
                        "The cached {key} is build {}, the server's current one: using it",
                        e.build_id
                    );
                }
                return Ok(cache::Decision::Keep);
            }
            *current.borrow_mut() = Some(e);
            Ok(cache::Decision::Build)
        },
        |partial| fetch(&o, &key, current.borrow_mut().take(), partial, quiet),
    )?;

    // the cache is complete and verified; unpack from it
    let rootfs_tar = find_rootfs_tarball(&cdir)?;
    lxrs_rootfs::unpack(&rootfs_tar, &run.rootfs).map_err(TemplateError::Unpack)?;
    std::fs::create_dir_all(run.rootfs.join("dev/pts"))
        .map_err(io("mkdir", &run.rootfs.join("dev/pts")))?;
    install_config(run, &cdir.join("meta"))?;
    if let Ok(msg) = std::fs::read_to_string(cdir.join("meta/create-message")) {
        if !quiet {
            println!("{}", substitute(&msg, run));
        }
    }
    Ok(())
}

fn expired(dir: &Path) -> bool {
    let Ok(t) = std::fs::read_to_string(dir.join("meta/expiry")) else {
        return false;
    };
    let Ok(exp) = t.trim().parse::<u64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    exp < now
}

fn find_rootfs_tarball(cdir: &Path) -> Result<PathBuf, TemplateError> {
    for n in ["rootfs.tar.xz", "rootfs.tar.zst", "rootfs.tar.gz"] {
        let p = cdir.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(TemplateError::Io {
        template: "download".into(),
        op: "find rootfs tarball in cache",
        path: cdir.into(),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

/// The `build_id` a cache entry was downloaded as.
fn cached_build_id(dir: &Path) -> Option<String> {
    let t = std::fs::read_to_string(dir.join("build_id")).ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The server's current entry for `key` (reads only the index).
fn server_entry(o: &Options, key: &ImageKey) -> Result<ImageEntry, TemplateError> {
    // the HTTP client (and its runtime thread) lives only inside this function
    let client = Client::new(&o.server).map_err(img)?;
    find_entry(&client, key)
}

fn find_entry(client: &Client, key: &ImageKey) -> Result<ImageEntry, TemplateError> {
    let all = client.index().map_err(img)?;
    all.into_iter().find(|e| e.key == *key).ok_or_else(|| {
        img(ImageError::NoSuchImage {
            key: key.to_string(),
            server: client.base.clone(),
        })
    })
}

/// Download and verify both files into `partial`, then unpack the (verified) metadata there.
/// `known`: the server's entry when the index was already read.
fn fetch(
    o: &Options,
    key: &ImageKey,
    known: Option<ImageEntry>,
    partial: &Path,
    quiet: bool,
) -> Result<(), TemplateError> {
    // the HTTP client (and its runtime thread) lives only inside this function
    let client = Client::new(&o.server).map_err(img)?;
    let mut e = match known {
        Some(e) => e,
        None => find_entry(&client, key)?,
    };
    client.complete_hashes(&mut e).map_err(img)?;
    let progress = !quiet && std::io::stderr().is_terminal();
    let rootfs_name = match e.rootfs.name.as_str() {
        n @ ("rootfs.tar.xz" | "rootfs.tar.zst" | "rootfs.tar.gz") => n.to_string(),
        n if n.ends_with(".zst") => "rootfs.tar.zst".into(),
        n if n.ends_with(".gz") => "rootfs.tar.gz".into(),
        _ => "rootfs.tar.xz".into(),
    };
    if !quiet {
        eprintln!(
            "Downloading {} build {} from {}",
            key, e.build_id, client.base
        );
    }
    client
        .download(&e.meta, &partial.join("meta.tar.xz"), progress)
        .map_err(img)?;
    client
        .download(&e.rootfs, &partial.join(&rootfs_name), progress)
        .map_err(img)?;
    drop(client);
    // both verified: now, and only now, unpack anything
    let meta = partial.join("meta");
    std::fs::create_dir(&meta).map_err(io("mkdir", &meta))?;
    lxrs_rootfs::unpack(&partial.join("meta.tar.xz"), &meta).map_err(TemplateError::Unpack)?;
    std::fs::write(partial.join("build_id"), format!("{}\n", e.build_id))
        .map_err(io("write", &partial.join("build_id")))?;
    Ok(())
}

fn substitute(s: &str, run: &TemplateRun) -> String {
    s.replace("LXC_NAME", &run.name)
        .replace("LXC_PATH", &run.path.display().to_string())
        .replace("LXC_ROOTFS", &run.rootfs.display().to_string())
        .replace("LXC_TEMPLATE_CONFIG", "/usr/share/lxc/config")
        .replace("LXC_HOOK_DIR", "/usr/share/lxc/hooks")
}

/// LXC's config rewrite (section 7.5): distribution config, container-specific lines,
/// network lines last.
fn install_config(run: &TemplateRun, meta: &Path) -> Result<(), TemplateError> {
    let cfg_path = run.config_path();
    let image_cfg = std::fs::read_to_string(meta.join("config")).unwrap_or_default();
    let mut extra = Vec::new();
    if meta.join("fstab").is_file() {
        let fstab = run.path.join("fstab");
        let t =
            std::fs::read_to_string(meta.join("fstab")).map_err(io("read", &meta.join("fstab")))?;
        std::fs::write(&fstab, substitute(&t, run)).map_err(io("write", &fstab))?;
        extra.push(format!("lxc.mount.fstab = {}", fstab.display()));
    }
    crate::confwrite::install(&cfg_path, &substitute(&image_cfg, run), &extra, &run.name)
        .map_err(io("write", &cfg_path))?;
    // files the image lists for token substitution, resolved inside the rootfs only
    if let Ok(list) = std::fs::read_to_string(meta.join("templates")) {
        for rel in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let p = run.rootfs.join(rel.trim_start_matches('/'));
            let Ok(real) = p.canonicalize() else { continue };
            let Ok(root) = run.rootfs.canonicalize() else {
                continue;
            };
            if !real.starts_with(&root) || rel.contains("..") {
                tracing::warn!("image template file {rel} resolves outside the rootfs; skipped");
                continue;
            }
            if let Ok(t) = std::fs::read_to_string(&real) {
                std::fs::write(&real, substitute(&t, run)).map_err(io("write", &real))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let o = parse(&s(&[
            "-d",
            "debian",
            "--release=bookworm",
            "--server",
            "http://127.0.0.1:1",
            "--list",
        ]))
        .unwrap();
        assert_eq!(o.dist.as_deref(), Some("debian"));
        assert_eq!(o.release.as_deref(), Some("bookworm"));
        assert_eq!(o.variant, "default");
        assert!(o.list);
        assert!(parse(&s(&["--dist", "../x"])).is_err());
        assert!(parse(&s(&["--bogus"]))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(parse(&s(&["--flush-cache", "--force-cache"])).is_err());
        assert!(parse(&s(&["--dist"]))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
    }
}
