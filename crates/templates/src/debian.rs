//! The built-in `debian` template: a Debian (systemd) system bootstrapped by the host's
//! `debootstrap` into the cache `<cache>/debian/<release>/<arch>/<variant>/rootfs` (built once,
//! under a lock; `--flush-cache` rebuilds), then copied into each new container and configured:
//! hostname, hosts, eth0 by DHCP through systemd-networkd, root password or a locked root.
//! The shared machinery is [`crate::debootstrap`]; this file is what is Debian's.

use crate::debootstrap::{self, io, Distro};
use crate::{accounts, TemplateError, TemplateRun};
use std::path::Path;

pub use crate::debootstrap::Options;

pub const HELP: &str = "\
Usage: lxrs create -t debian -n NAME -- [OPTIONS]
  -r, --release RELEASE   Debian release (default: bookworm)
  -a, --arch ARCH         architecture (default: the host's; i386 works on amd64 hosts)
      --mirror URL        Debian mirror (default: http://deb.debian.org/debian)
      --packages A,B      extra packages to install (becomes part of the cache key)
      --password PW       root password (default: root login locked; use `lxrs attach`)
      --keyring FILE      check the archive's Release file against FILE
                          (default: /usr/share/keyrings/debian-archive-keyring.gpg)
      --no-check-gpg      do not check the Release file's signature (cached separately)
  -F, --flush-cache       bootstrap again even when cached
Needs debootstrap on the host (Debian package: debootstrap).";

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

pub static DEBIAN: Distro = Distro {
    name: "debian",
    pretty: "Debian",
    default_release: "bookworm",
    base_packages: &[
        "systemd-sysv",
        "iproute2",
        "ifupdown",
        "procps",
        "netbase",
        "ca-certificates",
    ],
    components: &["main"],
    default_mirror: |_| DEFAULT_MIRROR,
    default_keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
    keyring_hint: "Debian package debian-archive-keyring",
    fallback_script: "sid",
    extra_options: &[],
    check: |_| Ok(()),
    finish_cache,
    configure,
};

pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
    debootstrap::parse(&DEBIAN, args)
}

/// Host tools and keyring, checked before anything is created.
pub fn preflight(args: &[String]) -> Result<Options, TemplateError> {
    debootstrap::preflight(&DEBIAN, args)
}

pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    debootstrap::run(&DEBIAN, run)
}

/// `-B overlay`: the cached rootfs is the lower layer.
pub fn run_overlay(run: &TemplateRun) -> Result<(), TemplateError> {
    debootstrap::run_overlay(&DEBIAN, run)
}

/// This template's distribution lines and the container's name, as they end up in its config.
pub fn config_lines(name: &str, arch: &str) -> String {
    crate::confwrite::layout(
        "",
        &debootstrap::distribution_lines("Debian", "debian", arch),
        &[],
        name,
    )
}

fn finish_cache(root: &Path, _o: &Options) -> Result<(), TemplateError> {
    debootstrap::networkd_dhcp("debian", root)
}

/// Per-container files under `r`: hostname, hosts, machine-id, root's password.
fn configure(
    run: &TemplateRun,
    o: &Options,
    r: &Path,
    lower: Option<&Path>,
) -> Result<(), TemplateError> {
    debootstrap::configure_common("debian", &run.name, r, lower)?;
    if let Some(pw) = &o.password {
        let shadow = r.join("etc/shadow");
        let hash =
            accounts::sha512_crypt(pw).map_err(io("debian", "hash password for", &shadow))?;
        accounts::set_password(r, lower, "root", &hash).map_err(io(
            "debian",
            "set root password in",
            &shadow,
        ))?;
    } else if !run.quiet {
        println!(
            "The root password is not set (root login is locked).\n\
             Use `lxrs attach -n {}` to get a root shell, then `passwd` to set one.",
            run.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debootstrap::{args_of as s, debootstrap_args, variant, Gpg};

    #[test]
    fn options_and_config() {
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
        assert_eq!(o.mirror, DEFAULT_MIRROR);
        assert_eq!(variant(&o), "curl+vim");
        assert!(parse(&s(&["--release", "../x"])).is_err());
        assert!(parse(&s(&["--packages", "a;rm"])).is_err());
        assert!(parse(&s(&["--nope"])).is_err());
        assert!(parse(&s(&["--user", "bob"])).is_err(), "ubuntu-only option");
        assert!(parse(&s(&["--mirror", "ftp://x"])).is_err());
        assert!(parse(&s(&["--no-check-gpg", "--keyring", "/k"])).is_err());
        assert_eq!(parse(&s(&["--arch", "i686"])).unwrap().arch, "i386");
        let c = config_lines("web", "amd64");
        assert!(c.contains("lxc.signal.halt = SIGRTMIN+3\n") && c.contains("lxc.uts.name = web\n"));
        assert!(c.contains("lxc.arch = x86_64\n"));
        assert!(config_lines("web", "i386").contains("lxc.arch = i686\n"));
    }

    #[test]
    fn debootstrap_command_line() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("bookworm"), "").unwrap();
        let mut o = parse(&s(&["--packages", "curl"])).unwrap();
        o.arch = "i386".into();
        let a: Vec<String> = debootstrap_args(
            &DEBIAN,
            &o,
            &Gpg::Keyring("/k.gpg".into()),
            Path::new("/c/rootfs"),
            tmp.path(),
        )
        .iter()
        .map(|x| x.to_string_lossy().into_owned())
        .collect();
        assert_eq!(
            a,
            [
                "--variant=minbase",
                "--arch=i386",
                "--components=main",
                "--include=systemd-sysv,iproute2,ifupdown,procps,netbase,ca-certificates,curl",
                "--keyring=/k.gpg",
                "--force-check-gpg",
                "bookworm",
                "/c/rootfs",
                "http://deb.debian.org/debian",
            ]
        );
    }

    #[test]
    fn missing_tool_names_the_package() {
        let e = debootstrap::require_tool("debian", "no-such-tool-lxrs", "no-such-package")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no-such-tool-lxrs") && e.contains("Debian package: no-such-package"),
            "{e}"
        );
    }

    #[test]
    fn configure_writes_names_and_root_password() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("rootfs");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::write(r.join("etc/machine-id"), "0123456789abcdef\n").unwrap();
        std::fs::write(r.join("etc/hostname"), "host\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            // as debootstrap leaves it when the host's /etc/hostname is 0755
            std::fs::set_permissions(
                r.join("etc/hostname"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        let run = TemplateRun {
            name: "web".into(),
            path: tmp.path().into(),
            rootfs: r.clone(),
            args: vec![],
            quiet: true,
        };
        let o = parse(&s(&["--password", "s3cret"])).unwrap();
        configure(&run, &o, &r, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("etc/hostname")).unwrap(),
            "web\n"
        );
        assert!(std::fs::read_to_string(r.join("etc/hosts"))
            .unwrap()
            .contains("127.0.1.1   web\n"));
        assert_eq!(
            std::fs::read_to_string(r.join("etc/machine-id")).unwrap(),
            ""
        );
        let mode = |rel: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(r.join(rel)).unwrap().mode() & 0o777
        };
        assert_eq!(
            (mode("etc/hostname"), mode("etc/machine-id")),
            (0o644, 0o444)
        );
        let shadow = std::fs::read_to_string(r.join("etc/shadow")).unwrap();
        assert!(shadow.starts_with("root:$6$"), "{shadow}");
    }
}
