//! `lxrs device -n NAME add SRC [DEST]` / `lxrs device -n NAME del DEST` (LXC's `lxc-device`,
//! reference §6).
//!
//! Device nodes (§6.1, with the lxrs decision of §0: the SOURCE is stat'ed, not DEST): the node
//! is made at DEST inside the running container with the source's type, permission bits, major
//! and minor, by a forked child that `chroot`s into `/proc/<init>/root`; then the container's
//! monitor adds `c|b MAJOR:MINOR rwm` to the device filter (on v2 it rebuilds and atomically
//! replaces its eBPF program). `del` unlinks DEST inside and denies the same rule.
//!
//! Network interfaces (§6.2): `add` of an interface that exists on the host moves it into the
//! container (set down first, renamed to DEST in the same netlink message); `del` of an
//! interface inside the container moves it back to the host's namespace.

use crate::globals::Globals;
use anyhow::{anyhow, bail, Context, Result};
use lxrs_runtime::cgroups::{self, CgroupRequest};
use lxrs_runtime::lifecycle;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container name.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// `add` or `del` (any prefix: `a`, `ad`, `d`, `de`).
    #[arg(value_name = "add|del")]
    pub action: String,
    /// add: the host device node (or network interface); del: the path (or interface) in the
    /// container.
    #[arg(value_name = "DEV")]
    pub dev: String,
    /// add: where it appears in the container (default: DEV); del: the interface's name back
    /// on the host (default: DEV).
    #[arg(value_name = "DEST")]
    pub dest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Add,
    Del,
}

