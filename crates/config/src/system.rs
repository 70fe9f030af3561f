//! The system configuration, `/etc/lxrs/lxrs.conf` (lxc.system.conf(5) keys).

use crate::document::{Document, LineKind};
use crate::error::{ConfigError, Source, Warning};
use crate::keys::SYSTEM_KEYS;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where lxrs reads its system configuration.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/lxrs/lxrs.conf";
/// Default container directory.
pub const DEFAULT_LXCPATH: &str = "/var/lib/lxrs";
/// Default new-container configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lxrs/default.conf";
/// Default cgroup pattern (lxrs naming).
pub const DEFAULT_CGROUP_PATTERN: &str = "lxrs.payload.%n";

/// Parsed system configuration. `None` = not set (use the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemConfig {
    pub lxcpath: Option<PathBuf>,
    pub default_config: Option<PathBuf>,
    /// `lxc.cgroup.use`: comma-separated controllers.
    pub cgroup_use: Option<Vec<String>>,
    pub cgroup_pattern: Option<String>,
    pub lvm_vg: Option<String>,
    pub lvm_thin_pool: Option<String>,
    pub zfs_root: Option<String>,
    pub rbd_pool: Option<String>,
    pub rbd_user: Option<String>,
    pub warnings: Vec<Warning>,
}

impl SystemConfig {
    /// Load; a missing file gives the defaults.
    pub fn load(path: impl AsRef<Path>) -> Result<SystemConfig, ConfigError> {
        let path = path.as_ref();
        match Document::load(path) {
            Ok(d) => Self::from_document(&d),
            Err(ConfigError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Self::default())
            }
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<SystemConfig, ConfigError> {
        Self::from_document(&Document::parse(text, path))
    }

    pub fn from_document(doc: &Document) -> Result<SystemConfig, ConfigError> {
        let file: Arc<Path> = Arc::from(doc.path());
        let mut c = SystemConfig::default();
        let mut errors = vec![];
        for (i, l) in doc.lines().iter().enumerate() {
            let src = Source::new(&file, i + 1);
            match l.kind() {
                LineKind::Malformed => errors.push(ConfigError::MissingEquals {
                    file: file.to_path_buf(),
                    line: i + 1,
                    text: l.text().trim().to_string(),
                }),
                LineKind::Other => c.warnings.push(Warning {
                    source: src,
                    key: None,
                    message: "not an `lxc.` line, ignored".into(),
                }),
                LineKind::Entry { .. } => {
                    let (k, v) = l.entry().unwrap_or_default();
                    let opt = |v: &str| (!v.is_empty()).then(|| v.to_string());
                    match k {
                        "lxc.lxcpath" => {
                            if !v.is_empty() && !v.starts_with('/') {
                                errors.push(ConfigError::invalid(
                                    &src,
                                    k,
                                    v,
                                    "must be an absolute path",
                                ));
                            }
                            c.lxcpath = opt(v).map(PathBuf::from)
                        }
                        "lxc.default_config" => c.default_config = opt(v).map(PathBuf::from),
                        "lxc.cgroup.use" => {
                            c.cgroup_use = opt(v).map(|v| {
                                v.split(',')
                                    .map(|s| s.trim().to_string())
                                    .filter(|s| !s.is_empty())
                                    .collect()
                            })
                        }
                        "lxc.cgroup.pattern" => c.cgroup_pattern = opt(v),
                        "lxc.bdev.lvm.vg" => c.lvm_vg = opt(v),
                        "lxc.bdev.lvm.thin_pool" => c.lvm_thin_pool = opt(v),
                        "lxc.bdev.zfs.root" => c.zfs_root = opt(v),
                        "lxc.bdev.rbd.rbdpool" => c.rbd_pool = opt(v),
                        "lxc.bdev.rbd.rbduser" => c.rbd_user = opt(v),
                        _ => {
                            let suggestion = SYSTEM_KEYS
                                .iter()
                                .map(|s| (strsim::jaro_winkler(k, s), *s))
                                .max_by(|a, b| a.0.total_cmp(&b.0))
                                .filter(|(s, _)| *s > 0.8)
                                .map(|(_, s)| s.to_string());
                            errors.push(ConfigError::UnknownKey {
                                file: file.to_path_buf(),
                                line: i + 1,
                                key: k.to_string(),
                                suggestion,
                            })
                        }
                    }
                }
                _ => {}
            }
        }
        match ConfigError::from_many(errors) {
            Some(e) => Err(e),
            None => Ok(c),
        }
    }

    pub fn lxcpath_or_default(&self) -> PathBuf {
        self.lxcpath
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LXCPATH))
    }
    pub fn default_config_or_default(&self) -> PathBuf {
        self.default_config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }
    pub fn cgroup_pattern_or_default(&self) -> &str {
        self.cgroup_pattern
            .as_deref()
            .unwrap_or(DEFAULT_CGROUP_PATTERN)
    }
}
