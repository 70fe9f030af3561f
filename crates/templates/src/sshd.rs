//! The built-in `sshd` template: an application container running the host's sshd, as LXC's
//! `lxc-sshd` does (reference section 7.3).
//!
//! The rootfs is a skeleton: the host's `/usr` (and `/bin`, `/sbin`, `/lib*` where they are
//! real directories, not merged-/usr symlinks) are bind-mounted read-only by `lxc.mount.entry`
//! lines the template appends; `/etc` is the container's own, with `passwd`/`group`/`shadow`
//! for root and the privilege-separation user, an `sshd_config`, and host keys generated for
//! this container by `ssh-keygen`. `lxc.init.cmd` runs `sshd -D -e` as the container's init
//! (sshd reaps its own children; SIGTERM, the configured halt signal, stops it). LXC wraps it
//! in its `init.lxc`; lxrs needs no helper binary. Root logs in with the key from
//! `--auth-key` only (no passwords).

use crate::{TemplateError, TemplateRun};
use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const HELP: &str = "\
Usage: lxrs create -t sshd -n NAME -- [OPTIONS]
An application container running the host's sshd (as LXC's lxc-sshd): a minimal rootfs,
the host's /usr (and /bin, /sbin, /lib* when they are not symlinks into /usr) bind-mounted
read-only, /etc/ssh with host keys generated for the container, and `sshd -D -e` as init.

Template options (after --):
  -S, --auth-key FILE   public key(s) to install as root's ~/.ssh/authorized_keys
                        (without it nobody can log in until a key is added, e.g. with
                        `lxrs attach`; password logins are disabled)

Needs on the host: sshd (Debian package openssh-server; the service itself need not run)
and ssh-keygen (openssh-client). Privileged containers only.
Give the container a network (e.g. lxc.net.0.type = veth) to reach it: ssh root@ADDRESS.";

const TEMPLATE: &str = "sshd";

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub auth_key: Option<PathBuf>,
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
        let mut val = |k: &str| args.value(k);
        match k {
            "-S" | "--auth-key" => {
                let v = val(k)?;
                if v.is_empty() {
                    return Err(bad(k, "needs a file name"));
                }
                o.auth_key = Some(v.into())
            }
            "--mapped-uid" | "--mapped-gid" => {
                return Err(bad(
                    k,
                    "this template cannot make unprivileged containers (it binds the host's /usr)",
                ))
            }
            other => {
                return Err(bad(other, "unknown option (see `lxrs create -t sshd -h`)"));
            }
        }
    }
    Ok(o)
}

/// What a run needs, all checked before anything is created.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub options: Options,
    /// The host's sshd, canonical (e.g. `/usr/sbin/sshd`): the same path inside.
    pub sshd: PathBuf,
    pub ssh_keygen: PathBuf,
    /// Content of `--auth-key`.
    pub auth_keys: Option<String>,
}

/// Arguments, host tools and the key file, before anything is created.
pub fn preflight(args: &[String]) -> Result<Prepared, TemplateError> {
    let options = parse(args)?;
    let sshd = require_tool("sshd", "openssh-server")?;
    let ssh_keygen = require_tool("ssh-keygen", "openssh-client")?;
    let sshd = fs::canonicalize(&sshd).map_err(io("resolve", &sshd))?;
    if !BOUND.iter().any(|d| sshd.starts_with(d)) {
        return Err(bad(
            &sshd.display().to_string(),
            "the host's sshd must live under /usr, /bin or /sbin (those are what the container sees)",
        ));
    }
    let auth_keys = match &options.auth_key {
        None => None,
        Some(p) => Some(read_keys(p)?),
    };
    Ok(Prepared {
        options,
        sshd,
        ssh_keygen,
        auth_keys,
    })
}

/// A host tool from `$PATH` (`/usr/sbin:/usr/bin:/sbin:/bin` when unset), else
/// [`TemplateError::MissingTool`] naming it and its Debian package.
pub fn require_tool(tool: &str, package: &str) -> Result<PathBuf, TemplateError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    for d in std::env::split_paths(&path) {
        let p = d.join(tool);
        if fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Ok(p);
        }
    }
    Err(TemplateError::MissingTool {
        template: TEMPLATE.into(),
        tool: tool.into(),
        package: package.into(),
    })
}

/// Read an authorized_keys file: it must hold at least one key line.
fn read_keys(p: &Path) -> Result<String, TemplateError> {
    let t = fs::read_to_string(p).map_err(io("read --auth-key file", p))?;
    let keys = t
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    if keys == 0 {
        return Err(bad(
            &format!("--auth-key {}", p.display()),
            "the file holds no public key",
        ));
    }
    let mut t = t;
    if !t.ends_with('\n') {
        t.push('\n');
    }
    Ok(t)
}

