//! Phase 1: read a document, resolve includes, map legacy keys to current ones (with the
//! legacy "new NIC at each `lxc.network.type`" rule), apply the clearing rules of §1.3.
//! The result is the *effective* list of `key = value` entries, in file order, each with its
//! source. The typed view (phase 2) and `config show` are built from it.

use crate::document::{Document, LineKind};
use crate::error::{ConfigError, Source, Warning};
use crate::keys::{self, KeyRef, NicRef};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One effective `key = value`, with the current key name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Current key name (`lxc.net.0.link`, `lxc.uts.name`, ...).
    pub key: String,
    pub value: String,
    /// The key as written in the file (may be a legacy name).
    pub raw_key: String,
    pub source: Source,
}

/// How to expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Read `lxc.include` files (off for fuzzing or for a purely textual check).
    pub follow_includes: bool,
    /// Maximum include nesting.
    pub max_depth: usize,
}

impl Default for ExpandOptions {
    fn default() -> Self {
        ExpandOptions {
            follow_includes: true,
            max_depth: 16,
        }
    }
}

/// Output of phase 1.
#[derive(Debug, Default)]
pub struct Expanded {
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
    pub errors: Vec<ConfigError>,
    /// Every file read, top-level first.
    pub files: Vec<PathBuf>,
}

struct Expander {
    opts: ExpandOptions,
    out: Expanded,
    /// NIC index -> type (None: created by a subkey, no type yet).
    nics: BTreeMap<u32, Option<String>>,
    legacy_last: Option<u32>,
    stack: Vec<PathBuf>,
    /// Whether `stack[0]` (the top document) is canonical yet.
    top_resolved: bool,
    /// Effective entries; `None` = removed by a later clear (compacted at the end).
    slots: Vec<Option<Entry>>,
    /// Key -> live slot positions, so clears and "last wins" are not linear scans.
    by_key: HashMap<String, Vec<usize>>,
}

/// Expand a parsed document (and, per `opts`, its includes).
pub fn expand(doc: &Document, opts: ExpandOptions) -> Expanded {
    let mut x = Expander {
        opts,
        out: Expanded::default(),
        nics: BTreeMap::new(),
        legacy_last: None,
        stack: Vec::new(),
        top_resolved: false,
        slots: Vec::new(),
        by_key: HashMap::new(),
    };
    // Resolved only when an include needs comparing with it (most configs have none).
    x.stack.push(doc.path().to_path_buf());
    x.doc(doc, 0);
    x.out.entries = x.slots.into_iter().flatten().collect();
    x.out
}

/// Load `path` and expand it. A missing or unreadable top-level file is an error in `errors`.
pub fn expand_file(path: &Path, opts: ExpandOptions) -> Expanded {
    match Document::load(path) {
        Ok(doc) => expand(&doc, opts),
        Err(e) => Expanded {
            errors: vec![e],
            ..Default::default()
        },
    }
}

impl Expander {
    fn doc(&mut self, doc: &Document, depth: usize) {
        let file: Arc<Path> = Arc::from(doc.path());
        self.out.files.push(doc.path().to_path_buf());
        for (i, line) in doc.lines().iter().enumerate() {
            let src = Source::new(&file, i + 1);
            match line.kind() {
                LineKind::Blank | LineKind::Comment => {}
                LineKind::Other => self.out.warnings.push(Warning {
                    source: src,
                    key: None,
                    message: format!("`{}`: not an `lxc.` line, ignored", line.text().trim()),
                }),
                LineKind::Malformed => self.out.errors.push(ConfigError::MissingEquals {
                    file: file.to_path_buf(),
                    line: i + 1,
                    text: line.text().trim().to_string(),
                }),
                LineKind::Entry { .. } => {
                    let (k, v) = line.entry().unwrap_or_default();
                    self.entry(k, v, src, depth);
                }
            }
        }
    }

    fn err(&mut self, src: &Source, key: &str, value: &str, reason: impl Into<String>) {
        self.out
            .errors
            .push(ConfigError::invalid(src, key, value, reason));
    }

    fn push(&mut self, key: String, value: &str, raw_key: &str, src: Source) {
        self.by_key
            .entry(key.clone())
            .or_default()
            .push(self.slots.len());
        self.slots.push(Some(Entry {
            key,
            value: value.to_string(),
            raw_key: raw_key.to_string(),
            source: src,
        }));
    }

    /// Remove every entry with exactly this key.
    fn remove_key(&mut self, key: &str) {
        if let Some(pos) = self.by_key.remove(key) {
            for i in pos {
                self.slots[i] = None;
            }
        }
    }

    /// Remove every entry whose key matches (for prefix clears; rare).
    fn remove_where(&mut self, f: impl Fn(&str) -> bool) {
        let slots = &mut self.slots;
        self.by_key.retain(|k, pos| {
            if f(k) {
                for &i in pos.iter() {
                    slots[i] = None;
                }
                false
            } else {
                true
            }
        });
    }

