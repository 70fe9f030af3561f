//! The container config a built-in template leaves behind, in LXC's layout (`lxc-download`,
//! `lxc-ubuntu`): what `lxrs create` wrote first (comments, `lxc.rootfs.path`, the `-f` file's
//! keys), then `# Distribution configuration` (the template's or image's lines), then
//! `# Container specific configuration` (the create's own `lxc.*` lines, so they win over the
//! distribution's, minus exact duplicates; `lxc.uts.name`), then `# Network configuration`
//! (the `lxc.net.*` lines) last. Written atomically.

use std::path::Path;

/// The new config text. `current`: the config as `lxrs create` wrote it; `distribution`: the
/// template's lines; `extra`: container lines the template adds (e.g. `lxc.mount.fstab`).
pub fn layout(current: &str, distribution: &str, extra: &[String], name: &str) -> String {
    let (mut keep, mut net, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for l in current.lines() {
        let t = l.trim_start();
        if t.starts_with("lxc.net.") || t.starts_with("lxc.network.") {
            net.push(l);
        } else if t.starts_with("lxc.") {
            let k = t.split('=').next().unwrap_or("").trim();
            if k != "lxc.uts.name" && k != "lxc.utsname" {
                other.push(l);
            }
        } else {
            keep.push(l);
        }
    }
    while keep.last().is_some_and(|l| l.trim().is_empty()) {
        keep.pop();
    }
    let mut out = keep.join("\n");
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str("# Distribution configuration\n");
    out.push_str(distribution.trim_start_matches('\n'));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("\n# Container specific configuration\n");
    let dist_lines: Vec<&str> = distribution.lines().map(str::trim).collect();
    for l in other.iter().filter(|l| !dist_lines.contains(&l.trim())) {
        out.push_str(l);
        out.push('\n');
    }
    for l in extra {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!("lxc.uts.name = {name}\n"));
    if !net.is_empty() {
        out.push_str("\n# Network configuration\n");
        for l in &net {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Rewrite `cfg` in that layout (temp file, fsync, rename).
pub fn install(
    cfg: &Path,
    distribution: &str,
    extra: &[String],
    name: &str,
) -> std::io::Result<()> {
    let cur = std::fs::read_to_string(cfg)?;
    let text = layout(&cur, distribution, extra, name);
    lxrs_config::write_atomic(cfg, text.as_bytes())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lxc_layout() {
        let cur = "# Template used to create this container: debian (built-in)\n\
                   lxc.rootfs.path = dir:/var/lib/lxrs/c/rootfs\n\
                   lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n\
                   lxc.tty.max = 1\nlxc.uts.name = old\nlxc.autodev = 1\n";
        let dist = "lxc.arch = x86_64\nlxc.autodev = 1\nlxc.tty.max = 4\n";
        let out = layout(cur, dist, &["lxc.mount.fstab = /p/fstab".into()], "c");
        assert_eq!(
            out,
            "# Template used to create this container: debian (built-in)\n\n\
             # Distribution configuration\n\
             lxc.arch = x86_64\nlxc.autodev = 1\nlxc.tty.max = 4\n\n\
             # Container specific configuration\n\
             lxc.rootfs.path = dir:/var/lib/lxrs/c/rootfs\n\
             lxc.tty.max = 1\n\
             lxc.mount.fstab = /p/fstab\n\
             lxc.uts.name = c\n\n\
             # Network configuration\n\
             lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n"
        );
        // the create's own lxc.tty.max = 1 comes after the distribution's 4: it wins
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("config");
        std::fs::write(&cfg, cur).unwrap();
        install(&cfg, dist, &[], "c").unwrap();
        assert!(std::fs::read_to_string(&cfg)
            .unwrap()
            .ends_with("lxc.net.0.link = lxcbr0\n"));
    }
}
