//! Container configuration (lxrs-config's typed view) → the runtime's resolved `StartSpec`.

use crate::globals::Globals;
use anyhow::{bail, Context, Result};
use lxrs_config as cfg;
use lxrs_runtime::spec as rt;
use std::path::Path;

/// Console ring buffer replayed to a client attaching to the console.
const DEFAULT_CONSOLE_BUFFER: usize = 128 * 1024;

/// Build the resolved start spec of container `name`: its config under the lxcpath (or `-f`),
/// with the `-s KEY=VAL` defines applied on top (not saved).
pub fn build(g: &Globals, name: &str, a: &crate::cmd_start::Args) -> Result<rt::StartSpec> {
    lxrs_rootfs::validate_name(name)?;
    let lxcpath = g.lxcpath();
    load_spec(&lxcpath, name, a.rcfile.as_deref(), &a.defines)
}

/// Load a container's configuration (with optional overrides) and resolve it.
pub fn load_spec(
    lxcpath: &Path,
    name: &str,
    rcfile: Option<&Path>,
    defines: &[String],
) -> Result<rt::StartSpec> {
    let path = match rcfile {
        Some(p) => p.to_path_buf(),
        None => lxcpath.join(name).join("config"),
    };
    if rcfile.is_none() && !path.exists() {
        bail!(
            "container '{name}' does not exist in {} (no {})",
            lxcpath.display(),
            path.display()
        );
    }
    let mut doc = cfg::Document::load(&path)?;
    for d in defines {
        let Some((k, v)) = d.split_once('=') else {
            bail!("-s {d}: expected KEY=VALUE")
        };
        doc.set(k.trim(), v.trim())
            .with_context(|| format!("-s {d}"))?;
    }
    let loaded = cfg::ContainerConfig::from_document(&doc, cfg::ExpandOptions::default())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    from_config(&loaded.config, lxcpath, name)
}

/// `overlay:<lower>:<upper>`: the work directory is `olwork` beside the upper one (as LXC's).
fn overlay_spec(c: &cfg::ContainerConfig, r: &cfg::Rootfs) -> Result<rt::OverlaySpec> {
    let Some(upper) = r.overlay_upper.as_deref() else {
        bail!(
            "{}: lxc.rootfs.path = {}: an overlay needs overlay:<lower>:<upper>",
            c.path.display(),
            r.spec
        );
    };
    let (lower, upper) = (
        std::path::PathBuf::from(&r.path),
        std::path::PathBuf::from(upper),
    );
    let work = upper.parent().unwrap_or(Path::new("/")).join("olwork");
    for (what, d) in [("lower", &lower), ("upper", &upper), ("work", &work)] {
        if !d.is_dir() || d.to_string_lossy().contains(',') {
            bail!(
                "{}: lxc.rootfs.path = {}: overlay {what} directory {} does not exist (or contains ',')",
                c.path.display(),
                r.spec,
                d.display()
            );
        }
    }
    Ok(rt::OverlaySpec { lower, upper, work })
}