    /// Scalar: last wins (previous removed); empty value unsets.
    fn scalar(&mut self, key: String, value: &str, raw: &str, src: Source) {
        self.remove_key(&key);
        if !value.is_empty() {
            self.push(key, value, raw, src);
        }
    }

    /// List: empty value clears, else append.
    fn list(&mut self, key: String, value: &str, raw: &str, src: Source) {
        if value.is_empty() {
            self.remove_key(&key);
        } else {
            self.push(key, value, raw, src);
        }
    }

    /// Keyed (prlimit/sysctl/proc): empty clears that key, else replace in place or append.
    fn keyed(&mut self, key: String, value: &str, raw: &str, src: Source) {
        let existing = self.by_key.get(&key).and_then(|p| p.first().copied());
        if value.is_empty() {
            self.remove_key(&key);
        } else if let Some(e) = existing.and_then(|i| self.slots[i].as_mut()) {
            e.value = value.to_string();
            e.raw_key = raw.to_string();
            e.source = src;
        } else {
            self.push(key, value, raw, src);
        }
    }

    fn must_be_empty(&mut self, src: &Source, key: &str, value: &str) -> bool {
        if value.is_empty() {
            true
        } else {
            self.err(
                src,
                key,
                value,
                format!("`{key}` only takes an empty value (it clears)"),
            );
            false
        }
    }

    fn entry(&mut self, raw: &str, value: &str, src: Source, depth: usize) {
        let resolved = match keys::resolve(raw) {
            Ok(r) => r,
            Err(u) => {
                let e = match u.detail {
                    Some(d) => ConfigError::invalid(&src, raw, value, d),
                    None => ConfigError::UnknownKey {
                        file: src.file.to_path_buf(),
                        line: src.line,
                        key: raw.to_string(),
                        suggestion: u.suggestion,
                    },
                };
                self.out.errors.push(e);
                return;
            }
        };
        if resolved.legacy && !matches!(resolved.key, KeyRef::Net { .. }) {
            let message = match &resolved.key {
                KeyRef::Deleted(_) => {
                    "legacy key without replacement: ignored (`lxrs config upgrade` removes it)"
                        .to_string()
                }
                KeyRef::Exact(k) => {
                    format!("legacy key, current name `{k}` (`lxrs config upgrade` rewrites it)")
                }
                _ => "legacy key (`lxrs config upgrade` rewrites it)".to_string(),
            };
            self.out.warnings.push(Warning {
                source: src.clone(),
                key: Some(raw.to_string()),
                message,
            });
        }
        match resolved.key {
            KeyRef::Exact("lxc.include") => self.include(raw, value, &src, depth),
            KeyRef::Exact("lxc.net") => {
                if self.must_be_empty(&src, raw, value) {
                    self.remove_where(|k| k.starts_with("lxc.net."));
                    self.nics.clear();
                    self.legacy_last = None;
                }
            }
            KeyRef::Exact(
                k @ ("lxc.cgroup" | "lxc.cgroup2" | "lxc.prlimit" | "lxc.sysctl" | "lxc.proc"
                | "lxc.hook"),
            ) => {
                if self.must_be_empty(&src, raw, value) {
                    let prefix = format!("{k}.");
                    self.remove_where(|key| {
                        key.starts_with(&prefix) && !keys::EXACT_KEYS.contains(&key)
                            || (k == "lxc.hook"
                                && key.starts_with(&prefix)
                                && key != "lxc.hook.version")
                    });
                }
            }
            KeyRef::Exact("lxc.rootfs.path") if resolved.legacy && !value.is_empty() => {
                // `lxc.rootfs = /path`: current form carries the backend prefix.
                let v = crate::typed::legacy_rootfs_value(value, None);
                self.scalar("lxc.rootfs.path".into(), &v, raw, src);
            }
            KeyRef::Exact(k) => {
                if keys::is_list_key(k) {
                    self.list(k.to_string(), value, raw, src)
                } else {
                    self.scalar(k.to_string(), value, raw, src)
                }
            }
            KeyRef::NetNic(n) => {
                if self.must_be_empty(&src, raw, value) {
                    self.remove_nic(n);
                }
            }
            KeyRef::Net { nic, sub } => self.net(nic, sub, raw, value, src),
            KeyRef::Cgroup { v2, sub } => {
                let key = format!("{}.{sub}", if v2 { "lxc.cgroup2" } else { "lxc.cgroup" });
                if value.is_empty() {
                    self.remove_key(&key);
                } else {
                    self.push(key, value, raw, src);
                }
            }
            KeyRef::Prlimit(n) => self.keyed(format!("lxc.prlimit.{n}"), value, raw, src),
            KeyRef::Sysctl(n) => self.keyed(format!("lxc.sysctl.{n}"), value, raw, src),
            KeyRef::Proc(n) => self.keyed(format!("lxc.proc.{n}"), value, raw, src),
            KeyRef::NamespaceShare(n) => {
                self.scalar(format!("lxc.namespace.share.{n}"), value, raw, src)
            }
            KeyRef::Deleted(_) => {}
        }
    }