fn parse_action(s: &str) -> Result<Action> {
    if !s.is_empty() && "add".starts_with(s) {
        Ok(Action::Add)
    } else if !s.is_empty() && "del".starts_with(s) {
        Ok(Action::Del)
    } else {
        bail!("unknown action {s:?}: expected `add` or `del`")
    }
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let action = parse_action(&a.action)?;
    let lxcpath = g.lxcpath();
    let name = a.name.as_str();
    let init = match lifecycle::query(&lxcpath, name)? {
        Some(i) => i.init_pid,
        None => None,
    };
    let Some(init) = init else {
        bail!("container {name:?} is not running");
    };
    let dest = a.dest.clone().unwrap_or_else(|| a.dev.clone());
    match action {
        Action::Add if is_host_interface(&a.dev)? => {
            move_interface_in(init, &a.dev, &dest)?;
        }
        Action::Del if is_container_interface(init, &a.dev)? => {
            move_interface_out(init, &a.dev, &dest)?;
        }
        Action::Add => add_node(&lxcpath, name, init, Path::new(&a.dev), &dest)?,
        Action::Del => del_node(&lxcpath, name, init, &a.dev)?,
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// Device nodes

/// A device node's type, permission bits and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// `st_mode`: type and permission bits.
    mode: u32,
    rdev: u64,
}

impl Node {
    fn of(path: &Path, md: &std::fs::Metadata) -> Result<Node> {
        let ft = md.file_type();
        if !ft.is_char_device() && !ft.is_block_device() {
            bail!(
                "{} is not a device node (character or block device)",
                path.display()
            );
        }
        Ok(Node {
            mode: md.mode(),
            rdev: md.rdev(),
        })
    }

    fn block(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFBLK
    }

    /// `c 10:200 rwm` / `b 7:0 rwm`.
    fn rule(&self) -> String {
        cgroups::node_rule(
            true,
            self.block(),
            libc::major(self.rdev),
            libc::minor(self.rdev),
        )
        .to_string()
    }
}

/// DEST as a path from the container's root (`dev/x` and `/dev/x` are the same).
fn container_path(dest: &str) -> Result<PathBuf> {
    let p = Path::new("/").join(dest.trim_start_matches('/'));
    if dest.is_empty() || p == Path::new("/") {
        bail!("invalid destination {dest:?}: a path inside the container is needed");
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!("invalid destination {dest:?}: `..` is not allowed");
    }
    Ok(p)
}

fn add_node(lxcpath: &Path, name: &str, init: i32, src: &Path, dest: &str) -> Result<()> {
    let md = std::fs::metadata(src)
        .with_context(|| format!("cannot add {}: stat the source", src.display()))?;
    let node = Node::of(src, &md)?;
    let dest = container_path(dest)?;
    in_container(init, &NodeOp::Make { path: &dest, node })
        .with_context(|| format!("making {} in container {name:?}", dest.display()))?;
    let req = CgroupRequest::DeviceRule {
        allow: true,
        rule: node.rule(),
    };
    if let Err(e) = cgroups::control(lxcpath, name, &req) {
        // Without the rule the node is useless: take it away again.
        let _ = in_container(init, &NodeOp::Remove { path: &dest });
        return Err(anyhow!(
            "allowing {} ({}) in container {name:?}: {e}",
            src.display(),
            node.rule()
        ));
    }
    tracing::info!(
        "added {} to {name} as {} ({})",
        src.display(),
        dest.display(),
        node.rule()
    );
    Ok(())
}

fn del_node(lxcpath: &Path, name: &str, init: i32, dest: &str) -> Result<()> {
    let path = container_path(dest)?;
    // The node as the container had it; if it is gone already, the host's node of that name.
    let node = match in_container(init, &NodeOp::Remove { path: &path })
        .with_context(|| format!("removing {} from container {name:?}", path.display()))?
    {
        Some(n) => n,
        None => match std::fs::metadata(&path) {
            Ok(md) => Node::of(&path, &md)?,
            Err(_) => bail!(
                "{} is not a device node in container {name:?} (nor on the host)",
                path.display()
            ),
        },
    };
    let req = CgroupRequest::DeviceRule {
        allow: false,
        rule: node.rule(),
    };
    cgroups::control(lxcpath, name, &req)
        .map_err(|e| anyhow!("denying {} in container {name:?}: {e}", node.rule()))?;
    Ok(())
}

enum NodeOp<'a> {
    /// Unlink whatever is at `path`, `mkdir -p` its parent (0755), mknod.
    Make { path: &'a Path, node: Node },
    /// Unlink `path` if it is a device node; answers what it was.
    Remove { path: &'a Path },
}

/// Run `op` in a forked child chrooted into `/proc/<init>/root`. Returns the removed node for
/// `Remove` (None when nothing was there).
fn in_container(init: i32, op: &NodeOp<'_>) -> Result<Option<Node>> {
    // Forking to run Rust code needs a single-threaded process (the CLI is).
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        })
        .unwrap_or(1);
    if threads != 1 {
        bail!("internal error: {threads} threads alive, refusing to fork");
    }
    let root = PathBuf::from(format!("/proc/{init}/root"));
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: the process is single-threaded (checked above), so the child's copy of the heap
    // and of every lock is consistent; the child only runs `child_op` and `_exit`s.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let msg = match child_op(&root, op) {
                Ok(None) => "ok".to_string(),
                Ok(Some(n)) => format!("ok {} {}", n.mode, n.rdev),
                Err(e) => format!("err {e}"),
            };
            let _ = nix::unistd::write(&w, msg.as_bytes());
            // SAFETY: leave the child at once, without running the parent's atexit handlers
            // or flushing its copies of stdio buffers.
            unsafe { libc::_exit(0) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut out = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match nix::unistd::read(r.as_raw_fd(), &mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("read the child's answer"),
                }
            }
            while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
            let text = String::from_utf8_lossy(&out);
            if let Some(e) = text.strip_prefix("err ") {
                bail!("{e}");
            }
            let mut it = text.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some("ok"), None, _) => Ok(None),
                (Some("ok"), Some(m), Some(d)) => Ok(Some(Node {
                    mode: m.parse().context("child answer")?,
                    rdev: d.parse().context("child answer")?,
                })),
                _ => bail!("the helper process died without an answer ({text:?})"),
            }
        }
    }
}

/// The child's work (already forked): chroot, then the node operation.
fn child_op(root: &Path, op: &NodeOp<'_>) -> Result<Option<Node>, String> {
    nix::unistd::chroot(root).map_err(|e| format!("chroot {}: {e}", root.display()))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir / in the container: {e}"))?;
    let unlink_existing = |path: &Path| -> Result<Option<std::fs::Metadata>, String> {
        match std::fs::symlink_metadata(path) {
            Ok(md) => {
                std::fs::remove_file(path)
                    .map_err(|e| format!("unlink {}: {e}", path.display()))?;
                Ok(Some(md))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("lstat {}: {e}", path.display())),
        }
    };
    match op {
        NodeOp::Make { path, node } => {
            unlink_existing(path)?;
            if let Some(parent) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| format!("mkdir -p {}: {e}", parent.display()))?;
            }
            // The node gets exactly the source's permission bits.
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            let kind = nix::sys::stat::SFlag::from_bits_truncate(node.mode & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(node.mode & 0o7777);
            nix::sys::stat::mknod(*path, kind, perm, node.rdev as nix::sys::stat::dev_t)
                .map_err(|e| format!("mknod {}: {e}", path.display()))?;
            Ok(None)
        }
        NodeOp::Remove { path } => {
            let md = match std::fs::symlink_metadata(path) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("lstat {}: {e}", path.display())),
            };
            let node = Node::of(path, &md).map_err(|e| e.to_string())?;
            unlink_existing(path)?;
            Ok(Some(node))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network interfaces

