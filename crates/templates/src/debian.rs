//! The built-in `debian` template: a Debian (systemd) system bootstrapped by the host's
//! `debootstrap` into the cache `<cache>/debian/<release>/<arch>/<variant>/rootfs` (built once,
//! under a lock; `--flush-cache` rebuilds), then copied into each new container and configured:
//! hostname, hosts, eth0 by DHCP through systemd-networkd, root password or a locked root.

use crate::{cache, TemplateError, TemplateRun};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const HELP: &str = "\
Usage: lxrs create -t debian -n NAME -- [OPTIONS]
  -r, --release RELEASE   Debian release (default: bookworm)
  -a, --arch ARCH         architecture (default: the host's; i386 works on amd64 hosts)
      --mirror URL        Debian mirror (default: http://deb.debian.org/debian)
      --packages A,B      extra packages to install (becomes part of the cache key)
      --password PW       root password (default: root login locked; use `lxrs attach`)
  -F, --flush-cache       bootstrap again even when cached
Needs debootstrap on the host (Debian package: debootstrap).";

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// What every lxrs Debian container gets besides `minbase`: an init, networking tools.
const BASE_PACKAGES: &str = "systemd-sysv,iproute2,ifupdown,procps,netbase,ca-certificates";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub release: String,
    pub arch: String,
    pub mirror: String,
    pub packages: Vec<String>,
    pub password: Option<String>,
    pub flush_cache: bool,
}

fn bad(arg: &str, why: &str) -> TemplateError {
    TemplateError::BadArgument {
        template: "debian".into(),
        arg: arg.into(),
        why: why.into(),
    }
}

pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
    let mut o = Options {
        release: "bookworm".into(),
        arch: crate::download::host_arch().into(),
        mirror: DEFAULT_MIRROR.into(),
        packages: vec![],
        password: None,
        flush_cache: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (k, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut val = |k: &str| -> Result<String, TemplateError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().cloned().ok_or_else(|| bad(k, "needs a value")),
            }
        };
        match k {
            "-r" | "--release" => o.release = val(k)?,
            "-a" | "--arch" => o.arch = val(k)?,
            "--mirror" => o.mirror = val(k)?,
            "--packages" => {
                o.packages = val(k)?
                    .split([',', ' '])
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--password" => o.password = Some(val(k)?),
            "-F" | "--flush-cache" => o.flush_cache = true,
            other => {
                return Err(bad(
                    other,
                    "unknown option (see `lxrs create -t debian -h`)",
                ))
            }
        }
    }
    for (n, v) in [("--release", &o.release), ("--arch", &o.arch)] {
        if v.is_empty()
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(&format!("{n} {v}"), "must be a plain name"));
        }
    }
    if let Some(p) = o.packages.iter().find(|p| {
        !p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c))
    }) {
        return Err(bad(&format!("--packages {p}"), "not a Debian package name"));
    }
    let host = crate::download::host_arch();
    let foreign_ok = o.arch == host
        || (host == "amd64" && o.arch == "i386")
        || (host == "arm64" && o.arch == "armhf");
    if !foreign_ok {
        return Err(bad(
            &format!("--arch {}", o.arch),
            &format!("cannot run {} binaries on this {host} host", o.arch),
        ));
    }
    Ok(o)
}

/// Host tools, checked before anything is created.
pub fn preflight(args: &[String]) -> Result<Options, TemplateError> {
    let o = parse(args)?;
    require_tool("debian", "debootstrap", "debootstrap")?;
    Ok(o)
}