/// Top-level host directories the container may see (read-only).
const BOUND: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// How one host top-level directory appears in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDir {
    /// A symlink into `/usr` (merged /usr): the same symlink in the rootfs.
    Link { name: String, target: PathBuf },
    /// A real directory: bind-mounted read-only.
    Bind { name: String },
}

/// The host's layout of `/usr`, `/bin`, `/sbin`, `/lib*` under `host_root` (normally `/`).
pub fn host_layout(host_root: &Path) -> Vec<HostDir> {
    let mut v = Vec::new();
    for d in BOUND {
        let name = d.trim_start_matches('/').to_string();
        let p = host_root.join(&name);
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        if md.file_type().is_symlink() {
            let Ok(target) = fs::read_link(&p) else {
                continue;
            };
            let abs = Path::new("/").join(&target);
            if name != "usr" && (abs.starts_with("/usr") || target.starts_with("usr")) {
                v.push(HostDir::Link { name, target });
                continue;
            }
            // a symlink elsewhere: bind what it points to
            if p.is_dir() {
                v.push(HostDir::Bind { name });
            }
        } else if md.is_dir() {
            v.push(HostDir::Bind { name });
        }
    }
    v
}

/// The `sshd_config` of the container: keys only, no passwords, no PAM.
pub fn sshd_config() -> String {
    "\
# lxrs sshd template
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_rsa_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
Subsystem sftp internal-sftp
"
    .to_string()
}

/// The lines this template appends to the container's config.
pub fn config_lines(name: &str, sshd: &Path, layout: &[HostDir]) -> String {
    let mut s = format!(
        "\n# sshd template: the host's sshd, host directories bound read-only\n\
         lxc.uts.name = {name}\n\
         lxc.init.cmd = {} -D -e\n\
         lxc.signal.halt = SIGTERM\n\
         lxc.autodev = 1\n\
         lxc.pty.max = 1024\n\
         lxc.cap.drop = sys_module mac_admin mac_override sys_time\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n",
        sshd.display()
    );
    for d in layout {
        if let HostDir::Bind { name } = d {
            s.push_str(&format!(
                "lxc.mount.entry = /{name} {name} none ro,bind 0 0\n"
            ));
        }
    }
    s
}

