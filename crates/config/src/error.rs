//! Errors, warnings and source locations.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a configuration item came from: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub file: Arc<Path>,
    pub line: usize,
}

impl Source {
    pub fn new(file: &Arc<Path>, line: usize) -> Self {
        Source {
            file: Arc::clone(file),
            line,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value together with the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    /// Where it was read (named `origin` so it never shadows a `source` field of `T`).
    pub origin: Source,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Source) -> Self {
        Sourced { value, origin }
    }
}

impl<T> std::ops::Deref for Sourced<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// Every error the crate reports. Each names the file and line (0 when the file as a whole is
/// concerned), and the key and value involved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{file}:{line}: unknown configuration key `{key}`{}",
        suggestion_text(suggestion)
    )]
    UnknownKey {
        file: PathBuf,
        line: usize,
        key: String,
        suggestion: Option<String>,
    },

    #[error("{file}:{line}: `{text}`: a `lxc.` line needs `key = value`")]
    MissingEquals {
        file: PathBuf,
        line: usize,
        text: String,
    },

    #[error("{file}:{line}: {key} = {value}: {reason}")]
    InvalidValue {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },

    #[error("{file}:{line}: {key} = {value}: {reason}")]
    Conflict {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },

    #[error("{file}:{line}: {key} = {value}: cannot include: {source}")]
    Include {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}:{line}: {key} = {value}: include loop or nesting deeper than {max}")]
    IncludeDepth {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        max: usize,
    },

    #[error("{file}: cannot {op}: {source}")]
    Io {
        file: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}:{line}: file is not valid UTF-8")]
    NotUtf8 { file: PathBuf, line: usize },

    #[error("invalid edit of {file}: {key} = {value}: {reason}")]
    BadEdit {
        file: PathBuf,
        key: String,
        value: String,
        reason: String,
    },

    #[error("{}", join_errors(errors))]
    Multiple { errors: Vec<ConfigError> },
}

fn join_errors(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    pub(crate) fn invalid(src: &Source, key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::InvalidValue {
            file: src.file.to_path_buf(),
            line: src.line,
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn conflict(
        src: &Source,
        key: &str,
        value: &str,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Conflict {
            file: src.file.to_path_buf(),
            line: src.line,
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(file: &Path, op: &'static str, source: std::io::Error) -> Self {
        ConfigError::Io {
            file: file.to_path_buf(),
            op,
            source,
        }
    }

    /// Build one error out of many (`Multiple` only when there is more than one).
    pub fn from_many(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple { errors }),
        }
    }

    /// The individual errors (flattening `Multiple`).
    pub fn flatten(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Multiple { errors } => errors.iter().flat_map(|e| e.flatten()).collect(),
            e => vec![e],
        }
    }

    /// File and line the error points at, if any.
    pub fn location(&self) -> Option<(&Path, usize)> {
        match self {
            ConfigError::UnknownKey { file, line, .. }
            | ConfigError::MissingEquals { file, line, .. }
            | ConfigError::InvalidValue { file, line, .. }
            | ConfigError::Conflict { file, line, .. }
            | ConfigError::Include { file, line, .. }
            | ConfigError::IncludeDepth { file, line, .. }
            | ConfigError::NotUtf8 { file, line } => Some((file, *line)),
            ConfigError::Io { file, .. } | ConfigError::BadEdit { file, .. } => Some((file, 0)),
            ConfigError::Multiple { .. } => None,
        }
    }
}

/// A non-fatal finding (martian line, legacy key, ignored key, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub source: Source,
    /// Key involved, if the line had one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: {}: {}", self.source, k, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}
