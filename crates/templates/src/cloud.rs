//! The built-in `cloud` template: a pre-built cloud image (a rootfs tarball) plus a cloud-init
//! NoCloud seed, as LXC's `ubuntu-cloud` template and its `ubuntu-cloud-prep` hook do
//! (reference section 7.4), for any image rather than only Ubuntu's.
//!
//! * `--image FILE|URL`: the rootfs tarball (`.tar`, `.tar.xz`, `.tar.zst`, `.tar.gz`). A URL
//!   is downloaded by [`crate::images::Client`] and must come with `--sha256` (lxrs refuses
//!   unverified images); it is cached under `<cache>/cloud/<sha256>/`. A local file is checked
//!   against `--sha256` when one is given. The tarball is unpacked by [`lxrs_rootfs::unpack`],
//!   which cannot write outside the rootfs.
//! * the seed `/var/lib/cloud/seed/nocloud-net/`: `meta-data` (`instance-id: lxc-<hostid>`,
//!   `local-hostname: <name>`, `public-keys:` from `--auth-key`), `user-data` (the
//!   `--userdata` file verbatim, else a generated `#cloud-config` whose `ssh_authorized_keys`
//!   holds the `--auth-key` keys), `vendor-data` from `--vendordata`.
//! * `/etc/hostname`; the config is rewritten the way LXC's template does: common lines, the
//!   container-specific lines (including what the config already had), network lines last.

use crate::images::{Client, ImageError, ImageFile};
use crate::{cache, TemplateError, TemplateRun};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

pub const HELP: &str = "\
Usage: lxrs create -t cloud -n NAME -- --image FILE|URL [OPTIONS]
A pre-built cloud image plus a cloud-init NoCloud seed (as LXC's ubuntu-cloud), for any image.

Template options (after --):
  -T, --image FILE|URL    the image: a rootfs tarball (.tar, .tar.xz, .tar.zst, .tar.gz);
                          a URL (http/https) needs --sha256 and is cached
      --sha256 HEX        SHA-256 of the tarball: required for a URL, checked for a file
  -u, --userdata FILE     cloud-init user-data, copied verbatim (default: a generated
                          #cloud-config; see below)
  -V, --vendordata FILE   cloud-init vendor-data, copied verbatim
  -S, --auth-key FILE     SSH public key(s): meta-data public-keys, and ssh_authorized_keys
                          of the generated user-data
  -i, --hostid ID         instance id suffix: instance-id is lxc-ID (default: 8 random hex)
  -C, --cloud             write no seed (the image gets its data from elsewhere)
  -F, --flush-cache       download a URL again even when cached

Seed: <rootfs>/var/lib/cloud/seed/nocloud-net/{meta-data,user-data[,vendor-data]};
meta-data is `instance-id: lxc-ID` and `local-hostname: NAME`. The generated user-data logs
cloud-init's output to /var/log/cloud-init-output.log, has cloud-init manage /etc/hosts,
sets no password (log in with the --auth-key key, or use `lxrs attach`).";

const TEMPLATE: &str = "cloud";

/// Where the seed goes, relative to the rootfs.
pub const SEED_DIR: &str = "var/lib/cloud/seed/nocloud-net";

/// The image argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    File(PathBuf),
    Url(String),
}

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub image: Option<Image>,
    pub sha256: Option<String>,
    pub userdata: Option<PathBuf>,
    pub vendordata: Option<PathBuf>,
    pub auth_key: Option<PathBuf>,
    pub hostid: Option<String>,
    pub no_seed: bool,
    pub flush_cache: bool,
}

