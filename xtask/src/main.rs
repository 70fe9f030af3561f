//! `cargo xtask <task>`: project automation.
//!
//! * `test`: install the host packages the tests need, then run every test (unit and root
//!   integration) of the workspace.
//! * `install`: build release and install `lxrs` and its host files.
//! * `demo`: the main job: install, then create, start, list, attach, stop and destroy a
//!   busybox container.
//! * `bench`: benchmarks, side by side with LXC where it is installed (`--reps N`; `--debian`
//!   adds create -t debian from the cache, also run by default once both caches are filled).
//! * `install-deps`: only the package step of `test`.

mod bench;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the test suite needs on the host.
pub const TEST_PACKAGES: &[&str] = &[
    "busybox-static", // the busybox template's source
    "lxc",            // LXC's config snippets and template scripts (compatibility tests), and bench
    "dnsmasq-base",   // DHCP for lxcbr0
    "nftables",       // NAT rules of `lxrs net`
    "debootstrap",    // debian template
    // debian template: the Release file's signature is always checked against it
    "debian-archive-keyring",
    "lxc-templates", // LXC's template scripts (lxc-debian for the bench, compatibility tests)
    "rsync",         // lxc-debian copies its cached rootfs with rsync (bench)
    "wget",          // lxc-debian probes the mirror with wget (bench)
    "iproute2",      // tests inspect links from the outside
    "procps",        // ps, for tests that look at processes
    "hyperfine",     // bench
    "openssh-server", // the sshd template's sshd (binaries only: the host service is disabled)
    "openssh-client", // ssh-keygen for the sshd template; ssh for its test
    "python3-yaml",  // the cloud template's test parses user-data as cloud-init does
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("install-deps") => install_deps(),
        Some("install") => install(),
        Some("demo") => demo(),
        Some("bench") => bench::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test|install|demo|bench|install-deps>");
            std::process::exit(2);
        }
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let st = cmd.status().with_context(|| format!("spawning {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn missing_packages() -> Vec<&'static str> {
    TEST_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect()
}

fn install_deps() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    if !nix_is_root() {
        bail!(
            "these Debian packages are missing and installing them needs root: {}",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    // Packages with services (openssh-server) must not start them here: a policy-rc.d that
    // denies every start for the duration of the install (an existing one is left alone).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            policy,
            "#!/bin/sh\n# cargo xtask install-deps: start no services\nexit 101\n",
        )
        .with_context(|| format!("writing {}", policy.display()))?;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let installed = run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if own_policy {
        let _ = std::fs::remove_file(policy);
    }
    installed?;
    // Only sshd's binaries are needed (the sshd template runs them inside containers): a host
    // ssh service this step installed is disabled and stopped; one that was there is untouched.
    if missing.contains(&"openssh-server") {
        let _ = Command::new("systemctl")
            .args(["disable", "--now", "ssh.service", "ssh.socket"])
            .status();
    }
    // Debian's lxc package may start lxc-net (an lxcbr0 with its own dnsmasq); lxrs's tests bring
    // their own bridges and must not race another DHCP server on lxcbr0.
    let _ = Command::new("systemctl")
        .args(["disable", "--now", "lxc-net.service", "lxc.service"])
        .status();
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root());
    c
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running {} -vV", rustc.to_string_lossy()))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("no `host:` line in `rustc -vV`")
}

/// `cargo SUB` building lxrs as it ships, and the directory its profiles land in.
///
/// On a glibc Linux host, for the host triple with glibc linked in statically at fixed
/// addresses (`+crt-static`, relocation model `static`). Every lxrs command is a fresh
/// process and a start execs two (the command and its monitor): dynamically linked, each exec
/// spent 0.35 ms more in the loader (mapping libc, liblzma and libgcc_s and binding their
/// symbols), `perf stat -r 300 lxrs --version` 1.42 ms against 1.05 ms static, and
/// `start -d` 1.2-1.8 ms more. The target is named so that these flags reach the crates built
/// for it only, not the build scripts and proc-macros that run on the host. Elsewhere, a
/// plain build. RUSTFLAGS, when set, replaces these flags (cargo's rule).
pub fn cargo_lxrs(sub: &str) -> Result<(Command, PathBuf)> {
    let mut c = cargo();
    c.arg(sub);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| root().join(d))
        .unwrap_or_else(|| root().join("target"));
    let triple = host_triple()?;
    if !triple.contains("-linux-gnu") {
        return Ok((c, target));
    }
    c.args(["--target", &triple, "--config"]).arg(format!(
        "target.{triple}.rustflags=[\"-C\", \"target-feature=+crt-static\", \"-C\", \"relocation-model=static\"]"
    ));
    Ok((c, target.join(triple)))
}