/// Build the start spec of container `name` in `lxcpath` from its loaded configuration.
pub fn from_config(c: &cfg::ContainerConfig, lxcpath: &Path, name: &str) -> Result<rt::StartSpec> {
    let rootfs = match &c.rootfs {
        Some(r) => {
            let overlay = match r.backend {
                cfg::Backend::Dir => None,
                cfg::Backend::Overlay => Some(overlay_spec(c, r)?),
                other => bail!(
                    "{}: rootfs backend '{}' is not supported yet (lxc.rootfs.path = {})",
                    c.path.display(),
                    other.as_str(),
                    r.spec
                ),
            };
            rt::RootfsSpec {
                // an overlay is mounted by the container on its mount point
                path: match &overlay {
                    Some(_) => r
                        .mount
                        .clone()
                        .unwrap_or_else(|| lxcpath.join(name).join("rootfs")),
                    None => r.path.clone().into(),
                },
                overlay,
                readonly: r.readonly,
                options: r
                    .options
                    .iter()
                    .filter(|o| *o != "ro" && *o != "rw")
                    .cloned()
                    .collect(),
            }
        }
        None => rt::RootfsSpec {
            path: lxcpath.join(name).join("rootfs"),
            readonly: false,
            options: vec![],
            overlay: None,
        },
    };
    if !rootfs.path.is_dir() {
        bail!(
            "{}: the rootfs {} does not exist or is not a directory",
            c.path.display(),
            rootfs.path.display()
        );
    }

    let mut env: Vec<(String, String)> = vec![("container".into(), "lxc".into())];
    let ttys: Vec<String> = (1..=c.tty.max)
        .map(|i| match &c.tty.dir {
            Some(d) => format!("{d}/tty{i}"),
            None => format!("tty{i}"),
        })
        .collect();
    if !ttys.is_empty() {
        env.push(("container_ttys".into(), ttys.join(" ")));
    }
    for v in c.environment.iter().chain(&c.environment_runtime) {
        let value = match &v.value {
            Some(v) => Some(v.clone()),
            None => std::env::var(&v.name).ok(),
        };
        if let Some(value) = value {
            env.retain(|(k, _)| *k != v.name);
            env.push((v.name.clone(), value));
        }
    }

    let keeps_sys_admin = match &c.caps.keep {
        Some(k) => k.contains(&21),
        None => !c.caps.drop.contains(&21),
    };
    let cgroup_mode = c.mount.auto.cgroup.map(|a| match a.mode {
        cfg::CgroupMountMode::Auto => {
            if keeps_sys_admin {
                rt::CgroupMountMode::Rw
            } else {
                rt::CgroupMountMode::Mixed
            }
        }
        cfg::CgroupMountMode::Mixed => rt::CgroupMountMode::Mixed,
        cfg::CgroupMountMode::Ro => rt::CgroupMountMode::Ro,
        cfg::CgroupMountMode::Rw => rt::CgroupMountMode::Rw,
        cfg::CgroupMountMode::FullAuto => {
            if keeps_sys_admin {
                rt::CgroupMountMode::FullRw
            } else {
                rt::CgroupMountMode::FullMixed
            }
        }
        cfg::CgroupMountMode::FullMixed => rt::CgroupMountMode::FullMixed,
        cfg::CgroupMountMode::FullRo => rt::CgroupMountMode::FullRo,
        cfg::CgroupMountMode::FullRw => rt::CgroupMountMode::FullRw,
        cfg::CgroupMountMode::Cgroup2 => rt::CgroupMountMode::Cgroup2,
        cfg::CgroupMountMode::Cgroup2Ro => rt::CgroupMountMode::Cgroup2Ro,
    });
    let mount_auto = rt::MountAuto {
        proc: c.mount.auto.proc.map(|p| match p {
            cfg::ProcMode::Mixed => rt::ProcMode::Mixed,
            cfg::ProcMode::Rw => rt::ProcMode::Rw,
        }),
        sys: c.mount.auto.sys.map(|s| match s {
            cfg::SysMode::Mixed => rt::SysMode::Mixed,
            cfg::SysMode::Ro => rt::SysMode::Ro,
            cfg::SysMode::Rw => rt::SysMode::Rw,
        }),
        cgroup: cgroup_mode,
    };

    let mut mounts = Vec::new();
    let fstab = c.fstab_entries()?;
    for e in c.mount.entries.iter().chain(fstab.iter()) {
        let e = &e.value;
        mounts.push(rt::MountEntry {
            source: e.source.clone(),
            target: e.target.trim_start_matches('/').to_string(),
            fstype: e.fstype.clone(),
            options: e.options.clone(),
            create: e.create.map(|k| match k {
                cfg::CreateKind::Dir => rt::CreateKind::Dir,
                cfg::CreateKind::File => rt::CreateKind::File,
            }),
            optional: e.optional,
            relative: e.relative,
        });
    }

    let net_types: Vec<cfg::NetType> = c.net.iter().map(|n| n.kind).collect();
    let share_host_net =
        !net_types.is_empty() && net_types.iter().all(|t| *t == cfg::NetType::None);
    if net_types.contains(&cfg::NetType::None) && !share_host_net {
        bail!(
            "{}: lxc.net.N.type = none must be the only network interface",
            c.path.display()
        );
    }
    let net = c
        .net
        .iter()
        .filter(|n| !matches!(n.kind, cfg::NetType::Empty | cfg::NetType::None))
        .map(|n| rt::NetInterface {
            index: n.index,
            kind: match n.kind {
                cfg::NetType::Veth => rt::NetKind::Veth,
                cfg::NetType::Macvlan => rt::NetKind::Macvlan,
                cfg::NetType::Ipvlan => rt::NetKind::Ipvlan,
                cfg::NetType::Vlan => rt::NetKind::Vlan,
                cfg::NetType::Phys => rt::NetKind::Phys,
                cfg::NetType::Empty => rt::NetKind::Empty,
                cfg::NetType::None => rt::NetKind::None,
            },
            link: n.link.clone(),
            name: n.name.clone(),
            up: n.up,
            hwaddr: n.hwaddr,
            mtu: n.mtu,
            ipv4: n.ipv4.iter().map(|a| (a.addr, a.prefix)).collect(),
            ipv4_gateway: n.ipv4_gateway.map(gw),
            ipv6: n.ipv6.iter().map(|a| (a.addr, a.prefix)).collect(),
            ipv6_gateway: n.ipv6_gateway.map(gw),
            veth_pair: n.veth_pair.clone(),
            macvlan_mode: n.macvlan_mode.map(|m| m.as_str().to_string()),
            ipvlan_mode: n.ipvlan_mode.map(|m| m.as_str().to_string()),
            vlan_id: n.vlan_id,
            script_up: n.script_up.clone(),
            script_down: n.script_down.clone(),
        })
        .collect();

    Ok(rt::StartSpec {
        name: name.to_string(),
        lxcpath: lxcpath.to_path_buf(),
        config_path: c.path.clone(),
        rootfs,
        hostname: c
            .uts_name
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| name.to_string()),
        init: rt::InitSpec {
            argv: c.init.argv(),
            uid: c.init.uid.unwrap_or(0),
            gid: c.init.gid.unwrap_or(0),
            groups: c.init.groups.clone(),
            cwd: c.init.cwd.clone().unwrap_or_else(|| "/".into()),
            env,
        },
        mount_auto,
        mounts,
        autodev: c.autodev,
        tty: rt::TtySpec {
            count: c.tty.max,
            dir: c.tty.dir.clone(),
            pty_max: c.tty.pty_max,
        },
        console: rt::ConsoleSpec {
            enabled: c.console.enabled(),
            logfile: c.console.logfile.clone(),
            buffer_size: c
                .console
                .buffer_size
                .map(|b| b as usize)
                .unwrap_or(DEFAULT_CONSOLE_BUFFER),
        },
        caps: rt::CapsSpec {
            drop: c.caps.drop.clone(),
            keep: c.caps.keep.clone(),
        },
        no_new_privs: c.no_new_privs,
        prlimits: c
            .prlimits
            .iter()
            .map(|p| rt::Prlimit {
                resource: p.resource,
                soft: p.soft,
                hard: p.hard,
            })
            .collect(),
        sysctls: c
            .sysctls
            .iter()
            .map(|k| (k.name.clone(), k.value.clone()))
            .collect(),
        proc_writes: c
            .proc
            .iter()
            .map(|k| (k.name.clone(), k.value.clone()))
            .collect(),
        personality: c.arch.as_ref().map(|a| match a.value {
            cfg::Personality::Linux32 => rt::Personality::Linux32,
            cfg::Personality::Linux64 => rt::Personality::Linux64,
        }),
        signals: rt::Signals {
            halt: c.signals.halt_or_default(),
            reboot: c.signals.reboot_or_default(),
            stop: c.signals.stop_or_default(),
        },
        net,
        share_host_net,
        cgroup: c
            .cgroup
            .iter()
            .map(|s| rt::CgroupSetting {
                version: match s.version {
                    cfg::CgroupVersion::V1 => rt::CgroupVersion::V1,
                    cfg::CgroupVersion::V2 => rt::CgroupVersion::V2,
                },
                key: s.key.clone(),
                value: s.value.clone(),
            })
            .collect(),
        hooks: c
            .hooks
            .iter()
            .map(|h| rt::Hook {
                kind: h.kind.clone(),
                command: h.command.clone(),
            })
            .collect(),
        log: rt::LogSpec {
            file: c.log.file.clone(),
            level: c
                .log
                .level
                .map(|l| l.tracing_level().to_string())
                .unwrap_or_else(|| "error".into()),
        },
        extra: vec![],
    })
}

fn gw<A>(g: cfg::Gateway<A>) -> rt::Gateway<A> {
    match g {
        cfg::Gateway::Addr(a) => rt::Gateway::Addr(a),
        cfg::Gateway::Auto => rt::Gateway::Auto,
        cfg::Gateway::Dev => rt::Gateway::Dev,
    }
}