pub(crate) fn require_tool(
    template: &str,
    tool: &str,
    package: &str,
) -> Result<PathBuf, TemplateError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    for d in std::env::split_paths(&path) {
        let p = d.join(tool);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(TemplateError::MissingTool {
        template: template.into(),
        tool: tool.into(),
        package: package.into(),
    })
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError {
    let path = path.to_path_buf();
    move |source| TemplateError::Io {
        template: "debian".into(),
        op,
        path,
        source,
    }
}

fn run_cmd(mut c: Command, what: &str, quiet: bool) -> Result<(), TemplateError> {
    if quiet {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let st = c.status().map_err(io("run", Path::new(what)))?;
    if !st.success() {
        return Err(TemplateError::Failed {
            template: format!("debian ({what})"),
            status: st.to_string(),
        });
    }
    Ok(())
}

/// Cache variant: `default`, or a short name for the extra package set.
fn variant(o: &Options) -> String {
    if o.packages.is_empty() {
        "default".into()
    } else {
        let mut p = o.packages.clone();
        p.sort();
        p.join("+")
    }
}

fn build_cache(o: &Options, partial: &Path, quiet: bool) -> Result<(), TemplateError> {
    let debootstrap = require_tool("debian", "debootstrap", "debootstrap")?;
    let root = partial.join("rootfs");
    let mut include = BASE_PACKAGES.to_string();
    for p in &o.packages {
        include.push(',');
        include.push_str(p);
    }
    if !quiet {
        eprintln!(
            "Bootstrapping Debian {} ({}) from {} into the cache; this takes a few minutes",
            o.release, o.arch, o.mirror
        );
    }
    let mut c = Command::new(debootstrap);
    c.arg("--variant=minbase")
        .arg(format!("--arch={}", o.arch))
        .arg(format!("--include={include}"))
        .arg(&o.release)
        .arg(&root)
        .arg(&o.mirror);
    run_cmd(c, "debootstrap", quiet)?;
    // networking: eth0 by DHCP through systemd-networkd (enabled by its wants symlink)
    let netdir = root.join("etc/systemd/network");
    std::fs::create_dir_all(&netdir).map_err(io("mkdir", &netdir))?;
    std::fs::write(
        netdir.join("eth0.network"),
        "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n",
    )
    .map_err(io("write", &netdir.join("eth0.network")))?;
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).map_err(io("mkdir", &wants))?;
    let link = wants.join("systemd-networkd.service");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("/lib/systemd/system/systemd-networkd.service", &link)
            .map_err(io("symlink", &link))?;
    }
    // what a container cannot do: no kernel modules, no hardware clock, no udev
    for unit in [
        "systemd-udevd.service",
        "systemd-udevd-control.socket",
        "systemd-udevd-kernel.socket",
        "systemd-modules-load.service",
    ] {
        let p = root.join("etc/systemd/system").join(unit);
        if std::fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink("/dev/null", &p).map_err(io("mask", &p))?;
        }
    }
    // apt's downloaded packages are not needed in every container
    let archives = root.join("var/cache/apt/archives");
    if let Ok(rd) = std::fs::read_dir(&archives) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::write(
        partial.join("build_id"),
        format!("{}\n", crate::publish::build_id(now())),
    )
    .map_err(io("write", partial))?;
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The lines this template appends to the container's config.
pub fn config_lines(name: &str, arch: &str) -> String {
    let lxc_arch = match arch {
        "amd64" => "x86_64",
        "i386" => "i686",
        "arm64" => "aarch64",
        "armhf" => "armv7l",
        a => a,
    };
    format!(
        "\n# Debian configuration (lxrs built-in debian template)\n\
         lxc.arch = {lxc_arch}\n\
         lxc.uts.name = {name}\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n\
         lxc.autodev = 1\n\
         lxc.tty.max = 4\n\
         lxc.pty.max = 1024\n\
         lxc.signal.halt = SIGRTMIN+3\n\
         lxc.signal.reboot = SIGINT\n"
    )
}

