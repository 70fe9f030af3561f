//! Lossless document model: byte-exact round trips, edits, atomic saves, a property test.

use lxrs_config::{Document, LineKind};
use proptest::prelude::*;

#[test]
fn round_trip_is_byte_exact() {
    let cases: &[&str] = &[
        "",
        "\n",
        "\n\n\n",
        "lxc.uts.name = a",
        "lxc.uts.name = a\n",
        "lxc.uts.name = a\r\nlxc.arch = amd64\r\n",
        "lxc.uts.name = a\r\nlxc.arch = amd64",
        "   \n\t\t\n \x0c \nlxc.tty.max = 4\n",
        "# comment\n  # indented comment\nlxc.cap.drop = sys_time # not a comment\n",
        "lxc.uts.name = \"quoted\"\nlxc.init.cmd = '/sbin/init --x'\n",
        "martian line\n[section]\nlxc.tty.max=4\n",
        "lone\rcr\rlxc.tty.max = 1\r",
        "mixed\r\nendings\nand\rmore",
        "lxc.uts.name = é ü ✓\n",
        "lxc.net.0.type = veth   \t\n",
        "lxc.no_equals\n",
    ];
    for c in cases {
        let d = Document::parse(c, "t.conf");
        assert_eq!(d.to_string(), *c, "round trip of {c:?}");
    }
}

#[test]
fn line_kinds_follow_section_1_1() {
    let d = Document::parse(
        "# c\n  \t\nlxc.a.b=1\n  lxc.uts.name =  \"x y\"  \nlxc.x\nfoo = bar\nlxc.v = '\nlxc.q = 'a'b'\n",
        "t",
    );
    let kinds: Vec<&LineKind> = d.lines().iter().map(|l| l.kind()).collect();
    assert_eq!(kinds[0], &LineKind::Comment);
    assert_eq!(kinds[1], &LineKind::Blank);
    assert_eq!(d.lines()[2].entry(), Some(("lxc.a.b", "1")));
    assert_eq!(d.lines()[3].entry(), Some(("lxc.uts.name", "x y")));
    assert_eq!(kinds[4], &LineKind::Malformed);
    assert_eq!(kinds[5], &LineKind::Other);
    // A single quote char is not stripped (len must be > 1).
    assert_eq!(d.lines()[6].entry(), Some(("lxc.v", "'")));
    // Only the outer pair is stripped.
    assert_eq!(d.lines()[7].entry(), Some(("lxc.q", "a'b")));
}

#[test]
fn inline_hash_is_part_of_value() {
    let d = Document::parse("lxc.uts.name = web # frontend\n", "t");
    assert_eq!(d.get("lxc.uts.name"), Some("web # frontend"));
}

#[test]
fn set_replaces_last_occurrence_in_place() {
    let text = "# head\nlxc.tty.max = 1\n  lxc.tty.max = 2\n# tail\n";
    let mut d = Document::parse(text, "t");
    let line = d.set("lxc.tty.max", "8").unwrap();
    assert_eq!(line, 3);
    assert_eq!(
        d.to_string(),
        "# head\nlxc.tty.max = 1\n  lxc.tty.max = 8\n# tail\n"
    );
}

#[test]
fn set_appends_and_fixes_missing_final_newline() {
    let mut d = Document::parse("lxc.arch = amd64", "t");
    d.set("lxc.uts.name", "c1").unwrap();
    assert_eq!(d.to_string(), "lxc.arch = amd64\nlxc.uts.name = c1\n");
    let mut d = Document::parse("a\r\nb\r\n", "t");
    d.append("lxc.tty.max", "4").unwrap();
    assert_eq!(d.to_string(), "a\r\nb\r\nlxc.tty.max = 4\r\n");
}

#[test]
fn values_needing_quotes_round_trip() {
    for v in [" lead", "trail ", "\"q\"", "'q'", "a\"", "plain", ""] {
        let mut d = Document::empty("t");
        d.set("lxc.environment", v).unwrap();
        let back = Document::parse(&d.to_string(), "t");
        assert_eq!(
            back.get("lxc.environment"),
            Some(v),
            "value {v:?} -> {:?}",
            d.to_string()
        );
    }
}

#[test]
fn edits_reject_line_breaks_and_bad_keys() {
    let mut d = Document::empty("t");
    assert!(d.set("lxc.uts.name", "a\nlxc.evil = 1").is_err());
    assert!(d.set("uts.name", "a").is_err());
    assert!(d.set("lxc.a b", "a").is_err());
    assert!(d.append_raw("x\ny").is_err());
    assert_eq!(d.to_string(), "");
}

#[test]
fn unset_and_remove() {
    let mut d = Document::parse(
        "lxc.group = a\n# keep\nlxc.group = b\nlxc.tty.max = 1\nlxc.group = a\n",
        "t",
    );
    assert_eq!(d.remove("lxc.group", "a"), 2);
    assert_eq!(d.to_string(), "# keep\nlxc.group = b\nlxc.tty.max = 1\n");
    assert_eq!(d.unset("lxc.group"), 1);
    assert_eq!(d.to_string(), "# keep\nlxc.tty.max = 1\n");
    assert_eq!(d.unset("lxc.nothing"), 0);
}

