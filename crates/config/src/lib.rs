//! lxrs-config: lxc.conf(5) for lxrs.
//!
//! * [`Document`] is a lossless, byte-exact model of one config file, with an edit API and atomic
//!   saves.
//! * [`ContainerConfig`] is the typed view (includes resolved, legacy keys mapped, clearing rules
//!   applied, every value validated, every item with its file and line).
//! * [`SystemConfig`] reads `/etc/lxrs/lxrs.conf`.
//! * [`upgrade`] rewrites legacy (LXC 1.x/2.x) key names to current ones.
//! * [`hwaddr`] does MAC parsing and the `x` expansion used by `lxrs create`.

pub mod document;
pub mod error;
pub mod expand;
pub mod hwaddr;
pub mod keys;
pub mod render;
pub mod system;
pub mod typed;
pub mod upgrade;
pub mod values;

pub use document::{quote_value, write_atomic, Document, EntryRef, Eol, Line, LineKind};
pub use error::{ConfigError, Source, Sourced, Warning};
pub use expand::{expand, expand_file, Entry, ExpandOptions, Expanded};
pub use hwaddr::{
    expand_document_hwaddrs, expand_hwaddr, expand_hwaddr_with, format_mac, parse_mac,
};
pub use system::SystemConfig;
pub use typed::*;
pub use upgrade::{upgrade_document, upgrade_file, UpgradeReport};
