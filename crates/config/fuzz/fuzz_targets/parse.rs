//! Fuzz the lxc.conf(5) parser: lossless round trip, the typed view (includes not followed, so
//! the fuzzer never reads arbitrary files), upgrade and edits must never panic, and
//! parse-then-write must give the input back byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxrs_config::{upgrade_document, ContainerConfig, Document, ExpandOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let doc = Document::parse(text, "/fuzz/config");
    assert_eq!(doc.to_string(), text, "round trip");
    let opts = ExpandOptions { follow_includes: false, max_depth: 4 };
    let report = ContainerConfig::check_document(&doc, opts);
    if let Some(cfg) = &report.config {
        // The expanded rendering of a valid config is itself valid and means the same.
        let shown = cfg.render_expanded();
        let again = ContainerConfig::check_document(&Document::parse(&shown, "/fuzz/config"), opts);
        assert!(again.errors.is_empty(), "expanded form re-parses: {shown:?} {:?}", again.errors);
        assert_eq!(again.config.as_ref().map(|c| c.render_expanded()), Some(shown));
    }
    let (up, _) = upgrade_document(&doc);
    let _ = ContainerConfig::check_document(&up, opts);
    let mut edited = doc.clone();
    let _ = edited.set("lxc.uts.name", "fuzz");
    let _ = edited.append("lxc.group", "g");
    edited.unset("lxc.tty.max");
    let _ = lxrs_config::expand_document_hwaddrs(&mut edited);
    let s = edited.to_string();
    assert_eq!(Document::parse(&s, "/x").to_string(), s);
});