fn bad(arg: &str, why: &str) -> TemplateError {
    TemplateError::bad(TEMPLATE, arg, why)
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError {
    TemplateError::io(TEMPLATE, op, path)
}

pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
    let mut o = Options::default();
    let mut args = crate::OptionArgs::new(TEMPLATE, args);
    while let Some(k) = args.next_key() {
        let mut val = |k: &str| -> Result<String, TemplateError> {
            let v = args.value(k)?;
            if v.is_empty() {
                return Err(bad(k, "needs a non-empty value"));
            }
            Ok(v)
        };
        match k {
            "-T" | "--image" | "--tarball" => {
                let v = val(k)?;
                o.image = Some(if v.starts_with("http://") || v.starts_with("https://") {
                    Image::Url(v)
                } else if v.contains("://") {
                    return Err(bad(
                        &format!("{k} {v}"),
                        "only http:// and https:// URLs are supported",
                    ));
                } else {
                    Image::File(v.into())
                })
            }
            "--sha256" => {
                let v = val(k)?.to_ascii_lowercase();
                if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(&format!("{k} {v}"), "expected 64 hexadecimal digits"));
                }
                o.sha256 = Some(v)
            }
            "-u" | "--userdata" => o.userdata = Some(val(k)?.into()),
            "-V" | "--vendordata" => o.vendordata = Some(val(k)?.into()),
            "-S" | "--auth-key" => o.auth_key = Some(val(k)?.into()),
            "-i" | "--hostid" => {
                let v = val(k)?;
                if v.len() > 64
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(bad(
                        &format!("{k} {v}"),
                        "expected up to 64 letters, digits, '-', '_' or '.'",
                    ));
                }
                o.hostid = Some(v)
            }
            "-C" | "--cloud" => o.no_seed = true,
            "-F" | "--flush-cache" => o.flush_cache = true,
            "--mapped-uid" | "--mapped-gid" => {
                return Err(bad(k, "unprivileged containers are not supported yet"));
            }
            other => return Err(bad(other, "unknown option (see `lxrs create -t cloud -h`)")),
        }
    }
    match &o.image {
        None => {
            return Err(bad(
                "--image",
                "required: a rootfs tarball file or an http(s) URL",
            ))
        }
        Some(Image::Url(u)) if o.sha256.is_none() => {
            return Err(bad(
                &format!("--image {u}"),
                "a URL needs --sha256 HEX: lxrs refuses unverified images",
            ))
        }
        _ => {}
    }
    if o.no_seed {
        for (n, v) in [
            ("--userdata", &o.userdata),
            ("--vendordata", &o.vendordata),
            ("--auth-key", &o.auth_key),
        ] {
            if v.is_some() {
                return Err(bad(
                    n,
                    "cannot be combined with --cloud (no seed is written)",
                ));
            }
        }
        if o.hostid.is_some() {
            return Err(bad(
                "--hostid",
                "cannot be combined with --cloud (no seed is written)",
            ));
        }
    }
    Ok(o)
}

/// Everything read and checked before anything is created.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub options: Options,
    pub userdata: Option<Vec<u8>>,
    pub vendordata: Option<Vec<u8>>,
    /// Public keys from `--auth-key`, one per element.
    pub keys: Vec<String>,
}

fn read_file(what: &'static str, p: &Path) -> Result<Vec<u8>, TemplateError> {
    let md = fs::metadata(p).map_err(io(what, p))?;
    if !md.is_file() {
        return Err(bad(
            &p.display().to_string(),
            &format!("{what}: not a regular file"),
        ));
    }
    fs::read(p).map_err(io(what, p))
}

/// Parse options, check the image file exists and read every input file.
pub fn preflight(args: &[String]) -> Result<Prepared, TemplateError> {
    let options = parse(args)?;
    if let Some(Image::File(f)) = &options.image {
        let md = fs::metadata(f).map_err(io("open --image", f))?;
        if !md.is_file() {
            return Err(bad(
                &format!("--image {}", f.display()),
                "not a regular file (expected a rootfs tarball)",
            ));
        }
        // readable?
        fs::File::open(f).map_err(io("open --image", f))?;
    }
    let userdata = match &options.userdata {
        Some(p) => Some(read_file("read --userdata", p)?),
        None => None,
    };
    let vendordata = match &options.vendordata {
        Some(p) => Some(read_file("read --vendordata", p)?),
        None => None,
    };
    let keys = match &options.auth_key {
        Some(p) => {
            let t = read_file("read --auth-key", p)?;
            let t = String::from_utf8(t).map_err(|_| {
                bad(
                    &format!("--auth-key {}", p.display()),
                    "not a text file of public keys",
                )
            })?;
            let keys = parse_keys(&t);
            if keys.is_empty() {
                return Err(bad(
                    &format!("--auth-key {}", p.display()),
                    "the file holds no public key",
                ));
            }
            keys
        }
        None => vec![],
    };
    Ok(Prepared {
        options,
        userdata,
        vendordata,
        keys,
    })
}

