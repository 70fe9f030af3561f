//! Real-world configs: everything Debian's `lxc` package ships under /usr/share/lxc/config,
//! and configs as LXC's templates write them (tests/data). The package must be installed:
//! these tests fail, never skip, when it is not.

use lxrs_config::*;
use std::path::{Path, PathBuf};

const LXC_CONFIG_DIR: &str = "/usr/share/lxc/config";

fn shipped_files() -> Vec<PathBuf> {
    let dir = Path::new(LXC_CONFIG_DIR);
    assert!(
        dir.is_dir(),
        "{LXC_CONFIG_DIR} is missing: install Debian's `lxc` package (apt-get install -y lxc)"
    );
    let mut files = vec![];
    for d in [dir.to_path_buf(), dir.join("common.conf.d")] {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "conf") && p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_lxc_config_checks_clean() {
    let files = shipped_files();
    assert!(
        files.len() >= 30,
        "expected the full set of distro configs, found {}",
        files.len()
    );
    assert!(files
        .iter()
        .any(|f| f.ends_with("common.conf.d/00-lxcfs.conf")));
    let mut failures = vec![];
    for f in &files {
        let r = ContainerConfig::check(f);
        if !r.errors.is_empty() || !r.warnings.is_empty() {
            failures.push(format!(
                "{}: {:?} {:?}",
                f.display(),
                r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                r.warnings
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shipped_files_round_trip_byte_exact() {
    for f in shipped_files() {
        let raw = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            Document::load(&f).unwrap().to_string(),
            raw,
            "{}",
            f.display()
        );
    }
}

#[test]
fn common_conf_means_what_it_says() {
    let c = ContainerConfig::load(Path::new(LXC_CONFIG_DIR).join("common.conf"))
        .unwrap()
        .config;
    assert_eq!(
        c.tty,
        Tty {
            max: 4,
            dir: Some("lxc".into()),
            pty_max: 1024
        }
    );
    assert_eq!(c.caps.drop, vec![33, 32, 25, 16, 17]);
    assert_eq!(c.mount.auto.proc, Some(ProcMode::Mixed));
    assert_eq!(
        c.cgroup
            .iter()
            .filter(|s| s.version == CgroupVersion::V2)
            .count(),
        13
    );
    assert_eq!(
        c.cgroup
            .iter()
            .filter(|s| s.version == CgroupVersion::V1)
            .count(),
        13
    );
    assert_eq!(c.hooks[0].kind, "clone");
    // common.conf.d/00-lxcfs.conf was pulled in through the directory include.
    assert!(
        c.hooks
            .iter()
            .any(|h| h.kind == "mount" && h.command.contains("lxcfs")),
        "{:?}",
        c.hooks
    );
}

#[test]
fn userns_conf_clears_what_common_conf_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config");
    std::fs::write(&p, "lxc.include = /usr/share/lxc/config/common.conf\nlxc.include = /usr/share/lxc/config/userns.conf\n").unwrap();
    let c = ContainerConfig::load(&p).unwrap().config;
    assert!(c.caps.drop.is_empty() && c.caps.keep.is_none());
    assert_eq!(c.tty.dir, None);
    assert!(
        c.cgroup.iter().all(|s| !s.key.starts_with("devices.")),
        "{:?}",
        c.cgroup
    );
    assert_eq!(c.mount.auto.sys, Some(SysMode::Rw));
}

#[test]
fn template_written_configs() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    // busybox
    let c = ContainerConfig::load(data.join("busybox.conf"))
        .unwrap()
        .config;
    assert_eq!(c.signals.halt, Some(libc::SIGUSR1));
    assert_eq!(c.signals.reboot, Some(libc::SIGTERM));
    assert_eq!(c.uts_name.unwrap().value, "bb", "quotes stripped");
    assert_eq!(c.mount.entries.len(), 5);
    assert_eq!(c.mount.auto.sys, Some(SysMode::Ro));
    assert_eq!(c.net[0].hwaddr, Some([0x00, 0x16, 0x3e, 0x5b, 0x1c, 0x7e]));
    // download: includes the real common.conf
    let c = ContainerConfig::load(data.join("download.conf"))
        .unwrap()
        .config;
    assert_eq!(c.arch.unwrap().value, Personality::Linux64);
    assert_eq!(c.rootfs.as_ref().unwrap().path, "/var/lib/lxc/deb/rootfs");
    assert_eq!(c.tty.max, 4);
    // debian: includes debian.common.conf -> common.conf
    let l = ContainerConfig::load(data.join("debian.conf")).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.lsm.apparmor_profile.as_deref(), Some("generated"));
    assert!(l.config.lsm.apparmor_allow_nesting);
    // sshd
    let c = ContainerConfig::load(data.join("sshd.conf"))
        .unwrap()
        .config;
    assert_eq!(c.net[0].kind, NetType::Empty);
    assert_eq!(c.mount.entries.len(), 9);
    // unprivileged ubuntu
    let c = ContainerConfig::load(data.join("ubuntu-userns.conf"))
        .unwrap()
        .config;
    assert_eq!(c.idmap.len(), 2);
    assert!(c.caps.drop.is_empty());
    // 1.0-era legacy file: loads (with warnings), means the same as its upgrade.
    let l = ContainerConfig::load(data.join("legacy-1.0.conf")).unwrap();
    assert!(!l.warnings.is_empty());
    let c = l.config;
    assert_eq!(
        c.start,
        StartPolicy {
            auto: true,
            delay: 5,
            order: 100
        }
    );
    assert_eq!(
        c.tty,
        Tty {
            max: 4,
            dir: Some("lxc".into()),
            pty_max: 1024
        }
    );
    assert_eq!(c.rootfs.as_ref().unwrap().backend, Backend::Dir);
}