#[test]
fn save_atomic_writes_exact_bytes_and_keeps_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config");
    let text = "# c\r\nlxc.uts.name = x\n  \nlast";
    std::fs::write(&p, "old").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = Document::parse(text, &p);
    d.save().unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // Loading gives the same document back.
    assert_eq!(Document::load(&p).unwrap().to_string(), text);
}

#[test]
fn save_atomic_failure_leaves_original_intact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub").join("config");
    // Parent directory missing: the write fails, with the path in the error.
    let err = Document::parse("lxc.tty.max = 1\n", &p).save().unwrap_err();
    assert!(err.to_string().contains("sub"), "{err}");
    // Target is a directory: rename fails, the directory and its content survive.
    let target = dir.path().join("cfgdir");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inner"), "x").unwrap();
    assert!(Document::parse("lxc.tty.max = 1\n", &target)
        .save()
        .is_err());
    assert_eq!(std::fs::read_to_string(target.join("inner")).unwrap(), "x");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn load_reports_non_utf8_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c");
    std::fs::write(&p, b"lxc.tty.max = 1\nlxc.uts.name = \xff\n").unwrap();
    let e = Document::load(&p).unwrap_err();
    assert!(
        e.to_string().ends_with(":2: file is not valid UTF-8"),
        "{e}"
    );
}

// ---- property test: random edits leave every untouched line as it was --------------------

fn arb_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   \t".to_string()),
        "# [a-z =]{0,12}",
        "[a-z]{1,8} = [a-z]{0,5}",
        (
            prop::sample::select(vec![
                "lxc.tty.max",
                "lxc.group",
                "lxc.uts.name",
                "lxc.cap.drop",
                "lxc.mount.entry"
            ]),
            "[ \t]{0,2}",
            "[a-z0-9 ]{0,10}"
        )
            .prop_map(|(k, ws, v)| format!("{ws}{k}{ws}={ws}{v}")),
    ]
}

fn arb_doc() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            (arb_line(), prop::sample::select(vec!["\n", "\r\n", "\r"])),
            0..20,
        ),
        any::<bool>(),
    )
        .prop_map(|(lines, trailing)| {
            let mut s: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            if !trailing && s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
                s.push_str("lxc.arch = amd64");
            }
            s
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, String),
    Append(&'static str, String),
    Unset(&'static str),
    Remove(&'static str, String),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    let key = prop::sample::select(vec![
        "lxc.tty.max",
        "lxc.group",
        "lxc.uts.name",
        "lxc.cap.drop",
        "lxc.environment",
    ]);
    prop_oneof![
        (key.clone(), "[a-z0-9]{0,6}").prop_map(|(k, v)| Edit::Set(k, v)),
        (key.clone(), "[a-z0-9]{0,6}").prop_map(|(k, v)| Edit::Append(k, v)),
        key.clone().prop_map(Edit::Unset),
        (key, "[a-z0-9 ]{0,6}").prop_map(|(k, v)| Edit::Remove(k, v)),
    ]
}

/// (text, eol) of every line not carrying `key`; the eol of the very last line is ignored
/// (appending must give a terminator to a final line that had none).
fn untouched(d: &Document, key: &str) -> Vec<(String, Option<&'static str>)> {
    let n = d.lines().len();
    d.lines()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.key() != Some(key))
        .map(|(i, l)| (l.text().to_string(), (i + 1 < n).then(|| l.eol().as_str())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_then_write_is_identity(text in arb_doc()) {
        prop_assert_eq!(Document::parse(&text, "p").to_string(), text);
    }

    #[test]
    fn edits_leave_untouched_lines_alone(text in arb_doc(), edits in prop::collection::vec(arb_edit(), 1..5)) {
        let mut d = Document::parse(&text, "p");
        for e in edits {
            let key = match &e { Edit::Set(k, _) | Edit::Append(k, _) | Edit::Unset(k) | Edit::Remove(k, _) => *k };
            let before = untouched(&d, key);
            let lines_before = d.lines().len();
            match &e {
                Edit::Set(k, v) => { d.set(k, v).unwrap(); }
                Edit::Append(k, v) => { d.append(k, v).unwrap(); }
                Edit::Unset(k) => { d.unset(k); }
                Edit::Remove(k, v) => { d.remove(k, v); }
            }
            let after = untouched(&d, key);
            // Every line without the edited key is unchanged, in the same order; the only
            // permitted change is a terminator added to a formerly last line.
            let strip = |v: &[(String, Option<&'static str>)]| v.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
            prop_assert_eq!(strip(&before), strip(&after), "edit {:?}", e);
            for (b, a) in before.iter().zip(after.iter()) {
                if let (Some(be), Some(ae)) = (b.1, a.1) { prop_assert_eq!(be, ae); }
            }
            // The document still round-trips through text.
            let s = d.to_string();
            prop_assert_eq!(Document::parse(&s, "p").to_string(), s.clone());
            if let Edit::Set(k, v) | Edit::Append(k, v) = &e {
                let reparsed = Document::parse(&s, "p");
                prop_assert_eq!(reparsed.get(k), Some(v.as_str()));
                prop_assert!(d.lines().len() <= lines_before + 1);
            }
        }
    }
}