fn test(extra: &[String]) -> Result<()> {
    install_deps()?;
    if !nix_is_root() {
        bail!("the integration tests drive real containers: run `cargo xtask test` as root");
    }
    // The binary under test is the one `install` ships.
    let (mut c, _) = cargo_lxrs("test")?;
    run(c.args(["--workspace", "--no-fail-fast"]).args(extra))
}

/// Build `lxrs` for release as it ships ([`cargo_lxrs`]); the binary's path.
pub fn build_release() -> Result<PathBuf> {
    let (mut c, dir) = cargo_lxrs("build")?;
    run(c.args(["--release", "-p", "lxrs-cli"]))?;
    Ok(dir.join("release/lxrs"))
}

/// Build release and install the binary and host files.
fn install() -> Result<()> {
    install_deps()?;
    let bin = build_release()?;
    std::fs::create_dir_all("/usr/local/bin")?;
    let tmp = Path::new("/usr/local/bin/.lxrs.new");
    std::fs::copy(&bin, tmp).with_context(|| format!("copying {}", bin.display()))?;
    std::fs::rename(tmp, "/usr/local/bin/lxrs")?;
    std::fs::create_dir_all("/etc/lxrs")?;
    for f in ["default.conf", "lxrs-net.conf", "lxrs.conf"] {
        let dst = Path::new("/etc/lxrs").join(f);
        if !dst.exists() {
            std::fs::copy(root().join("etc").join(f), &dst)?;
        } else {
            eprintln!("xtask: keeping existing {}", dst.display());
        }
    }
    // systemd units: lxrs-net (the lxcbr0 bridge and its DHCP) and lxrs (autostart at boot,
    // and the clean stop of every container at shutdown).
    let mut units = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root().join("etc/systemd")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".service") {
                std::fs::copy(e.path(), Path::new("/etc/systemd/system").join(&name))
                    .with_context(|| format!("installing /etc/systemd/system/{name}"))?;
                units.push(name);
            }
        }
    }
    if Path::new("/run/systemd/system").is_dir() {
        run(Command::new("systemctl").arg("daemon-reload"))?;
        run(Command::new("systemctl").arg("enable").args(&units))?;
    } else if !units.is_empty() {
        eprintln!(
            "xtask: installed {} in /etc/systemd/system; systemd is not running here, so they are not enabled now (systemctl enable {} on a systemd host)",
            units.join(", "),
            units.join(" ")
        );
    }
    eprintln!("xtask: installed /usr/local/bin/lxrs and /etc/lxrs");
    Ok(())
}

/// The main job: build, create, start, list, attach, stop, destroy.
fn demo() -> Result<()> {
    install()?;
    let lxrs = "/usr/local/bin/lxrs";
    let name = "demo";
    let sh = |args: &[&str]| -> Result<()> {
        eprintln!("\n$ lxrs {}", args.join(" "));
        run(Command::new(lxrs).args(args))
    };
    // A demo container from an earlier run is replaced.
    let _ = Command::new(lxrs)
        .args(["destroy", "-n", name, "-f"])
        .status();
    // The host network: bridge lxcbr0 with dnsmasq handing out 10.0.3.x (idempotent).
    sh(&["net", "up"])?;
    sh(&["create", "-t", "busybox", "-n", name])?;
    sh(&["start", "-n", name, "-d"])?;
    // Give the container's DHCP client a moment to get its lease, then list.
    for _ in 0..50 {
        let out = Command::new(lxrs)
            .args(["info", "-n", name, "-i"])
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains("IP:") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    sh(&["ls", "--fancy"])?;
    sh(&["info", "-n", name])?;
    sh(&[
        "attach",
        "-n",
        name,
        "--",
        "/bin/sh",
        "-c",
        "echo hello from $(hostname); ps",
    ])?;
    sh(&["stop", "-n", name])?;
    sh(&["ls", "--fancy"])?;
    sh(&["destroy", "-n", name])?;
    Ok(())
}
