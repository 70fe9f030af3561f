//! The debootstrap core of the `debian` and `ubuntu` built-ins. A [`Distro`] says what differs
//! (defaults, base packages, components, keyring, the files written into the cache and into
//! each container); everything else is shared: option parsing, the debootstrap command line,
//! the cache `<cache>/<distro>/<release>/<arch>/<variant>/rootfs` (built once in a partial
//! directory under a lock, renamed into place), the copy (`dir`) or overlay lower layer
//! (`-B overlay`) per container, and the config lines.

use crate::{accounts, cache, TemplateError, TemplateRun};
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one debootstrap-based distribution is.
pub struct Distro {
    /// Template name (`debian`, `ubuntu`): cache directory, error messages.
    pub name: &'static str,
    /// Human name (`Debian`, `Ubuntu`).
    pub pretty: &'static str,
    pub default_release: &'static str,
    /// Installed besides `--variant=minbase`: an init and networking tools.
    pub base_packages: &'static [&'static str],
    /// Archive components debootstrap may take packages from.
    pub components: &'static [&'static str],
    /// The mirror for an architecture.
    pub default_mirror: fn(arch: &str) -> &'static str,
    /// The keyring the Release file is checked against unless `--keyring`/`--no-check-gpg`.
    pub default_keyring: &'static str,
    /// Where that keyring comes from, for the error when it is missing.
    pub keyring_hint: &'static str,
    /// debootstrap script for releases this debootstrap has no script of.
    pub fallback_script: &'static str,
    /// Options only this distribution takes (besides the common ones).
    pub extra_options: &'static [&'static str],
    /// Checks of the parsed options beyond the common ones.
    pub check: fn(&Options) -> Result<(), TemplateError>,
    /// Distribution files in the freshly bootstrapped cache rootfs.
    pub finish_cache: fn(root: &Path, o: &Options) -> Result<(), TemplateError>,
    /// Per-container files under `r` (the rootfs, or an overlay's upper directory whose
    /// lower layer is `lower`).
    pub configure: fn(
        run: &TemplateRun,
        o: &Options,
        r: &Path,
        lower: Option<&Path>,
    ) -> Result<(), TemplateError>,
}

/// Options common to the debootstrap templates (some only some distributions accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub release: String,
    pub arch: String,
    pub mirror: String,
    /// Ubuntu: the mirror of `<release>-security` in sources.list.
    pub security_mirror: Option<String>,
    pub packages: Vec<String>,
    /// Ubuntu: the user made in each container (default `ubuntu`).
    pub user: Option<String>,
    pub password: Option<String>,
    pub keyring: Option<PathBuf>,
    pub no_check_gpg: bool,
    pub flush_cache: bool,
}

pub(crate) fn bad(template: &str, arg: &str, why: &str) -> TemplateError {
    TemplateError::bad(template, arg, why)
}

