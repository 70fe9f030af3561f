//! The "expanded" renderer used by `lxrs config show`.

use crate::document::quote_value;
use crate::expand::Entry;

/// Render effective entries as `key = value` lines, current key names, one per line.
pub fn render_entries(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(entries.len() * 40);
    for e in entries {
        out.push_str(&e.key);
        out.push_str(" = ");
        out.push_str(&quote_value(&e.value));
        out.push('\n');
    }
    out
}