fn mkdir(path: &Path, mode: u32) -> Result<(), TemplateError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io("mkdir", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), TemplateError> {
    fs::write(path, contents).map_err(io("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

fn keygen(ssh_keygen: &Path, kind: &str, file: &Path, comment: &str) -> Result<(), TemplateError> {
    let mut c = Command::new(ssh_keygen);
    c.args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if kind == "rsa" {
        c.args(["-b", "3072"]);
    }
    let out = c.output().map_err(io("execute", ssh_keygen))?;
    if !out.status.success() {
        return Err(TemplateError::Failed {
            template: format!("{TEMPLATE} (ssh-keygen -t {kind} -f {})", file.display()),
            status: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// Fill `run.rootfs` and append to the config.
pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    let p = preflight(&run.args)?;
    let root = &run.rootfs;
    mkdir(root, 0o755)?;
    let layout = host_layout(Path::new("/"));
    mkdir(&root.join("usr"), 0o755)?;
    for d in &layout {
        match d {
            HostDir::Link { name, target } => {
                let l = root.join(name);
                symlink(target, &l).map_err(io("symlink", &l))?;
            }
            HostDir::Bind { name } => mkdir(&root.join(name), 0o755)?,
        }
    }
    for (d, mode) in [
        ("etc/ssh", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("root", 0o700),
        ("home", 0o755),
        ("tmp", 0o1777),
        ("run/sshd", 0o755),
        ("var/empty/sshd", 0o755),
        ("var/lib/empty/sshd", 0o755),
        ("var/log", 0o755),
    ] {
        mkdir(&root.join(d), mode)?;
    }
    let var_run = root.join("var/run");
    symlink("../run", &var_run).map_err(io("symlink", &var_run))?;

    let shell = if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let etc = root.join("etc");
    write(
        &etc.join("passwd"),
        &format!(
            "root:x:0:0:root:/root:{shell}\nsshd:x:74:65534:Privilege-separated SSH:/run/sshd:/usr/sbin/nologin\n"
        ),
        0o644,
    )?;
    write(&etc.join("group"), "root:x:0:\nnogroup:x:65534:\n", 0o644)?;
    // `*`: no password can match, yet the account is not locked (key logins work)
    write(
        &etc.join("shadow"),
        "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n",
        0o600,
    )?;
    write(
        &etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
        0o644,
    )?;
    write(&etc.join("hostname"), &format!("{}\n", run.name), 0o644)?;
    write(
        &etc.join("hosts"),
        &format!("127.0.0.1 localhost\n127.0.1.1 {}\n", run.name),
        0o644,
    )?;
    write(&etc.join("fstab"), "", 0o644)?;
    write(&etc.join("ssh/sshd_config"), &sshd_config(), 0o644)?;
    if Path::new("/etc/ssh/moduli").is_file() {
        let m = etc.join("ssh/moduli");
        fs::copy("/etc/ssh/moduli", &m).map_err(io("copy /etc/ssh/moduli to", &m))?;
    }
    let comment = format!("root@{}", run.name);
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let f = etc.join(format!("ssh/ssh_host_{kind}_key"));
        keygen(&p.ssh_keygen, kind, &f, &comment)?;
    }
    match &p.auth_keys {
        Some(keys) => {
            mkdir(&root.join("root/.ssh"), 0o700)?;
            write(&root.join("root/.ssh/authorized_keys"), keys, 0o600)?;
            if !run.quiet {
                if let Some(k) = &p.options.auth_key {
                    println!(
                        "Inserted SSH public key from {} into /root/.ssh/authorized_keys",
                        k.display()
                    );
                }
            }
        }
        None if !run.quiet => println!(
            "No --auth-key: nobody can log in over ssh until a key is added to /root/.ssh/authorized_keys"
        ),
        None => {}
    }

    let cfg = run.config_path();
    let mut text = fs::read_to_string(&cfg).map_err(io("read", &cfg))?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&config_lines(&run.name, &p.sshd, &layout));
    TemplateError::write_config(TEMPLATE, &cfg, &text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(
            parse(&s(&["--auth-key=/k"])).unwrap().auth_key,
            Some(PathBuf::from("/k"))
        );
        assert_eq!(
            parse(&s(&["-S", "/k"])).unwrap().auth_key,
            Some(PathBuf::from("/k"))
        );
        assert!(parse(&s(&["--auth-key"]))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        assert!(parse(&s(&["--bogus"]))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(parse(&s(&["--mapped-uid", "1000"]))
            .unwrap_err()
            .to_string()
            .contains("unprivileged"));
    }

    #[test]
    fn key_file_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope.pub");
        let e = read_keys(&missing).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        let empty = tmp.path().join("empty.pub");
        fs::write(&empty, "# nothing\n\n").unwrap();
        let e = read_keys(&empty).unwrap_err().to_string();
        assert!(e.contains("no public key"), "{e}");
        let k = tmp.path().join("k.pub");
        fs::write(&k, "ssh-ed25519 AAAA x@y").unwrap();
        assert_eq!(read_keys(&k).unwrap(), "ssh-ed25519 AAAA x@y\n");
    }

    #[test]
    fn merged_and_split_usr_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        symlink("/usr/lib", r.join("lib")).unwrap();
        fs::create_dir(r.join("sbin")).unwrap();
        let l = host_layout(r);
        assert_eq!(
            l,
            vec![
                HostDir::Bind { name: "usr".into() },
                HostDir::Link {
                    name: "bin".into(),
                    target: "usr/bin".into()
                },
                HostDir::Bind {
                    name: "sbin".into()
                },
                HostDir::Link {
                    name: "lib".into(),
                    target: "/usr/lib".into()
                },
            ]
        );
        let c = config_lines("s1", Path::new("/usr/sbin/sshd"), &l);
        assert!(c.contains("lxc.init.cmd = /usr/sbin/sshd -D -e\n"), "{c}");
        assert!(c.contains("lxc.mount.entry = /usr usr none ro,bind 0 0\n"));
        assert!(c.contains("lxc.mount.entry = /sbin sbin none ro,bind 0 0\n"));
        assert!(!c.contains("/bin bin"), "merged /bin is a symlink: {c}");
        assert!(c.contains("lxc.uts.name = s1\n"));
        assert!(c.contains("lxc.signal.halt = SIGTERM\n"));
    }

    #[test]
    fn sshd_config_is_key_only() {
        let c = sshd_config();
        assert!(c.contains("PasswordAuthentication no\n"));
        assert!(c.contains("PermitRootLogin prohibit-password\n"));
        assert!(c.contains("HostKey /etc/ssh/ssh_host_ed25519_key\n"));
    }
}