pub(crate) fn io(
    template: &'static str,
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> TemplateError {
    TemplateError::io(template, op, path)
}

fn plain(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn parse(d: &Distro, args: &[String]) -> Result<Options, TemplateError> {
    let t = d.name;
    let mut o = Options {
        release: d.default_release.into(),
        arch: crate::download::host_arch().into(),
        mirror: String::new(),
        security_mirror: None,
        packages: vec![],
        user: None,
        password: None,
        keyring: None,
        no_check_gpg: false,
        flush_cache: false,
    };
    let mut mirror = None;
    let mut args = crate::OptionArgs::new(t, args);
    while let Some(k) = args.next_key() {
        let mut val = |k: &str| args.value(k);
        let extra = |k: &str| d.extra_options.contains(&k);
        match k {
            "-r" | "--release" => o.release = val(k)?,
            "-a" | "--arch" => o.arch = val(k)?,
            "--mirror" => mirror = Some(val(k)?),
            "--packages" => {
                o.packages = val(k)?
                    .split([',', ' '])
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--password" => o.password = Some(val(k)?),
            "--keyring" => o.keyring = Some(val(k)?.into()),
            "--no-check-gpg" => o.no_check_gpg = true,
            "-F" | "--flush-cache" => o.flush_cache = true,
            "--security-mirror" if extra("--security-mirror") => o.security_mirror = Some(val(k)?),
            "-u" | "--user" if extra("--user") => o.user = Some(val(k)?),
            other => {
                return Err(bad(
                    t,
                    other,
                    &format!("unknown option (see `lxrs create -t {t} -h`)"),
                ))
            }
        }
    }
    if o.arch == "i686" {
        o.arch = "i386".into();
    }
    for (n, v) in [("--release", &o.release), ("--arch", &o.arch)] {
        if !plain(v) {
            return Err(bad(t, &format!("{n} {v}"), "must be a plain name"));
        }
    }
    if let Some(p) = o.packages.iter().find(|p| {
        !p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c))
    }) {
        return Err(bad(t, &format!("--packages {p}"), "not a package name"));
    }
    o.mirror = mirror.unwrap_or_else(|| (d.default_mirror)(&o.arch).to_string());
    for (n, m) in [
        ("--mirror", Some(&o.mirror)),
        ("--security-mirror", o.security_mirror.as_ref()),
    ] {
        let Some(m) = m else { continue };
        let scheme_ok = ["http://", "https://", "file:/"]
            .iter()
            .any(|s| m.starts_with(s));
        if !scheme_ok || m.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                t,
                &format!("{n} {m}"),
                "must be an http://, https:// or file:/ URL",
            ));
        }
    }
    if let Some(u) = &o.user {
        let ok = u
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && u.len() <= 32
            && u.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
        if !ok || u == "root" {
            return Err(bad(
                t,
                &format!("--user {u}"),
                "must be a plain user name (lower case, digits, '_', '-'), not root",
            ));
        }
    }
    if o.password
        .as_deref()
        .is_some_and(|p| p.contains(['\n', ':']))
    {
        return Err(bad(t, "--password", "cannot contain ':' or a newline"));
    }
    if o.no_check_gpg && o.keyring.is_some() {
        return Err(bad(
            t,
            "--no-check-gpg",
            "cannot be combined with --keyring",
        ));
    }
    let host = crate::download::host_arch();
    let foreign_ok = o.arch == host
        || (host == "amd64" && o.arch == "i386")
        || (host == "arm64" && o.arch == "armhf");
    if !foreign_ok {
        return Err(bad(
            t,
            &format!("--arch {}", o.arch),
            &format!("cannot run {} binaries on this {host} host", o.arch),
        ));
    }
    (d.check)(&o)?;
    Ok(o)
}

/// How debootstrap checks the Release file's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gpg {
    /// `--keyring=K --force-check-gpg`
    Keyring(PathBuf),
    /// `--no-check-gpg` (the user asked for it)
    NoCheck,
}

/// The keyring to use: `--keyring`, else the distribution's (which must exist), unless
/// `--no-check-gpg`. Never debootstrap's silent fallback to an unchecked bootstrap.
pub fn gpg(d: &Distro, o: &Options, default_keyring: &Path) -> Result<Gpg, TemplateError> {
    if o.no_check_gpg {
        return Ok(Gpg::NoCheck);
    }
    let (k, hint) = match &o.keyring {
        Some(k) => (k.clone(), "the file given with --keyring"),
        None => (default_keyring.to_path_buf(), d.keyring_hint),
    };
    if !k.is_file() {
        return Err(TemplateError::MissingKeyring {
            template: d.name.into(),
            path: k,
            hint: hint.into(),
        });
    }
    Ok(Gpg::Keyring(k))
}

/// debootstrap's script directory (`$DEBOOTSTRAP_DIR/scripts`, as debootstrap itself does).
pub fn scripts_dir() -> PathBuf {
    std::env::var_os("DEBOOTSTRAP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/share/debootstrap".into())
        .join("scripts")
}

