//! Lossless lxc.conf(5) document: every byte of the file is kept (order, comments, blank and
//! whitespace-only lines, CRLF, missing final newline), so `parse` then `to_string` gives back
//! the input exactly. Edits touch only the lines they must.

use crate::error::ConfigError;
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Line terminator as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    Lf,
    CrLf,
    Cr,
    /// Last line of a file without a trailing newline.
    None,
}

impl Eol {
    pub fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
            Eol::Cr => "\r",
            Eol::None => "",
        }
    }
}

/// What a line is, per lxc.conf(5) section 1.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or whitespace-only.
    Blank,
    /// First non-blank char is `#`.
    Comment,
    /// `lxc.<key> = <value>`; ranges index into the line text (value: trimmed, quotes stripped).
    Entry {
        key: Range<usize>,
        value: Range<usize>,
    },
    /// A `lxc.` line without `=` (an error when the config is interpreted).
    Malformed,
    /// Any other line ("martian"): kept and ignored.
    Other,
}

/// One physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    text: String,
    eol: Eol,
    kind: LineKind,
}

const KEY_TRAIL: &[char] = &[' ', '\t', '\r', '\n'];
const BLANKS: &[char] = &[' ', '\t', '\x0c', '\r', '\n', '\x0b'];

/// Classify one line (without terminator).
pub fn classify(text: &str) -> LineKind {
    let body = text.trim_start_matches([' ', '\t']);
    let off = text.len() - body.len();
    if body.trim_matches(BLANKS).is_empty() {
        return LineKind::Blank;
    }
    if body.starts_with('#') {
        return LineKind::Comment;
    }
    if !body.starts_with("lxc.") {
        return LineKind::Other;
    }
    let Some(eq) = body.find('=') else {
        return LineKind::Malformed;
    };
    let key = body[..eq].trim_end_matches(KEY_TRAIL);
    let key = off..off + key.len();
    let vstart = off + eq + 1;
    let raw = &text[vstart..];
    let lt = raw.trim_start_matches([' ', '\t']);
    let v = lt.trim_end_matches([' ', '\t', '\r', '\n']);
    let mut start = vstart + (raw.len() - lt.len());
    let mut end = start + v.len();
    let b = v.as_bytes();
    if b.len() > 1 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        start += 1;
        end -= 1;
    }
    LineKind::Entry {
        key,
        value: start..end,
    }
}

impl Line {
    fn new(text: String, eol: Eol) -> Self {
        let kind = classify(&text);
        Line { text, eol, kind }
    }
    /// Text without the terminator.
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn eol(&self) -> Eol {
        self.eol
    }
    pub fn kind(&self) -> &LineKind {
        &self.kind
    }
    /// `(key, value)` for entry lines.
    pub fn entry(&self) -> Option<(&str, &str)> {
        match &self.kind {
            LineKind::Entry { key, value } => {
                Some((&self.text[key.clone()], &self.text[value.clone()]))
            }
            _ => None,
        }
    }
    pub fn key(&self) -> Option<&str> {
        self.entry().map(|(k, _)| k)
    }
}

/// A borrowed view of one `key = value` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// 1-based line number.
    pub line: usize,
    pub key: &'a str,
    pub value: &'a str,
}

/// A whole config file, byte-exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    path: PathBuf,
    lines: Vec<Line>,
}

