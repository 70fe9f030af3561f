//! The built-in `busybox` template: a small, bootable system made from the host's
//! busybox-static.
//!
//! The rootfs gets busybox with every applet linked at its usual place, `/sbin/init` (busybox
//! init) with a getty on the console and on each tty, a `root` account, `/etc/hostname`, and an
//! rcS that brings up `lo` and runs `udhcpc` on `eth0` when there is one.

use crate::{TemplateError, TemplateRun};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const HELP: &str = "\
busybox template (built-in): a minimal system from the host's busybox-static.

Template options (after --):
  --busybox-path PATH   busybox binary to install (default: /bin/busybox, a static build;
                        Debian package busybox-static)
  --password PASS       set root's password (default: root logs in without a password on
                        the console; console access already needs host root)
  --ttys N              number of ttys with a getty (lxc.tty.max, default 4)
";

/// Parsed template options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub busybox: PathBuf,
    pub password: Option<String>,
    pub ttys: u32,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
        let mut o = Options {
            busybox: "/bin/busybox".into(),
            password: None,
            ttys: 4,
        };
        let bad = |arg: &str, why: &str| TemplateError::bad("busybox", arg, why);
        let mut args = crate::OptionArgs::new("busybox", args);
        while let Some(key) = args.next_key() {
            let mut value = || args.value(key);
            match key {
                "--busybox-path" => o.busybox = value()?.into(),
                "--password" => o.password = Some(value()?),
                "--ttys" => {
                    let v = value()?;
                    o.ttys = v
                        .parse()
                        .ok()
                        .filter(|n| *n <= 64)
                        .ok_or_else(|| bad(&v, "expected a number 0..64"))?
                }
                _ => return Err(bad(key, "unknown option (see: lxrs create -t busybox -h)")),
            }
        }
        Ok(o)
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError {
    TemplateError::io("busybox", op, path)
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), TemplateError> {
    fs::write(path, contents).map_err(io("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

fn mkdirs(root: &Path, dirs: &[(&str, u32)]) -> Result<(), TemplateError> {
    for (d, mode) in dirs {
        let p = root.join(d);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(*mode)
            .create(&p)
            .map_err(io("mkdir", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io("chmod", &p))?;
    }
    Ok(())
}

/// Applets as paths relative to `/`, from `busybox --list-full`.
fn applets(busybox: &Path) -> Result<Vec<String>, TemplateError> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io("execute", busybox))?;
    if !out.status.success() {
        return Err(TemplateError::Failed {
            template: "busybox".into(),
            status: format!("{} --list-full: {}", busybox.display(), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

fn check_static(busybox: &Path) -> Result<(), TemplateError> {
    // A dynamically linked busybox would need the host's libraries inside the container.
    let bytes = fs::read(busybox).map_err(|_| TemplateError::MissingTool {
        template: "busybox".into(),
        tool: busybox.display().to_string(),
        package: "busybox-static".into(),
    })?;
    if elf_has_interpreter(&bytes) {
        return Err(TemplateError::BadArgument {
            template: "busybox".into(),
            arg: busybox.display().to_string(),
            why: "is dynamically linked; install busybox-static (Debian package busybox-static)"
                .into(),
        });
    }
    Ok(())
}

/// Whether an ELF image names a program interpreter (PT_INTERP), i.e. is dynamically linked.
fn elf_has_interpreter(b: &[u8]) -> bool {
    if b.len() < 0x40 || &b[..4] != b"\x7fELF" {
        return false;
    }
    let is64 = b[4] == 2;
    let le = b[5] == 1;
    let rd = |off: usize, n: usize| -> usize {
        let s = &b[off.min(b.len())..(off + n).min(b.len())];
        let mut v = 0usize;
        for (i, byte) in s.iter().enumerate() {
            v |= (*byte as usize) << (8 * if le { i } else { n - 1 - i });
        }
        v
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(0x20, 8), rd(0x36, 2), rd(0x38, 2))
    } else {
        (rd(0x1c, 4), rd(0x2a, 2), rd(0x2c, 2))
    };
    (0..phnum).any(|i| rd(phoff + i * phentsize, 4) == 3)
}

/// The `/etc/inittab`: rcS, a getty on the console and on each tty, clean halt and reboot.
pub fn inittab(ttys: u32) -> String {
    let mut s =
        String::from("::sysinit:/etc/init.d/rcS\n::respawn:/sbin/getty -L 115200 console vt100\n");
    for i in 1..=ttys {
        s.push_str(&format!(
            "tty{i}::respawn:/sbin/getty -L 115200 tty{i} vt100\n"
        ));
    }
    s.push_str("::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/umount -a -r\n");
    s
}

const RCS: &str = r#"#!/bin/sh
# lxrs busybox template: brought up by init at boot.
/bin/mount -a 2>/dev/null
/sbin/ip link set lo up 2>/dev/null || /sbin/ifconfig lo 127.0.0.1 up
if [ -e /sys/class/net/eth0 ]; then
    /sbin/udhcpc -b -S -i eth0 -s /usr/share/udhcpc/default.script -x hostname:"$(/bin/hostname)" >/dev/null 2>&1
fi
"#;

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# udhcpc event script (lxrs busybox template)
case "$1" in
  deconfig)
    /sbin/ip addr flush dev "$interface"
    /sbin/ip link set "$interface" up
    ;;
  renew|bound)
    /sbin/ip addr flush dev "$interface"
    /sbin/ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast $broadcast} dev "$interface"
    if [ -n "$router" ]; then
      /sbin/ip route del default 2>/dev/null
      for r in $router; do /sbin/ip route add default via "$r" dev "$interface" && break; done
    fi
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for i in $dns; do echo "nameserver $i" >> /etc/resolv.conf; done
    ;;
esac
exit 0
"#;

/// The lines this template appends to the container's config.
pub fn config_lines(name: &str, ttys: u32) -> String {
    format!(
        "\n# busybox template\n\
         lxc.uts.name = {name}\n\
         lxc.signal.halt = SIGUSR1\n\
         lxc.signal.reboot = SIGTERM\n\
         lxc.autodev = 1\n\
         lxc.tty.max = {ttys}\n\
         lxc.pty.max = 1024\n\
         lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n"
    )
}

/// Fill `run.rootfs` and append to the config.
pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    let o = Options::parse(&run.args)?;
    check_static(&o.busybox)?;
    let root = &run.rootfs;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(root)
        .map_err(io("mkdir", root))?;
    mkdirs(
        root,
        &[
            ("bin", 0o755),
            ("sbin", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("usr/share/udhcpc", 0o755),
            ("etc/init.d", 0o755),
            ("dev", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("root", 0o700),
            ("home", 0o755),
            ("mnt", 0o755),
            ("tmp", 0o1777),
            ("var/log", 0o755),
            ("var/run", 0o755),
            ("run", 0o755),
            ("lib", 0o755),
        ],
    )?;
    let bb = root.join("bin/busybox");
    fs::copy(&o.busybox, &bb).map_err(io("copy busybox to", &bb))?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).map_err(io("chmod", &bb))?;
    for a in applets(&o.busybox)? {
        let rel = a.trim_start_matches('/');
        if rel.is_empty() || rel.contains("..") || rel == "bin/busybox" {
            continue;
        }
        let link = root.join(rel);
        if let Some(parent) = link.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io("mkdir", parent))?;
        }
        match symlink("/bin/busybox", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("symlink", &link)(e)),
        }
    }
    if fs::symlink_metadata(root.join("sbin/init")).is_err() {
        symlink("/bin/busybox", root.join("sbin/init"))
            .map_err(io("symlink", &root.join("sbin/init")))?;
    }
    let shadow_pw = match &o.password {
        None => String::new(),
        Some(p) => hash_password(&o.busybox, p)?,
    };
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    write(&root.join("etc/group"), "root:x:0:\ntty:x:5:\n", 0o644)?;
    write(
        &root.join("etc/shadow"),
        &format!("root:{shadow_pw}:19000:0:99999:7:::\n"),
        0o600,
    )?;
    write(
        &root.join("etc/hostname"),
        &format!("{}\n", run.name),
        0o644,
    )?;
    write(
        &root.join("etc/hosts"),
        &format!("127.0.0.1 localhost\n127.0.1.1 {}\n", run.name),
        0o644,
    )?;
    write(&root.join("etc/fstab"), "", 0o644)?;
    write(&root.join("etc/resolv.conf"), "", 0o644)?;
    write(
        &root.join("etc/profile"),
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1='\\h:\\w\\$ '\n",
        0o644,
    )?;
    let mut securetty = String::from("console\n");
    for i in 1..=o.ttys {
        securetty.push_str(&format!("tty{i}\n"));
    }
    write(&root.join("etc/securetty"), &securetty, 0o644)?;
    write(&root.join("etc/inittab"), &inittab(o.ttys), 0o644)?;
    write(&root.join("etc/init.d/rcS"), RCS, 0o755)?;
    write(
        &root.join("usr/share/udhcpc/default.script"),
        UDHCPC_SCRIPT,
        0o755,
    )?;

    let cfg = run.config_path();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&cfg)
        .map_err(io("open", &cfg))?;
    f.write_all(config_lines(&run.name, o.ttys).as_bytes())
        .map_err(io("append to", &cfg))?;
    f.sync_all().map_err(io("fsync", &cfg))?;
    Ok(())
}