/// The script argument: none when debootstrap knows the release, else the distribution's
/// fallback (Ubuntu: `gutsy`, which every Ubuntu release since 7.10 links to).
pub fn script(d: &Distro, release: &str, scripts: &Path) -> Option<PathBuf> {
    if scripts.join(release).exists() {
        None
    } else {
        Some(scripts.join(d.fallback_script))
    }
}

/// Packages given to `--include`.
pub fn include(d: &Distro, o: &Options) -> String {
    let mut v: Vec<&str> = d.base_packages.to_vec();
    for p in &o.packages {
        if !v.contains(&p.as_str()) {
            v.push(p);
        }
    }
    v.join(",")
}

/// The debootstrap arguments (after the program name) that bootstrap `root`.
pub fn debootstrap_args(
    d: &Distro,
    o: &Options,
    gpg: &Gpg,
    root: &Path,
    scripts: &Path,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--variant=minbase".into(),
        format!("--arch={}", o.arch).into(),
        format!("--components={}", d.components.join(",")).into(),
        format!("--include={}", include(d, o)).into(),
    ];
    match gpg {
        Gpg::Keyring(k) => {
            let mut s = OsString::from("--keyring=");
            s.push(k);
            a.push(s);
            a.push("--force-check-gpg".into());
        }
        Gpg::NoCheck => a.push("--no-check-gpg".into()),
    }
    a.push(o.release.clone().into());
    a.push(root.into());
    a.push(o.mirror.clone().into());
    if let Some(s) = script(d, &o.release, scripts) {
        a.push(s.into());
    }
    a
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

/// Arguments parsed, debootstrap present, keyring settled: before anything is created.
pub fn preflight(d: &Distro, args: &[String]) -> Result<Options, TemplateError> {
    let o = parse(d, args)?;
    require_tool(d.name, "debootstrap", "debootstrap")?;
    gpg(d, &o, Path::new(d.default_keyring))?;
    Ok(o)
}

