//! `lxrs config upgrade`: rewrite legacy key names (§1.7) to current ones, line by line, like
//! LXC's `lxc-update-config`: comments and layout kept, commented-out `lxc.` lines rewritten
//! too, `lxc.network.*` blocks numbered with a running counter, `lxc.rootfs` gets its backend
//! prefix, keys without replacement deleted. Included files are not touched.

use crate::document::{Document, LineKind};
use crate::error::{ConfigError, Source, Warning};
use crate::keys::{self, KeyRef, NicRef};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Lines rewritten.
    pub changed: usize,
    /// Lines deleted (keys without replacement).
    pub removed: usize,
    /// Lines that could not be converted (left as they were).
    pub notes: Vec<Warning>,
    /// Backup written (by `upgrade_file`).
    pub backup: Option<PathBuf>,
}

/// Key and value spans of an active or commented-out `lxc.` line.
fn spans(text: &str, kind: &LineKind) -> Option<(bool, Range<usize>, Range<usize>)> {
    match kind {
        LineKind::Entry { key, value } => Some((false, key.clone(), value.clone())),
        LineKind::Comment => {
            let hash = text.find('#')?;
            let after = &text[hash..];
            let body = after.trim_start_matches(['#', ' ', '\t']);
            let off = text.len() - body.len();
            match crate::document::classify(body) {
                LineKind::Entry { key, value } => Some((
                    true,
                    key.start + off..key.end + off,
                    value.start + off..value.end + off,
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Upgrade a document in memory.
pub fn upgrade_document(doc: &Document) -> (Document, UpgradeReport) {
    let file: Arc<Path> = Arc::from(doc.path());
    let backend = doc
        .get("lxc.rootfs.backend")
        .map(str::to_string)
        .filter(|b| !b.is_empty());
    let mut next: u32 = doc
        .entries()
        .filter_map(|e| {
            e.key
                .strip_prefix("lxc.net.")?
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .filter(|n| u64::from(*n) < keys::NET_INDEX_LIMIT - 1)
        .max()
        .map_or(0, |m| m + 1);
    let mut cur: Option<u32> = None;
    let mut out = doc.clone();
    let mut rep = UpgradeReport::default();
    let mut to_remove = vec![];
    for (i, line) in doc.lines().iter().enumerate() {
        let text = line.text();
        let Some((commented, kr, vr)) = spans(text, line.kind()) else {
            continue;
        };
        let key = &text[kr.clone()];
        let value = &text[vr.clone()];
        let Ok(r) = keys::resolve(key) else { continue };
        if !r.legacy {
            continue;
        }
        let mut new_value: Option<String> = None;
        let new_key = match r.key {
            KeyRef::Deleted(_) => {
                if !commented {
                    to_remove.push(i);
                }
                continue;
            }
            KeyRef::Exact("lxc.rootfs.path") => {
                if !value.is_empty() {
                    new_value = Some(crate::typed::legacy_rootfs_value(value, backend.as_deref()));
                }
                "lxc.rootfs.path".to_string()
            }
            KeyRef::Exact(k) => k.to_string(),
            KeyRef::Prlimit(n) => format!("lxc.prlimit.{n}"),
            KeyRef::Net { nic, sub } => {
                let idx = match nic {
                    NicRef::LegacyNew if commented => cur.unwrap_or(next),
                    NicRef::LegacyNew if value.is_empty() => {
                        cur = None;
                        out.replace_line_text(
                            i,
                            format!("{}lxc.net{}", &text[..kr.start], &text[kr.end..]),
                        );
                        rep.changed += 1;
                        continue;
                    }
                    NicRef::LegacyNew => {
                        cur = Some(next);
                        next += 1;
                        cur.unwrap_or_default()
                    }
                    NicRef::LegacyLast => match cur {
                        Some(n) => n,
                        None if commented => next,
                        None => {
                            rep.notes.push(Warning {
                                source: Source::new(&file, i + 1),
                                key: Some(key.to_string()),
                                message: "network key before any lxc.network.type: left unchanged"
                                    .into(),
                            });
                            continue;
                        }
                    },
                    NicRef::LegacyPosition(n) => n,
                    NicRef::Index(n) => n,
                };
                format!("lxc.net.{idx}.{sub}")
            }
            _ => continue,
        };
        let mut t = String::with_capacity(text.len() + 8);
        t.push_str(&text[..kr.start]);
        t.push_str(&new_key);
        match new_value {
            Some(v) => {
                t.push_str(&text[kr.end..vr.start]);
                t.push_str(&v);
                t.push_str(&text[vr.end..]);
            }
            None => t.push_str(&text[kr.end..]),
        }
        out.replace_line_text(i, t);
        rep.changed += 1;
    }
    for i in to_remove.into_iter().rev() {
        out.remove_line(i);
        rep.removed += 1;
    }
    (out, rep)
}

/// Upgrade a file in place: `<file>.backup` is written first (atomically), then the file is
/// replaced atomically. Nothing is written when there is nothing to change.
pub fn upgrade_file(path: impl AsRef<Path>) -> Result<UpgradeReport, ConfigError> {
    let path = path.as_ref();
    let doc = Document::load(path)?;
    let (new, mut rep) = upgrade_document(&doc);
    if rep.changed == 0 && rep.removed == 0 {
        return Ok(rep);
    }
    let mut backup = path.as_os_str().to_owned();
    backup.push(".backup");
    let backup = PathBuf::from(backup);
    crate::document::write_atomic(&backup, doc.to_string().as_bytes())?;
    new.save_atomic(path)?;
    tracing::info!(file = %path.display(), changed = rep.changed, removed = rep.removed, "config upgraded");
    rep.backup = Some(backup);
    Ok(rep)
}