fn hash_password(busybox: &Path, pw: &str) -> Result<String, TemplateError> {
    let out = Command::new(busybox)
        .args(["mkpasswd", "-m", "sha512", pw])
        .output()
        .map_err(io("execute mkpasswd with", busybox))?;
    let h = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !h.starts_with('$') {
        return Err(TemplateError::Failed {
            template: "busybox".into(),
            status: "busybox mkpasswd failed".into(),
        });
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Options::parse(&[]).unwrap().ttys, 4);
        let o = Options::parse(&a(&[
            "--ttys",
            "2",
            "--password=pw",
            "--busybox-path",
            "/x",
        ]))
        .unwrap();
        assert_eq!(
            o,
            Options {
                busybox: "/x".into(),
                password: Some("pw".into()),
                ttys: 2
            }
        );
        assert!(Options::parse(&a(&["--bogus"]))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(Options::parse(&a(&["--ttys", "x"])).is_err());
        assert!(Options::parse(&a(&["--password"]))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
    }

    #[test]
    fn static_vs_dynamic() {
        assert!(elf_has_interpreter(&fs::read("/bin/ls").unwrap()));
        assert!(!elf_has_interpreter(&fs::read("/bin/busybox").unwrap()));
    }

    #[test]
    fn inittab_has_console_and_ttys() {
        let t = inittab(2);
        assert!(t.contains("::respawn:/sbin/getty -L 115200 console vt100"));
        assert!(t.contains("tty1::respawn:"));
        assert!(t.contains("tty2::respawn:"));
        assert!(!t.contains("tty3"));
    }

    #[test]
    fn builds_a_rootfs_from_host_busybox() {
        if !Path::new("/bin/busybox").exists() {
            panic!("/bin/busybox missing: install busybox-static (cargo xtask test does)");
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config"), "lxc.net.0.type = empty\n").unwrap();
        let r = TemplateRun {
            name: "bb1".into(),
            path: tmp.path().into(),
            rootfs: tmp.path().join("rootfs"),
            args: vec!["--password".into(), "secret".into()],
            quiet: true,
        };
        run(&r).unwrap();
        let root = tmp.path().join("rootfs");
        assert_eq!(
            fs::read_link(root.join("sbin/init")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "bb1\n"
        );
        assert!(fs::read_to_string(root.join("etc/shadow"))
            .unwrap()
            .starts_with("root:$6$"));
        let cfg = fs::read_to_string(tmp.path().join("config")).unwrap();
        assert!(
            cfg.starts_with("lxc.net.0.type = empty\n"),
            "template must append: {cfg}"
        );
        assert!(cfg.contains("lxc.uts.name = bb1\n"));
        assert!(cfg.contains("lxc.tty.max = 4\n"));
        let out = Command::new(root.join("bin/busybox"))
            .arg("true")
            .status()
            .unwrap();
        assert!(out.success());
    }
}
