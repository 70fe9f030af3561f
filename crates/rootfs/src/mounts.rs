//! Mount table queries.

use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, read from a mountinfo file (normally
/// `/proc/self/mountinfo`), deepest first.
pub fn mounts_under(mountinfo: &Path, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(mountinfo)?;
    Ok(parse_mounts_under(&text, dir))
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_mounts_under(text: &str, dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_mounts_deepest_first() {
        let text = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    30 22 0:5 / /var/lib/lxrs/c1/rootfs rw - none none rw\n\
                    31 30 0:6 / /var/lib/lxrs/c1/rootfs/proc rw - proc proc rw\n\
                    32 22 0:7 / /var/lib/lxrs/c10 rw - tmpfs t rw\n\
                    33 22 0:8 / /var/lib/lxrs/c1/with\\040space rw - tmpfs t rw\n";
        let m = parse_mounts_under(text, Path::new("/var/lib/lxrs/c1"));
        assert_eq!(
            m,
            vec![
                PathBuf::from("/var/lib/lxrs/c1/rootfs/proc"),
                PathBuf::from("/var/lib/lxrs/c1/rootfs"),
                PathBuf::from("/var/lib/lxrs/c1/with space"),
            ]
        );
    }
}