/// Cache variant: `default`, or the extra package set; `+nogpg` when unverified, so an
/// unchecked bootstrap is never reused by a create that asked for a checked one.
pub fn variant(o: &Options) -> String {
    let mut v = if o.packages.is_empty() {
        "default".to_string()
    } else {
        let mut p = o.packages.clone();
        p.sort();
        p.join("+")
    };
    if o.no_check_gpg {
        v.push_str("+nogpg");
    }
    v
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> std::io::Result<(std::fs::File, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds: [libc::c_int; 2] = [-1; 2];
    // SAFETY: pipe2 writes two new descriptors into the array, which lives across the call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Run debootstrap with its stdout and stderr (where it says `I:` and `E:`) on one pipe: passed
/// on to our stderr unless quiet, the last lines kept for the error.
fn run_debootstrap(
    d: &Distro,
    o: &Options,
    mut c: Command,
    quiet: bool,
) -> Result<(), TemplateError> {
    let what = format!(
        "{} (debootstrap {} {} from {})",
        d.name, o.release, o.arch, o.mirror
    );
    let pipe_err = io(d.name, "make a pipe for", Path::new("debootstrap"));
    let (rd, wr) = pipe().map_err(pipe_err)?;
    let wr2 = wr
        .try_clone()
        .map_err(io(d.name, "dup a pipe for", Path::new("debootstrap")))?;
    c.stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2));
    let spawned = c.spawn();
    // the parent's copies of the write end go with the Command, so reads see EOF at exit
    drop(c);
    let mut child = spawned.map_err(io(d.name, "run", Path::new("debootstrap")))?;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    for line in std::io::BufReader::new(rd).lines() {
        let Ok(line) = line else { break };
        if !quiet {
            eprintln!("{line}");
        }
        if line.trim().is_empty() {
            continue;
        }
        if tail.len() == 4 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let st = child
        .wait()
        .map_err(io(d.name, "wait for", Path::new("debootstrap")))?;
    if !st.success() {
        let last: Vec<String> = tail.into_iter().collect();
        return Err(TemplateError::Failed {
            template: what,
            status: if last.is_empty() {
                st.to_string()
            } else {
                format!("{st}; debootstrap said: {}", last.join(" | "))
            },
        });
    }
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Files every debootstrap container needs in the cache: what a container cannot do masked
/// (kernel modules, udev), apt's downloaded packages removed.
pub fn finish_cache_common(t: &'static str, root: &Path) -> Result<(), TemplateError> {
    let sysd = root.join("etc/systemd/system");
    std::fs::create_dir_all(&sysd).map_err(io(t, "mkdir", &sysd))?;
    for unit in [
        "systemd-udevd.service",
        "systemd-udevd-control.socket",
        "systemd-udevd-kernel.socket",
        "systemd-modules-load.service",
    ] {
        mask(t, root, unit)?;
    }
    let archives = root.join("var/cache/apt/archives");
    if let Ok(rd) = std::fs::read_dir(&archives) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// `systemctl mask UNIT`, offline.
pub fn mask(t: &'static str, root: &Path, unit: &str) -> Result<(), TemplateError> {
    let p = root.join("etc/systemd/system").join(unit);
    if std::fs::symlink_metadata(&p).is_err() {
        std::os::unix::fs::symlink("/dev/null", &p).map_err(io(t, "mask", &p))?;
    }
    Ok(())
}

/// eth0 by DHCP through systemd-networkd, enabled by its wants symlink.
pub fn networkd_dhcp(t: &'static str, root: &Path) -> Result<(), TemplateError> {
    let netdir = root.join("etc/systemd/network");
    std::fs::create_dir_all(&netdir).map_err(io(t, "mkdir", &netdir))?;
    let f = netdir.join("eth0.network");
    std::fs::write(&f, "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
        .map_err(io(t, "write", &f))?;
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).map_err(io(t, "mkdir", &wants))?;
    let link = wants.join("systemd-networkd.service");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("/lib/systemd/system/systemd-networkd.service", &link)
            .map_err(io(t, "symlink", &link))?;
    }
    Ok(())
}

fn build_cache(d: &Distro, o: &Options, partial: &Path, quiet: bool) -> Result<(), TemplateError> {
    let debootstrap = require_tool(d.name, "debootstrap", "debootstrap")?;
    let gpg = gpg(d, o, Path::new(d.default_keyring))?;
    let root = partial.join("rootfs");
    if !quiet {
        eprintln!(
            "Bootstrapping {} {} ({}) from {} into the cache; this takes a few minutes",
            d.pretty, o.release, o.arch, o.mirror
        );
    }
    let mut c = Command::new(debootstrap);
    c.args(debootstrap_args(d, o, &gpg, &root, &scripts_dir()));
    run_debootstrap(d, o, c, quiet)?;
    finish_cache_common(d.name, &root)?;
    (d.finish_cache)(&root, o)?;
    std::fs::write(
        partial.join("build_id"),
        format!("{}\n", crate::publish::build_id(now())),
    )
    .map_err(io(d.name, "write", partial))?;
    Ok(())
}

/// The cache entry, built if need be; its lock is held while the caller uses it.
fn cached(
    d: &Distro,
    run: &TemplateRun,
    o: &Options,
) -> Result<(PathBuf, cache::Guard), TemplateError> {
    let entry = cache::dir(&[d.name, &o.release, &o.arch, &variant(o)]);
    if o.flush_cache {
        let users = lxrs_rootfs::live_snapshots(&entry);
        if !users.is_empty() {
            return Err(bad(
                d.name,
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
        |partial| build_cache(d, o, partial, run.quiet),
    )?;
    Ok((entry, guard))
}

/// `dir`: the cached rootfs copied into the container, then configured.
pub fn run(d: &Distro, run: &TemplateRun) -> Result<(), TemplateError> {
    let o = preflight(d, &run.args)?;
    let (entry, _guard) = cached(d, run, &o)?;
    lxrs_rootfs::copy_tree(&entry.join("rootfs"), &run.rootfs).map_err(|e| TemplateError::Io {
        template: d.name.into(),
        op: "copy cached rootfs",
        path: entry.join("rootfs"),
        source: std::io::Error::other(e),
    })?;
    (d.configure)(run, &o, &run.rootfs, None)?;
    install_config(d, run, &o)
}

/// `-B overlay`: the cached rootfs is the lower layer (constant time, nothing copied); the
/// container's own files go to `<path>/delta0`.
pub fn run_overlay(d: &Distro, run: &TemplateRun) -> Result<(), TemplateError> {
    let t = d.name;
    let o = preflight(d, &run.args)?;
    let (entry, _guard) = cached(d, run, &o)?;
    let lower = entry.join("rootfs");
    if lower.to_string_lossy().contains([',', ':']) {
        return Err(bad(
            t,
            &lower.display().to_string(),
            "an overlay lower directory cannot contain ',' or ':'",
        ));
    }
    let upper = run.path.join("delta0");
    let work = run.path.join("olwork");
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(io(t, "mkdir", dir))?;
    }
    accounts::mkdir_like(&upper, &lower, "etc").map_err(io(t, "mkdir", &upper.join("etc")))?;
    lxrs_rootfs::record_snapshot(&entry, &run.path).map_err(io(t, "record snapshot in", &entry))?;
    let cfg = run.config_path();
    let text = std::fs::read_to_string(&cfg).map_err(io(t, "read", &cfg))?;
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
    std::fs::write(&cfg, out).map_err(io(t, "write", &cfg))?;
    (d.configure)(run, &o, &upper, Some(&lower))?;
    install_config(d, run, &o)
}

/// `lxc.arch` for a Debian architecture name.
pub fn lxc_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "i386" => "i686",
        "arm64" => "aarch64",
        "armhf" => "armv7l",
        a => a,
    }
}

/// The distribution lines of a systemd container's config (what `lxc.uts.name` goes with).
pub fn distribution_lines(pretty: &str, template: &str, arch: &str) -> String {
    format!(
        "# {pretty} (lxrs built-in {template} template)\n\
         lxc.arch = {}\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n\
         lxc.autodev = 1\n\
         lxc.tty.max = 4\n\
         lxc.pty.max = 1024\n\
         lxc.signal.halt = SIGRTMIN+3\n\
         lxc.signal.reboot = SIGINT\n",
        lxc_arch(arch)
    )
}

/// The container's config in LXC's layout ([`crate::confwrite`]): distribution lines, then
/// the create's own lines, `lxc.uts.name`, network last.
fn install_config(d: &Distro, run: &TemplateRun, o: &Options) -> Result<(), TemplateError> {
    let cfg = run.config_path();
    crate::confwrite::install(
        &cfg,
        &distribution_lines(d.pretty, d.name, &o.arch),
        &[],
        &run.name,
    )
    .map_err(io(d.name, "write", &cfg))
}

/// `/etc/hosts` of a container named `name`.
pub fn hosts(name: &str) -> String {
    format!(
        "127.0.0.1   localhost\n127.0.1.1   {name}\n\n\
         # The following lines are desirable for IPv6 capable hosts\n\
         ::1     localhost ip6-localhost ip6-loopback\n\
         fe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\n\
         ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"
    )
}

/// Per-container files every debootstrap container gets: hostname, hosts, an empty machine-id
/// (systemd makes a fresh one at first boot).
pub fn configure_common(
    t: &'static str,
    name: &str,
    r: &Path,
    lower: Option<&Path>,
) -> Result<(), TemplateError> {
    // modes of a Debian system's own files (not of whatever debootstrap copied from the host)
    for (rel, text, mode) in [
        ("etc/hostname", format!("{name}\n"), 0o644),
        ("etc/hosts", hosts(name), 0o644),
        ("etc/machine-id", String::new(), 0o444),
    ] {
        accounts::write_file_mode(r, lower, rel, &text, Some(mode)).map_err(io(
            t,
            "write",
            &r.join(rel),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn args_of(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