/// Whether `name` could be a network interface name at all (not a path).
fn ifname_like(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && !name.contains('/')
        && !name.contains(char::is_whitespace)
        && name != "."
        && name != ".."
}

/// Whether `name` is a network interface in the host's (this process's) namespace.
fn is_host_interface(name: &str) -> Result<bool> {
    if !ifname_like(name) {
        return Ok(false);
    }
    let mut nl = lxrs_netns::Netlink::new().context("netlink socket")?;
    Ok(nl
        .find_link(name)
        .with_context(|| format!("looking up interface {name}"))?
        .is_some())
}

/// Whether `name` is a network interface in the container's namespace.
fn is_container_interface(init: i32, name: &str) -> Result<bool> {
    if !ifname_like(name) {
        return Ok(false);
    }
    let mut nl = lxrs_netns::Netlink::for_pid(init as u32)
        .context("netlink socket in the container's namespace")?;
    Ok(nl
        .find_link(name)
        .with_context(|| format!("looking up interface {name} in the container"))?
        .is_some())
}

/// §6.2 add: set down if up, move into the container renamed to `dest` (one message).
fn move_interface_in(init: i32, dev: &str, dest: &str) -> Result<()> {
    if !ifname_like(dest) {
        bail!("invalid interface name {dest:?}");
    }
    let mut nl = lxrs_netns::Netlink::new().context("netlink socket")?;
    let link = nl
        .link(dev)
        .with_context(|| format!("looking up interface {dev}"))?;
    if link.flags & libc::IFF_UP as u32 != 0 {
        nl.set_down(dev)
            .with_context(|| format!("setting {dev} down"))?;
    }
    nl.move_link(dev, lxrs_netns::NsRef::Pid(init as u32), Some(dest))
        .with_context(|| format!("moving {dev} into the container as {dest}"))?;
    Ok(())
}

/// §6.2 del: set down inside, move back to the host's namespace renamed to `dest`.
fn move_interface_out(init: i32, dev: &str, dest: &str) -> Result<()> {
    if !ifname_like(dest) {
        bail!("invalid interface name {dest:?}");
    }
    let host = lxrs_netns::NetNs::current().context("opening the host network namespace")?;
    let mut nl = lxrs_netns::Netlink::for_pid(init as u32)
        .context("netlink socket in the container's namespace")?;
    nl.set_down(dev)
        .with_context(|| format!("setting {dev} down in the container"))?;
    use std::os::fd::AsFd;
    nl.move_link(dev, lxrs_netns::NsRef::Fd(host.as_fd()), Some(dest))
        .with_context(|| format!("moving {dev} back to the host as {dest}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_by_prefix() {
        for s in ["a", "ad", "add"] {
            assert_eq!(parse_action(s).unwrap(), Action::Add);
        }
        for s in ["d", "de", "del"] {
            assert_eq!(parse_action(s).unwrap(), Action::Del);
        }
        for s in ["", "adx", "delete", "x"] {
            assert!(parse_action(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn destinations_are_rooted_and_checked() {
        assert_eq!(container_path("/dev/x").unwrap(), PathBuf::from("/dev/x"));
        assert_eq!(container_path("dev/x").unwrap(), PathBuf::from("/dev/x"));
        assert!(container_path("").is_err());
        assert!(container_path("/").is_err());
        assert!(container_path("/dev/../etc/x").is_err());
    }

    #[test]
    fn rules_follow_the_node() {
        let md = std::fs::metadata("/dev/null").unwrap();
        let n = Node::of(Path::new("/dev/null"), &md).unwrap();
        assert_eq!(n.rule(), "c 1:3 rwm");
        let e = Node::of(Path::new("/etc/hostname"), &std::fs::metadata("/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a device node"), "{e}");
        assert!(ifname_like("eth0") && ifname_like("veth1234abcd"));
        assert!(!ifname_like("/dev/null") && !ifname_like("a-very-long-interface-name"));
    }
}