/// Key lines of an authorized_keys-style file (blank lines and comments dropped).
pub fn parse_keys(t: &str) -> Vec<String> {
    t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yq(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `meta-data`: instance id, hostname and (LXC's `public-keys`) the keys.
pub fn meta_data(instance_id: &str, hostname: &str, keys: &[String]) -> String {
    let mut s = format!("instance-id: {instance_id}\nlocal-hostname: {hostname}\n");
    if !keys.is_empty() {
        s.push_str("public-keys:\n");
        for k in keys {
            s.push_str(&format!("  - {}\n", yq(k)));
        }
    }
    s
}

/// The generated `user-data` (`#cloud-config`).
pub fn default_user_data(keys: &[String]) -> String {
    let mut s = String::from(
        "#cloud-config\n\
         output:\n  all: \"| tee -a /var/log/cloud-init-output.log\"\n\
         manage_etc_hosts: localhost\n",
    );
    if !keys.is_empty() {
        s.push_str("ssh_authorized_keys:\n");
        for k in keys {
            s.push_str(&format!("  - {}\n", yq(k)));
        }
    }
    s
}

/// 8 random hex digits (LXC: the first 8 of `uuidgen`).
pub fn random_hostid() -> Result<String, TemplateError> {
    let mut b = [0u8; 4];
    let p = Path::new("/dev/urandom");
    let mut f = fs::File::open(p).map_err(io("open", p))?;
    std::io::Read::read_exact(&mut f, &mut b).map_err(io("read", p))?;
    Ok(hex::encode(b))
}

/// A directory below `root` (created 0755 where missing), refusing to pass through a symlink
/// or anything but a directory: the image's tree must not send our writes elsewhere.
fn safe_dir(root: &Path, rel: &str) -> Result<PathBuf, TemplateError> {
    let mut cur = root.to_path_buf();
    for c in Path::new(rel).components() {
        let Component::Normal(n) = c else {
            return Err(bad(rel, "not a plain relative path"));
        };
        cur.push(n);
        match fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(bad(
                    &cur.display().to_string(),
                    "is a symlink in the image; refusing to write the seed through it",
                ))
            }
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Err(bad(&cur.display().to_string(), "is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
                .mode(0o755)
                .create(&cur)
                .map_err(io("mkdir", &cur))?,
            Err(e) => return Err(io("stat", &cur)(e)),
        }
    }
    Ok(cur)
}

/// Write `dir/name`, replacing whatever the image had there (a symlink is removed, never
/// followed).
fn safe_write(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<(), TemplateError> {
    let p = dir.join(name);
    if let Ok(md) = fs::symlink_metadata(&p) {
        if md.is_dir() {
            return Err(bad(&p.display().to_string(), "is a directory in the image"));
        }
        fs::remove_file(&p).map_err(io("remove", &p))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(io("create", &p))?;
    f.write_all(data).map_err(io("write", &p))?;
    f.sync_all().map_err(io("fsync", &p))
}

/// Halt and reboot signals for the image's init: busybox init halts on SIGUSR1, systemd on
/// SIGRTMIN+3; anything else keeps lxrs's defaults.
pub fn init_signals(rootfs: &Path) -> Option<(&'static str, &'static str)> {
    // follow /sbin/init inside the rootfs (never outside it), a few hops at most
    let mut rel = PathBuf::from("sbin/init");
    for _ in 0..8 {
        let p = rootfs.join(&rel);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {}
            _ => break,
        }
        let t = fs::read_link(&p).ok()?;
        let next = if t.is_absolute() {
            t.strip_prefix("/").ok()?.to_path_buf()
        } else {
            rel.parent().unwrap_or(Path::new("")).join(t)
        };
        // normalise `..` without leaving the rootfs
        let mut n = PathBuf::new();
        for c in next.components() {
            match c {
                Component::ParentDir => {
                    n.pop();
                }
                Component::Normal(x) => n.push(x),
                _ => {}
            }
        }
        rel = n;
    }
    let name = rel.file_name()?.to_string_lossy().into_owned();
    if name == "busybox" {
        Some(("SIGUSR1", "SIGTERM"))
    } else if rel.to_string_lossy().contains("systemd") {
        Some(("SIGRTMIN+3", "SIGINT"))
    } else {
        None
    }
}

/// LXC's rewrite of the config: comments kept, `# Common configuration`, `# Container
/// specific configuration` (the config's own `lxc.*` lines, then name and signals), and
/// `# Network configuration` last.
pub fn rewrite_config(cur: &str, name: &str, signals: Option<(&str, &str)>) -> String {
    let (mut keep, mut net, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for l in cur.lines() {
        let t = l.trim_start();
        let key = t.split('=').next().unwrap_or("").trim();
        if key.starts_with("lxc.net.") || key.starts_with("lxc.network.") {
            net.push(l);
        } else if key.starts_with("lxc.") {
            if !matches!(
                key,
                "lxc.uts.name" | "lxc.utsname" | "lxc.signal.halt" | "lxc.signal.reboot"
            ) || signals.is_none() && key.starts_with("lxc.signal.")
            {
                other.push(l);
            }
        } else {
            keep.push(l);
        }
    }
    while keep.last().is_some_and(|l| l.trim().is_empty()) {
        keep.pop();
    }
    let mut out = String::new();
    for l in &keep {
        out.push_str(l);
        out.push('\n');
    }
    if !keep.is_empty() {
        out.push('\n');
    }
    out.push_str(
        "# Common configuration (cloud template)\n\
         lxc.autodev = 1\n\
         lxc.pty.max = 1024\n\
         lxc.tty.max = 4\n\
         lxc.cap.drop = mac_admin mac_override sys_time sys_module sys_rawio\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n\
         \n# Container specific configuration\n",
    );
    for l in other {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!("lxc.uts.name = {name}\n"));
    if let Some((halt, reboot)) = signals {
        out.push_str(&format!(
            "lxc.signal.halt = {halt}\nlxc.signal.reboot = {reboot}\n"
        ));
    }
    if !net.is_empty() {
        out.push_str("\n# Network configuration\n");
        for l in net {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The tarball to unpack: the local file (checked against `--sha256` when given), or the
/// verified download in the cache. The guard keeps the cache entry locked while unpacking.
fn tarball(o: &Options, quiet: bool) -> Result<(PathBuf, Option<cache::Guard>), TemplateError> {
    match o.image.as_ref() {
        Some(Image::File(f)) => {
            if let Some(want) = &o.sha256 {
                let (got, _) = crate::images::sha256_file(f)?;
                if &got != want {
                    return Err(ImageError::HashMismatch {
                        url: f.display().to_string(),
                        expected: want.clone(),
                        actual: got,
                    }
                    .into());
                }
            }
            Ok((f.clone(), None))
        }
        Some(Image::Url(url)) => {
            let Some(sha) = o.sha256.clone() else {
                return Err(bad(url, "a URL needs --sha256"));
            };
            let (base, file) = split_url(url)?;
            let entry = cache::dir(&[TEMPLATE, &sha]);
            let guard = cache::ensure(
                &entry,
                o.flush_cache,
                |have| {
                    Ok(match have {
                        Some(d) if d.join(&file).is_file() => cache::Decision::Keep,
                        _ => cache::Decision::Build,
                    })
                },
                |partial| {
                    if !quiet {
                        eprintln!("Downloading {url}");
                    }
                    // the HTTP client (and its runtime thread) lives only in this closure
                    let client = Client::new(&base)?;
                    let f = ImageFile {
                        name: file.clone(),
                        path: file.clone(),
                        sha256: Some(sha.clone()),
                        size: None,
                    };
                    let progress = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
                    client.download(&f, &partial.join(&file), progress)?;
                    Ok(())
                },
            )?;
            Ok((entry.join(&file), Some(guard)))
        }
        None => Err(bad("--image", "required")),
    }
}

/// `http://host/dir/file.tar.xz` → (`http://host/dir`, `file.tar.xz`).
pub fn split_url(url: &str) -> Result<(String, String), TemplateError> {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = no_query.split_once("://").map(|(_, r)| r).unwrap_or("");
    let file = match after_scheme.split_once('/') {
        Some((_, path)) => path.rsplit('/').next().unwrap_or(""),
        None => "",
    };
    if file.is_empty() || file == "." || file == ".." {
        return Err(bad(
            &format!("--image {url}"),
            "the URL must name a file (e.g. https://host/images/rootfs.tar.xz)",
        ));
    }
    let base = &no_query[..no_query.len() - file.len()];
    Ok((base.trim_end_matches('/').to_string(), file.to_string()))
}

/// Fill `run.rootfs` from the image, write the seed, rewrite the config.
pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    let p = preflight(&run.args)?;
    let o = &p.options;
    let (tar, guard) = tarball(o, run.quiet)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&run.rootfs)
        .map_err(io("mkdir", &run.rootfs))?;
    lxrs_rootfs::unpack(&tar, &run.rootfs)?;
    drop(guard);
    let dev = safe_dir(&run.rootfs, "dev")?;
    safe_dir(&dev, "pts")?;
    let etc = safe_dir(&run.rootfs, "etc")?;
    safe_write(
        &etc,
        "hostname",
        format!("{}\n", run.name).as_bytes(),
        0o644,
    )?;

    if !o.no_seed {
        let hostid = match &o.hostid {
            Some(h) => h.clone(),
            None => random_hostid()?,
        };
        let seed = safe_dir(&run.rootfs, SEED_DIR)?;
        let md = meta_data(&format!("lxc-{hostid}"), &run.name, &p.keys);
        safe_write(&seed, "meta-data", md.as_bytes(), 0o644)?;
        let ud = match &p.userdata {
            Some(u) => u.clone(),
            None => default_user_data(&p.keys).into_bytes(),
        };
        // user-data may hold secrets
        safe_write(&seed, "user-data", &ud, 0o600)?;
        if let Some(v) = &p.vendordata {
            safe_write(&seed, "vendor-data", v, 0o600)?;
        }
    }

    let cfg = run.config_path();
    let cur = fs::read_to_string(&cfg).map_err(io("read", &cfg))?;
    let text = rewrite_config(&cur, &run.name, init_signals(&run.rootfs));
    TemplateError::write_config(TEMPLATE, &cfg, &text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = parse(&s(&[
            "--image",
            "/x.tar.xz",
            "-u",
            "/ud",
            "--auth-key=/k",
            "-i",
            "abc",
        ]))
        .unwrap();
        assert_eq!(o.image, Some(Image::File("/x.tar.xz".into())));
        assert_eq!(o.userdata, Some("/ud".into()));
        assert_eq!(o.auth_key, Some("/k".into()));
        assert_eq!(o.hostid.as_deref(), Some("abc"));
        let e = parse(&[]).unwrap_err().to_string();
        assert!(e.contains("--image") && e.contains("required"), "{e}");
        let e = parse(&s(&["--image", "https://h/r.tar.xz"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sha256"), "{e}");
        let h = "A".repeat(64);
        let o = parse(&s(&["-T", "http://h/r.tar.xz", "--sha256", &h])).unwrap();
        assert_eq!(o.sha256, Some("a".repeat(64)));
        assert!(parse(&s(&["-T", "ftp://h/r"])).is_err());
        assert!(parse(&s(&["-T", "/x", "--sha256", "12"])).is_err());
        assert!(parse(&s(&["-T", "/x", "--hostid", "a b"])).is_err());
        assert!(parse(&s(&["-T", "/x", "--hostid", "a\nb"])).is_err());
        assert!(parse(&s(&["-T", "/x", "--cloud", "-u", "/u"])).is_err());
        assert!(parse(&s(&["-T", "/x", "--bogus"]))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(parse(&s(&["-T"]))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
    }

    #[test]
    fn preflight_names_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("img.tar");
        let e = preflight(&s(&["--image", img.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(img.to_str().unwrap()) && e.contains("--image"),
            "{e}"
        );
        fs::write(&img, b"").unwrap();
        let ud = tmp.path().join("ud");
        let e = preflight(&s(&[
            "--image",
            img.to_str().unwrap(),
            "--userdata",
            ud.to_str().unwrap(),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(ud.to_str().unwrap()) && e.contains("--userdata"),
            "{e}"
        );
        let k = tmp.path().join("k");
        fs::write(&k, "\n# none\n").unwrap();
        let e = preflight(&s(&[
            "--image",
            img.to_str().unwrap(),
            "--auth-key",
            k.to_str().unwrap(),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("no public key"), "{e}");
    }

    #[test]
    fn seed_texts() {
        assert_eq!(
            meta_data("lxc-1234abcd", "c1", &[]),
            "instance-id: lxc-1234abcd\nlocal-hostname: c1\n"
        );
        let keys = vec!["ssh-ed25519 AAAA a@b".to_string()];
        assert_eq!(
            meta_data("lxc-x", "c1", &keys),
            "instance-id: lxc-x\nlocal-hostname: c1\npublic-keys:\n  - \"ssh-ed25519 AAAA a@b\"\n"
        );
        let u = default_user_data(&keys);
        assert!(u.starts_with("#cloud-config\n"));
        assert!(u.contains("ssh_authorized_keys:\n  - \"ssh-ed25519 AAAA a@b\"\n"));
        assert!(!default_user_data(&[]).contains("ssh_authorized_keys"));
        assert_eq!(
            parse_keys("\n# c\nssh-rsa A b\n  ssh-ed25519 B c \n"),
            vec!["ssh-rsa A b", "ssh-ed25519 B c"]
        );
        let h = random_hostid().unwrap();
        assert_eq!(h.len(), 8);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8000/a/b/rootfs.tar.xz").unwrap(),
            (
                "http://127.0.0.1:8000/a/b".to_string(),
                "rootfs.tar.xz".to_string()
            )
        );
        assert_eq!(
            split_url("https://h/r.tar.gz?x=1").unwrap(),
            ("https://h".to_string(), "r.tar.gz".to_string())
        );
        assert!(split_url("https://h/").is_err());
        assert!(split_url("https://h").is_err());
    }

    #[test]
    fn seed_never_follows_image_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("var/lib")).unwrap();
        fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("var/lib/cloud")).unwrap();
        assert!(safe_dir(&root, SEED_DIR)
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // an existing file symlink is replaced, not written through
        fs::create_dir(root.join("etc")).unwrap();
        fs::write(outside.join("target"), "keep").unwrap();
        symlink(outside.join("target"), root.join("etc/hostname")).unwrap();
        safe_write(&root.join("etc"), "hostname", b"c1\n", 0o644).unwrap();
        assert_eq!(fs::read_to_string(outside.join("target")).unwrap(), "keep");
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "c1\n"
        );
    }

    #[test]
    fn signals_from_init() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("sbin")).unwrap();
        fs::create_dir_all(r.join("bin")).unwrap();
        assert_eq!(init_signals(r), None);
        symlink("/bin/busybox", r.join("sbin/init")).unwrap();
        assert_eq!(init_signals(r), Some(("SIGUSR1", "SIGTERM")));
        fs::remove_file(r.join("sbin/init")).unwrap();
        symlink("../lib/systemd/systemd", r.join("sbin/init")).unwrap();
        assert_eq!(init_signals(r), Some(("SIGRTMIN+3", "SIGINT")));
    }

    #[test]
    fn config_like_lxc() {
        let cur = "# head\nlxc.rootfs.path = dir:/r\nlxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.uts.name = old\n\n";
        let c = rewrite_config(cur, "c1", Some(("SIGUSR1", "SIGTERM")));
        assert!(c.starts_with("# head\n\n# Common configuration"), "{c}");
        let spec = c.find("# Container specific configuration").unwrap();
        let net = c.find("# Network configuration").unwrap();
        assert!(spec < net);
        assert!(
            c[spec..net].contains(
                "lxc.rootfs.path = dir:/r\nlxc.uts.name = c1\nlxc.signal.halt = SIGUSR1\n"
            ),
            "{c}"
        );
        assert!(c[net..].contains("lxc.net.0.type = veth\nlxc.net.0.link = br0\n"));
        assert!(!c.contains("old"));
        // without a known init, the user's own signals stay
        let c = rewrite_config("lxc.signal.halt = SIGINT\n", "c1", None);
        assert!(c.contains("lxc.signal.halt = SIGINT\n"), "{c}");
    }
}