    fn remove_nic(&mut self, n: u32) {
        let prefix = format!("lxc.net.{n}.");
        self.remove_where(|k| k.starts_with(&prefix));
        self.nics.remove(&n);
    }

    fn net(&mut self, nic: NicRef, sub: &'static str, raw: &str, value: &str, src: Source) {
        let n = match nic.clone() {
            NicRef::Index(n) => n,
            NicRef::LegacyNew => {
                if value.is_empty() {
                    self.remove_where(|k| k.starts_with("lxc.net."));
                    self.nics.clear();
                    self.legacy_last = None;
                    return;
                }
                let n = self.nics.keys().next_back().map_or(0, |m| m + 1);
                self.legacy_last = Some(n);
                n
            }
            NicRef::LegacyLast => match self.legacy_last.filter(|n| self.nics.contains_key(n)) {
                Some(n) => n,
                None => {
                    self.err(
                        &src,
                        raw,
                        value,
                        "network is not created: a `lxc.network.type` line must come first",
                    );
                    return;
                }
            },
            NicRef::LegacyPosition(p) => match self.nics.keys().nth(p as usize) {
                Some(n) => *n,
                None => {
                    self.err(
                        &src,
                        raw,
                        value,
                        format!("there is no network interface number {p} yet"),
                    );
                    return;
                }
            },
        };
        let key = format!("lxc.net.{n}.{sub}");
        if !matches!(nic, NicRef::Index(_)) {
            self.out.warnings.push(Warning {
                source: src.clone(),
                key: Some(raw.to_string()),
                message: format!(
                    "legacy key, current name `{key}` (`lxrs config upgrade` rewrites it)"
                ),
            });
        }
        if sub == "type" {
            self.remove_nic(n);
            if value.is_empty() {
                self.nics.insert(n, None);
            } else {
                self.nics.insert(n, Some(value.to_string()));
                self.push(key, value, raw, src);
            }
            return;
        }
        let ty = self.nics.entry(n).or_insert(None).clone();
        if !value.is_empty() {
            if let Some(want) = keys::net_sub_type(sub) {
                if ty.as_deref() != Some(want) {
                    let have = match ty {
                        Some(t) => format!("lxc.net.{n}.type is `{t}`"),
                        None => format!("lxc.net.{n}.type is not set before it"),
                    };
                    self.err(
                        &src,
                        raw,
                        value,
                        format!("`{sub}` only applies to `{want}` interfaces, but {have}"),
                    );
                    return;
                }
            }
        }
        if keys::NET_LIST_SUBKEYS.contains(&sub) {
            self.list(key, value, raw, src)
        } else {
            self.scalar(key, value, raw, src)
        }
    }

    fn include(&mut self, raw: &str, value: &str, src: &Source, depth: usize) {
        if value.is_empty() || !self.opts.follow_includes {
            return;
        }
        let inc_err = |e: std::io::Error| ConfigError::Include {
            file: src.file.to_path_buf(),
            line: src.line,
            key: raw.to_string(),
            value: value.to_string(),
            source: e,
        };
        if depth + 1 > self.opts.max_depth {
            self.out.errors.push(ConfigError::IncludeDepth {
                file: src.file.to_path_buf(),
                line: src.line,
                key: raw.to_string(),
                value: value.to_string(),
                max: self.opts.max_depth,
            });
            return;
        }
        let mut path = PathBuf::from(value);
        if path.is_relative() {
            if let Some(dir) = src.file.parent() {
                path = dir.join(path);
            }
        }
        let meta = std::fs::metadata(&path);
        let is_dir = value.ends_with('/') || meta.as_ref().map(|m| m.is_dir()).unwrap_or(false);
        if is_dir {
            let rd = match std::fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(dir = %path.display(), "include directory missing: nothing to include");
                    return;
                }
                Err(e) => return self.out.errors.push(inc_err(e)),
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.len() >= 6 && n.ends_with(".conf"))
                .collect();
            names.sort();
            for n in names {
                let p = path.join(&n);
                if p.is_file() {
                    self.include_file(&p, src, raw, value, depth);
                }
            }
        } else {
            match meta {
                Err(e) => self.out.errors.push(inc_err(e)),
                Ok(m) if !m.is_file() => self.out.errors.push(inc_err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file or directory",
                ))),
                Ok(_) => self.include_file(&path, src, raw, value, depth),
            }
        }
    }

    fn include_file(&mut self, path: &Path, src: &Source, raw: &str, value: &str, depth: usize) {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if !self.top_resolved {
            self.stack[0] = canonical(&self.stack[0]);
            self.top_resolved = true;
        }
        let canon = canonical(path);
        if self.stack.contains(&canon) {
            self.out.errors.push(ConfigError::IncludeDepth {
                file: src.file.to_path_buf(),
                line: src.line,
                key: raw.to_string(),
                value: value.to_string(),
                max: self.opts.max_depth,
            });
            return;
        }
        match Document::load(path) {
            Ok(doc) => {
                self.stack.push(canon);
                self.doc(&doc, depth + 1);
                self.stack.pop();
            }
            Err(e) => self.out.errors.push(e),
        }
    }
}
