//! The built-in `ubuntu` template: LXC's `lxc-ubuntu` on lxrs's debootstrap core
//! ([`crate::debootstrap`]). Ubuntu suites from an Ubuntu mirror (`archive.ubuntu.com`, or
//! `ports.ubuntu.com` for other architectures), releases newer than the host's debootstrap
//! through its `gutsy` script, the Release file checked against Ubuntu's archive keyring.
//! Each container gets what an Ubuntu user expects: a user `ubuntu` (password `ubuntu`) in the
//! `sudo` group with root locked, hostname and hosts, eth0 by DHCP through netplan (systemd-
//! networkd when netplan is absent), Ubuntu's sources.list with `-updates` and `-security`, and
//! nothing that waits for hardware or a cloud in a container (udev, networkd-wait-online,
//! cloud-init are off).

use crate::debootstrap::{self, bad, io, Distro, Options};
use crate::{accounts, TemplateError, TemplateRun};
use std::path::Path;

pub const HELP: &str = "\
Usage: lxrs create -t ubuntu -n NAME -- [OPTIONS]
  -r, --release RELEASE    Ubuntu release (default: noble, 24.04 LTS)
  -a, --arch ARCH          architecture (default: the host's)
      --mirror URL         Ubuntu mirror (default: http://archive.ubuntu.com/ubuntu;
                           http://ports.ubuntu.com/ubuntu-ports for non-x86)
      --security-mirror URL  mirror of RELEASE-security in sources.list
                           (default: http://security.ubuntu.com/ubuntu, ports for non-x86)
      --packages A,B       extra packages to install (becomes part of the cache key)
  -u, --user NAME          the user made in the container (default: ubuntu), in group sudo
      --password PW        its password (default: ubuntu); root login stays locked
      --keyring FILE       Ubuntu's archive keyring
                           (default: /usr/share/keyrings/ubuntu-archive-keyring.gpg)
      --no-check-gpg       do not check the Release file's signature (cached separately)
  -F, --flush-cache        bootstrap again even when cached
Needs debootstrap on the host (Debian package: debootstrap) and Ubuntu's archive keyring.";

pub const DEFAULT_RELEASE: &str = "noble";
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";

/// The mirror of an architecture (amd64 and i386 on the main archive, the rest on ports).
pub fn default_mirror(arch: &str) -> &'static str {
    match arch {
        "amd64" | "i386" => "http://archive.ubuntu.com/ubuntu",
        _ => "http://ports.ubuntu.com/ubuntu-ports",
    }
}

fn default_security_mirror(arch: &str) -> &'static str {
    match arch {
        "amd64" | "i386" => "http://security.ubuntu.com/ubuntu",
        _ => "http://ports.ubuntu.com/ubuntu-ports",
    }
}

pub static UBUNTU: Distro = Distro {
    name: "ubuntu",
    pretty: "Ubuntu",
    default_release: DEFAULT_RELEASE,
    base_packages: &[
        "systemd-sysv",
        "dbus",
        "iproute2",
        "netplan.io",
        "sudo",
        "procps",
        "netbase",
        "ca-certificates",
    ],
    components: &["main", "universe"],
    default_mirror,
    default_keyring: DEFAULT_KEYRING,
    keyring_hint: "Ubuntu's archive keyring: Debian 12 has no package with it (on Ubuntu it is \
                   the package ubuntu-keyring); copy ubuntu-archive-keyring.gpg from an Ubuntu \
                   system and pass --keyring FILE, or bootstrap unverified with --no-check-gpg",
    fallback_script: "gutsy",
    extra_options: &["--user", "--security-mirror"],
    check,
    finish_cache: post_install,
    configure,
};

/// Releases that still had an i386 base system (Ubuntu dropped it after 18.04).
const I386_RELEASES: &[&str] = &["precise", "trusty", "xenial", "bionic"];

fn check(o: &Options) -> Result<(), TemplateError> {
    if o.arch == "i386" && !I386_RELEASES.contains(&o.release.as_str()) {
        return Err(bad(
            "ubuntu",
            &format!("--arch i386 --release {}", o.release),
            "Ubuntu has no i386 base system after bionic (18.04)",
        ));
    }
    Ok(())
}

pub fn parse(args: &[String]) -> Result<Options, TemplateError> {
    debootstrap::parse(&UBUNTU, args)
}

/// Arguments, debootstrap and the keyring, checked before anything is created.
pub fn preflight(args: &[String]) -> Result<Options, TemplateError> {
    debootstrap::preflight(&UBUNTU, args)
}

pub fn run(run: &TemplateRun) -> Result<(), TemplateError> {
    debootstrap::run(&UBUNTU, run)
}

/// `-B overlay`: the cached rootfs is the lower layer.
pub fn run_overlay(run: &TemplateRun) -> Result<(), TemplateError> {
    debootstrap::run_overlay(&UBUNTU, run)
}

/// `/etc/apt/sources.list`: the release, its updates and its security pocket.
pub fn sources_list(o: &Options) -> String {
    let comps = "main restricted universe multiverse";
    let sec = o
        .security_mirror
        .clone()
        .unwrap_or_else(|| default_security_mirror(&o.arch).to_string());
    format!(
        "deb {m} {r} {comps}\ndeb {m} {r}-updates {comps}\ndeb {sec} {r}-security {comps}\n",
        m = o.mirror,
        r = o.release
    )
}

pub const NETPLAN: &str = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n";

/// Ubuntu's post-install setup of the cached rootfs `root` (pure file operations): sources.list,
/// eth0 by DHCP (netplan when installed, else systemd-networkd), and off what hangs or waits
/// in a container.
pub fn post_install(root: &Path, o: &Options) -> Result<(), TemplateError> {
    let w = |rel: &str, text: &str, mode: Option<u32>| {
        accounts::write_file_mode(root, None, rel, text, mode).map_err(io(
            "ubuntu",
            "write",
            &root.join(rel),
        ))
    };
    w("etc/apt/sources.list", &sources_list(o), None)?;
    if root.join("usr/sbin/netplan").exists() || root.join("sbin/netplan").exists() {
        // netplan warns about (and newer versions refuse) world-readable configs
        w("etc/netplan/10-lxc.yaml", NETPLAN, Some(0o600))?;
    } else {
        debootstrap::networkd_dhcp("ubuntu", root)?;
    }
    let sysd = root.join("etc/systemd/system");
    std::fs::create_dir_all(&sysd).map_err(io("ubuntu", "mkdir", &sysd))?;
    // a container without a DHCP server would wait two minutes for "online" at every boot
    debootstrap::mask("ubuntu", root, "systemd-networkd-wait-online.service")?;
    // cloud-init (if a package pulls it in) has no datasource here and would stall the boot
    w("etc/cloud/cloud-init.disabled", "", None)?;
    Ok(())
}

/// Per-container setup under `r` (rootfs or overlay upper over `lower`): hostname, hosts,
/// machine-id, and the user (default `ubuntu`/`ubuntu`) in group sudo.
pub fn configure(
    run: &TemplateRun,
    o: &Options,
    r: &Path,
    lower: Option<&Path>,
) -> Result<(), TemplateError> {
    debootstrap::configure_common("ubuntu", &run.name, r, lower)?;
    let user = o.user.as_deref().unwrap_or("ubuntu");
    let password = o.password.as_deref().unwrap_or("ubuntu");
    let passwd = r.join("etc/passwd");
    let hash =
        accounts::sha512_crypt(password).map_err(io("ubuntu", "hash password for", &passwd))?;
    accounts::add_user(
        r,
        lower,
        &accounts::NewUser {
            name: user,
            hash: Some(&hash),
            groups: &["sudo"],
            shell: "/bin/bash",
            gecos: "Ubuntu",
        },
    )
    .map_err(io("ubuntu", "add user to", &passwd))?;
    if !run.quiet {
        println!(
            "\n##\n# The default user is '{user}' with password '{}'!\n\
             # Use the 'sudo' command to run tasks as root in the container.\n##\n",
            if o.password.is_some() {
                "(as given)"
            } else {
                password
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debootstrap::{args_of as s, debootstrap_args, gpg, variant, Gpg};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn options_defaults_and_checks() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.release, "noble");
        if crate::download::host_arch() == "amd64" {
            assert_eq!(o.mirror, "http://archive.ubuntu.com/ubuntu");
        }
        assert_eq!(
            default_mirror("arm64"),
            "http://ports.ubuntu.com/ubuntu-ports"
        );
        let o = parse(&s(&[
            "-u",
            "dev",
            "--password=pw",
            "--security-mirror",
            "http://sec/ubuntu",
        ]))
        .unwrap();
        assert_eq!(
            (o.user.as_deref(), o.password.as_deref()),
            (Some("dev"), Some("pw"))
        );
        assert!(parse(&s(&["--user", "root"])).is_err());
        assert!(parse(&s(&["--user", "Bad Name"])).is_err());
        assert!(parse(&s(&["--password", "a:b"])).is_err());
        if crate::download::host_arch() == "amd64" {
            let e = parse(&s(&["--arch", "i386"])).unwrap_err().to_string();
            assert!(e.contains("no i386 base system after bionic"), "{e}");
            assert!(parse(&s(&["--arch", "i386", "-r", "bionic"])).is_ok());
        }
        let o = parse(&s(&["--no-check-gpg", "--packages", "vim"])).unwrap();
        assert_eq!(variant(&o), "vim+nogpg");
    }

    #[test]
    fn keyring_missing_is_a_clear_error_and_no_check_gpg_is_explicit() {
        let tmp = tempfile::tempdir().unwrap();
        let o = parse(&[]).unwrap();
        let missing = tmp.path().join("ubuntu-archive-keyring.gpg");
        let e = gpg(&UBUNTU, &o, &missing).unwrap_err().to_string();
        assert!(
            e.contains(&missing.display().to_string())
                && e.contains("--keyring FILE")
                && e.contains("--no-check-gpg"),
            "{e}"
        );
        std::fs::write(&missing, "k").unwrap();
        assert_eq!(
            gpg(&UBUNTU, &o, &missing).unwrap(),
            Gpg::Keyring(missing.clone())
        );
        let o = parse(&s(&["--no-check-gpg"])).unwrap();
        assert_eq!(
            gpg(&UBUNTU, &o, Path::new("/nonexistent")).unwrap(),
            Gpg::NoCheck
        );
        let o = parse(&s(&["--keyring", "/nonexistent/k.gpg"])).unwrap();
        let e = gpg(&UBUNTU, &o, &missing).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/k.gpg"), "{e}");
    }

    fn argv(o: &Options, g: &Gpg, scripts: &Path) -> Vec<String> {
        debootstrap_args(&UBUNTU, o, g, Path::new("/cache/ubuntu/p/rootfs"), scripts)
            .iter()
            .map(|x| x.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn debootstrap_command_line() {
        let scripts = tempfile::tempdir().unwrap();
        std::fs::write(scripts.path().join("gutsy"), "").unwrap();
        std::os::unix::fs::symlink("gutsy", scripts.path().join("jammy")).unwrap();
        let mut o = parse(&s(&[
            "--packages",
            "vim,curl",
            "--mirror",
            "http://127.0.0.1:9/ubuntu",
        ]))
        .unwrap();
        o.arch = "amd64".into();
        // noble: this debootstrap has no script for it, so gutsy's is passed explicitly
        let gutsy = scripts.path().join("gutsy").display().to_string();
        assert_eq!(
            argv(&o, &Gpg::Keyring(DEFAULT_KEYRING.into()), scripts.path()),
            [
                "--variant=minbase",
                "--arch=amd64",
                "--components=main,universe",
                "--include=systemd-sysv,dbus,iproute2,netplan.io,sudo,procps,netbase,ca-certificates,vim,curl",
                "--keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg",
                "--force-check-gpg",
                "noble",
                "/cache/ubuntu/p/rootfs",
                "http://127.0.0.1:9/ubuntu",
                gutsy.as_str(),
            ]
        );
        // jammy: debootstrap's own script
        o.release = "jammy".into();
        let a = argv(&o, &Gpg::NoCheck, scripts.path());
        assert_eq!(
            a[4..],
            [
                "--no-check-gpg",
                "jammy",
                "/cache/ubuntu/p/rootfs",
                "http://127.0.0.1:9/ubuntu"
            ]
        );
    }

    fn fake_rootfs(root: &Path, netplan: bool) {
        for d in ["etc/skel", "usr/sbin", "etc/apt"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        if netplan {
            std::fs::write(root.join("usr/sbin/netplan"), "").unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:\n").unwrap();
        std::fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\n").unwrap();
        std::fs::write(root.join("etc/skel/.profile"), "# profile\n").unwrap();
        std::fs::write(
            root.join("etc/apt/sources.list"),
            "deb http://x noble main\n",
        )
        .unwrap();
    }

    #[test]
    fn post_install_on_a_temp_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fake_rootfs(&root, true);
        let o = parse(&s(&["--mirror", "http://mirror.example/ubuntu"])).unwrap();
        post_install(&root, &o).unwrap();
        let sl = std::fs::read_to_string(root.join("etc/apt/sources.list")).unwrap();
        let sec = default_security_mirror(&o.arch);
        assert_eq!(
            sl,
            format!(
                "deb http://mirror.example/ubuntu noble main restricted universe multiverse\n\
                 deb http://mirror.example/ubuntu noble-updates main restricted universe multiverse\n\
                 deb {sec} noble-security main restricted universe multiverse\n"
            )
        );
        let np = root.join("etc/netplan/10-lxc.yaml");
        assert_eq!(std::fs::read_to_string(&np).unwrap(), NETPLAN);
        assert_eq!(std::fs::metadata(&np).unwrap().mode() & 0o777, 0o600);
        assert!(!root.join("etc/systemd/network/eth0.network").exists());
        assert_eq!(
            std::fs::read_link(
                root.join("etc/systemd/system/systemd-networkd-wait-online.service")
            )
            .unwrap(),
            Path::new("/dev/null")
        );
        assert!(root.join("etc/cloud/cloud-init.disabled").is_file());
        // twice is fine (a rebuild of the same tree)
        post_install(&root, &o).unwrap();

        // without netplan: systemd-networkd directly
        let root2 = tmp.path().join("rootfs2");
        fake_rootfs(&root2, false);
        post_install(&root2, &o).unwrap();
        assert!(
            std::fs::read_to_string(root2.join("etc/systemd/network/eth0.network"))
                .unwrap()
                .contains("Name=eth0\n\n[Network]\nDHCP=yes")
        );
        assert!(!root2.join("etc/netplan").exists());
    }

    #[test]
    fn configure_makes_the_ubuntu_user_on_rootfs_and_overlay() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fake_rootfs(&root, true);
        let run = TemplateRun {
            name: "u1".into(),
            path: tmp.path().into(),
            rootfs: root.clone(),
            args: vec![],
            quiet: true,
        };
        configure(&run, &parse(&[]).unwrap(), &root, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "u1\n"
        );
        assert!(std::fs::read_to_string(root.join("etc/hosts"))
            .unwrap()
            .contains("127.0.1.1   u1\n"));
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"),
            "{passwd}"
        );
        let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
        let line = shadow.lines().find(|l| l.starts_with("ubuntu:")).unwrap();
        let hash = line.split(':').nth(1).unwrap();
        let salt = hash.split('$').nth(2).unwrap();
        assert_eq!(
            accounts::sha512_crypt_salt("ubuntu", salt).unwrap(),
            hash,
            "password is 'ubuntu'"
        );
        assert!(shadow.starts_with("root:*:"), "root stays locked");
        assert!(std::fs::read_to_string(root.join("etc/group"))
            .unwrap()
            .contains("sudo:x:27:ubuntu\n"));
        assert!(root.join("home/ubuntu/.profile").is_file());

        // overlay: the upper directory gets the changed files, the lower layer is untouched
        let upper = tmp.path().join("delta0");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        let lower = tmp.path().join("lower");
        fake_rootfs(&lower, true);
        let o = parse(&s(&["--user", "dev", "--password", "pw"])).unwrap();
        configure(&run, &o, &upper, Some(&lower)).unwrap();
        assert!(std::fs::read_to_string(upper.join("etc/passwd"))
            .unwrap()
            .contains("dev:x:1000:1000:"));
        assert!(upper.join("home/dev/.profile").is_file());
        assert!(!std::fs::read_to_string(lower.join("etc/passwd"))
            .unwrap()
            .contains("dev:"));
    }
}