/// Quote a value for writing so that reading it back gives exactly `value`.
pub fn quote_value(value: &str) -> String {
    let b = value.as_bytes();
    let ws = |c: u8| c == b' ' || c == b'\t';
    let needs = !b.is_empty()
        && (ws(b[0])
            || ws(b[b.len() - 1])
            || (b.len() > 1 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0]));
    if needs {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

fn check_edit(path: &Path, key: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::BadEdit {
        file: path.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if !key.starts_with("lxc.") {
        return Err(bad("keys start with `lxc.`"));
    }
    if key.contains(['=', ' ', '\t', '#']) || key.contains(['\r', '\n', '\0']) {
        return Err(bad("key contains whitespace, `=` or `#`"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(bad("value contains a line break"));
    }
    Ok(())
}

impl Document {
    /// Split `text` into lines (on `\n`, `\r\n` and lone `\r`, like LXC) and classify them.
    /// Never fails: malformed lines are kept and reported when the config is interpreted.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Document {
        let mut lines = Vec::with_capacity(text.len() / 32 + 1);
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    lines.push(Line::new(text[start..i].to_string(), Eol::Lf));
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    let (eol, n) = if bytes.get(i + 1) == Some(&b'\n') {
                        (Eol::CrLf, 2)
                    } else {
                        (Eol::Cr, 1)
                    };
                    lines.push(Line::new(text[start..i].to_string(), eol));
                    i += n;
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < bytes.len() {
            lines.push(Line::new(text[start..].to_string(), Eol::None));
        }
        Document {
            path: path.into(),
            lines,
        }
    }

    /// Read and parse a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Document, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ConfigError::io(path, "read", e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            ConfigError::NotUtf8 {
                file: path.to_path_buf(),
                line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
            }
        })?;
        Ok(Document::parse(&text, path))
    }

    /// An empty document that will be saved at `path`.
    pub fn empty(path: impl Into<PathBuf>) -> Document {
        Document {
            path: path.into(),
            lines: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// All `key = value` lines in order.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.lines.iter().enumerate().filter_map(|(i, l)| {
            l.entry().map(|(key, value)| EntryRef {
                line: i + 1,
                key,
                value,
            })
        })
    }

    /// Value of the last line with exactly this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries()
            .filter(|e| e.key == key)
            .last()
            .map(|e| e.value)
    }

    /// Values of every line with exactly this key, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.entries()
            .filter(|e| e.key == key)
            .map(|e| e.value)
            .collect()
    }

    /// The terminator new lines get: the one the file mostly uses (LF for an empty file).
    fn default_eol(&self) -> Eol {
        let crlf = self.lines.iter().filter(|l| l.eol == Eol::CrLf).count();
        let lf = self.lines.iter().filter(|l| l.eol == Eol::Lf).count();
        if crlf > lf {
            Eol::CrLf
        } else {
            Eol::Lf
        }
    }

    fn push_line(&mut self, text: String) {
        let eol = self.default_eol();
        if let Some(last) = self.lines.last_mut() {
            if last.eol == Eol::None {
                last.eol = eol;
            }
        }
        self.lines.push(Line::new(text, eol));
    }

    fn render_entry(indent: &str, key: &str, value: &str) -> String {
        if value.is_empty() {
            format!("{indent}{key} =")
        } else {
            format!("{indent}{key} = {}", quote_value(value))
        }
    }

    /// Set `key`: the last line with this key is rewritten in place (indentation kept), or a
    /// new line is appended. Returns the 1-based line number written.
    pub fn set(&mut self, key: &str, value: &str) -> Result<usize, ConfigError> {
        check_edit(&self.path, key, value)?;
        let last = self.lines.iter().rposition(|l| l.key() == Some(key));
        match last {
            Some(i) => {
                let l = &self.lines[i];
                let indent_len = l.text.len() - l.text.trim_start_matches([' ', '\t']).len();
                let text = Self::render_entry(&l.text[..indent_len], key, value);
                let eol = l.eol;
                self.lines[i] = Line::new(text, eol);
                Ok(i + 1)
            }
            None => self.append(key, value),
        }
    }

    /// Append `key = value` at the end. Returns the 1-based line number.
    pub fn append(&mut self, key: &str, value: &str) -> Result<usize, ConfigError> {
        check_edit(&self.path, key, value)?;
        self.push_line(Self::render_entry("", key, value));
        Ok(self.lines.len())
    }

    /// Append a raw line (comment, blank, ...). The text must not contain line breaks.
    pub fn append_raw(&mut self, text: &str) -> Result<usize, ConfigError> {
        if text.contains(['\r', '\n']) {
            return Err(ConfigError::BadEdit {
                file: self.path.clone(),
                key: String::new(),
                value: text.to_string(),
                reason: "raw line contains a line break".into(),
            });
        }
        self.push_line(text.to_string());
        Ok(self.lines.len())
    }

    /// Remove every line with exactly this key. Returns how many were removed.
    pub fn unset(&mut self, key: &str) -> usize {
        let before = self.lines.len();
        self.lines.retain(|l| l.key() != Some(key));
        before - self.lines.len()
    }

    /// Remove every line with this key and value. Returns how many were removed.
    pub fn remove(&mut self, key: &str, value: &str) -> usize {
        let before = self.lines.len();
        self.lines.retain(|l| l.entry() != Some((key, value)));
        before - self.lines.len()
    }

    /// Replace line `idx` (0-based) by `text`, keeping its terminator.
    pub(crate) fn replace_line_text(&mut self, idx: usize, text: String) {
        let eol = self.lines[idx].eol;
        self.lines[idx] = Line::new(text, eol);
    }

    pub(crate) fn remove_line(&mut self, idx: usize) {
        self.lines.remove(idx);
    }

    /// Replace every `x`/`X` in the value of top-level hwaddr lines (`lxc.net.N.hwaddr`,
    /// `lxc.network.hwaddr`) by a random hex digit (§1.4), in place. Returns lines changed.
    pub fn expand_hwaddrs(&mut self, rng: &mut dyn FnMut() -> u8) -> usize {
        let mut changed = 0;
        for l in &mut self.lines {
            let LineKind::Entry { key, value } = &l.kind else {
                continue;
            };
            if !crate::keys::is_hwaddr_key(&l.text[key.clone()]) {
                continue;
            }
            let v = &l.text[value.clone()];
            if !v.contains(['x', 'X']) {
                continue;
            }
            let expanded = crate::hwaddr::expand_hwaddr_with(v, rng);
            let mut text = String::with_capacity(l.text.len());
            text.push_str(&l.text[..value.start]);
            text.push_str(&expanded);
            text.push_str(&l.text[value.end..]);
            *l = Line::new(text, l.eol);
            changed += 1;
        }
        changed
    }

    /// Save to the document's own path atomically.
    pub fn save(&self) -> Result<(), ConfigError> {
        self.save_atomic(&self.path)
    }

    /// Write atomically: temp file in the same directory, fsync, rename over `path`, fsync the
    /// directory. The previous file stays intact on any failure. Its permissions are kept.
    pub fn save_atomic(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        write_atomic(path.as_ref(), self.to_string().as_bytes())
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            f.write_str(&l.text)?;
            f.write_str(l.eol.as_str())?;
        }
        Ok(())
    }
}

/// Atomically replace `path` with `data` (temp file + fsync + rename + directory fsync).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let nonce = crate::hwaddr::random_u64();
        let tmp = dir.join(format!(".{base}.tmp{:016x}", nonce));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(ConfigError::io(&tmp, "create temporary file", e)),
        }
    };
    let result = (|| {
        file.write_all(data)
            .map_err(|e| ConfigError::io(&tmp, "write", e))?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| ConfigError::io(&tmp, "chmod", e))?;
        file.sync_all()
            .map_err(|e| ConfigError::io(&tmp, "fsync", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| ConfigError::io(path, "rename into place", e))?;
        let d =
            std::fs::File::open(&dir).map_err(|e| ConfigError::io(&dir, "open directory", e))?;
        d.sync_all()
            .map_err(|e| ConfigError::io(&dir, "fsync directory", e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    tracing::debug!(path = %path.display(), bytes = data.len(), ok = result.is_ok(), "atomic write");
    result
}