/// The cache entry, built if need be; its lock is held while the caller uses it.
fn cached(run: &TemplateRun, o: &Options) -> Result<(PathBuf, cache::Guard), TemplateError> {
    let entry = cache::dir(&["debian", &o.release, &o.arch, &variant(o)]);
    if o.flush_cache {
        let users = lxrs_rootfs::live_snapshots(&entry);
        if !users.is_empty() {
            return Err(bad(
                "--flush-cache",
                &format!(
                    "the cached rootfs {} is the overlay lower layer of {}: destroy those first",
                    entry.join("rootfs").display(),
                    users
                        .iter()
                        .map(|u| u.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let guard = cache::ensure(
        &entry,
        o.flush_cache,
        |have| {
            Ok(
                if have.is_some_and(|h| h.join("rootfs/etc/debian_version").is_file()) {
                    cache::Decision::Keep
                } else {
                    cache::Decision::Build
                },
            )
        },
        |partial| build_cache(o, partial, run.quiet),
    )?;
    Ok((entry, guard))
}

pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    let o = preflight(&run.args)?;
    let (entry, _guard) = cached(run, &o)?;
    lxrs_rootfs::copy_tree(&entry.join("rootfs"), &run.rootfs).map_err(|e| TemplateError::Io {
        template: "debian".into(),
        op: "copy cached rootfs",
        path: entry.join("rootfs"),
        source: std::io::Error::other(e),
    })?;
    configure(run, &o, &run.rootfs)
}

/// `-B overlay`: the cached rootfs is the lower layer (constant time, nothing copied); the
/// container's own files go to `<path>/delta0`.
pub fn run_overlay(run: &TemplateRun) -> Result<(), TemplateError> {
    let o = preflight(&run.args)?;
    if o.password.is_some() {
        return Err(bad(
            "--password",
            "not with -B overlay; set it later: lxrs attach -n NAME -- passwd",
        ));
    }
    let (entry, _guard) = cached(run, &o)?;
    let lower = entry.join("rootfs");
    if lower.to_string_lossy().contains([',', ':']) {
        return Err(bad(
            &lower.display().to_string(),
            "an overlay lower directory cannot contain ',' or ':'",
        ));
    }
    let upper = run.path.join("delta0");
    let work = run.path.join("olwork");
    for d in [&upper, &work] {
        std::fs::create_dir(d).map_err(io("mkdir", d))?;
    }
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let md = std::fs::metadata(lower.join("etc")).map_err(io("stat", &lower.join("etc")))?;
        let etc = upper.join("etc");
        std::fs::create_dir(&etc).map_err(io("mkdir", &etc))?;
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(io("chmod", &etc))?;
        std::os::unix::fs::chown(&etc, Some(md.uid()), Some(md.gid()))
            .map_err(io("chown", &etc))?;
    }
    lxrs_rootfs::record_snapshot(&entry, &run.path).map_err(io("record snapshot in", &entry))?;
    let cfg = run.config_path();
    let text = std::fs::read_to_string(&cfg).map_err(io("read", &cfg))?;
    let value = format!("overlay:{}:{}", lower.display(), upper.display());
    let mut out = String::new();
    for l in text.lines() {
        let k = l.trim_start().split('=').next().unwrap_or("").trim();
        if k == "lxc.rootfs.path" || k == "lxc.rootfs" {
            out.push_str(&format!("lxc.rootfs.path = {value}\n"));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    std::fs::write(&cfg, out).map_err(io("write", &cfg))?;
    configure(run, &o, &upper)
}

/// Per-container files, written under `r` (the rootfs, or an overlay's upper directory).
fn configure(run: &TemplateRun, o: &Options, r: &Path) -> Result<(), TemplateError> {
    let w = |rel: &str, s: &str| -> Result<(), TemplateError> {
        let p = r.join(rel);
        // never write through a symlink the image carries
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&p).map_err(io("replace symlink", &p))?;
        }
        std::fs::write(&p, s).map_err(io("write", &p))
    };
    w("etc/hostname", &format!("{}\n", run.name))?;
    w(
        "etc/hosts",
        &format!(
            "127.0.0.1   localhost\n127.0.1.1   {}\n\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n",
            run.name
        ),
    )?;
    // machine-id: empty so systemd makes a fresh one at first boot
    w("etc/machine-id", "")?;
    if let Some(pw) = &o.password {
        let mut c = Command::new("chroot");
        c.arg(r)
            .arg("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = c.spawn().map_err(io("run chroot chpasswd in", r))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(format!("root:{pw}\n").as_bytes())
            .map_err(io("write to chpasswd for", r))?;
        let st = child.wait().map_err(io("wait for chpasswd in", r))?;
        if !st.success() {
            return Err(TemplateError::Failed {
                template: "debian (chpasswd)".into(),
                status: st.to_string(),
            });
        }
    } else if !run.quiet {
        println!(
            "The root password is not set (root login is locked).\n\
             Use `lxrs attach -n {}` to get a root shell, then `passwd` to set one.",
            run.name
        );
    }
    let cfg = run.config_path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&cfg)
        .map_err(io("open", &cfg))?;
    f.write_all(config_lines(&run.name, &o.arch).as_bytes())
        .map_err(io("append to", &cfg))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_config() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let o = parse(&s(&[
            "--release",
            "trixie",
            "--packages",
            "curl,vim",
            "--password=x",
        ]))
        .unwrap();
        assert_eq!(
            (o.release.as_str(), o.packages.len(), o.password.as_deref()),
            ("trixie", 2, Some("x"))
        );
        assert_eq!(variant(&o), "curl+vim");
        assert!(parse(&s(&["--release", "../x"])).is_err());
        assert!(parse(&s(&["--packages", "a;rm"])).is_err());
        assert!(parse(&s(&["--nope"])).is_err());
        let c = config_lines("web", "amd64");
        assert!(c.contains("lxc.signal.halt = SIGRTMIN+3\n") && c.contains("lxc.uts.name = web\n"));
        assert!(c.contains("lxc.arch = x86_64\n"));
    }

    #[test]
    fn missing_tool_names_the_package() {
        let e = require_tool("debian", "no-such-tool-lxrs", "no-such-package")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no-such-tool-lxrs") && e.contains("Debian package: no-such-package"),
            "{e}"
        );
    }
}
