//! The autostart planner (reference section 3, with section 0's decisions): which containers
//! `lxrs autostart` acts on, and in what order. Pure, so it is tested without containers.

/// What autostart knows about one defined container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// `lxc.start.auto = 1`
    pub auto: bool,
    /// `lxc.start.delay` seconds
    pub delay: u32,
    /// `lxc.start.order`
    pub order: i64,
    /// `lxc.group`, split on whitespace and commas
    pub groups: Vec<String>,
}

/// What autostart does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Start,
    Reboot,
    Shutdown,
    Kill,
}

/// Which containers: `-a`, `-A`, `-g`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// `-a`: ignore groups, one pass over everything.
    pub all: bool,
    /// `-A`: ignore `lxc.start.auto`.
    pub ignore_auto: bool,
    /// Passes in order; `None` is the "no group" pass.
    pub groups: Vec<Option<String>>,
}

/// `-g` arguments: concatenated in order, split on `,` keeping empty fields (an empty field is
/// the "no group" pass), duplicates dropped. No `-g` at all means just the "no group" pass.
pub fn parse_groups(args: &[String]) -> Vec<Option<String>> {
    if args.is_empty() {
        return vec![None];
    }
    let mut out: Vec<Option<String>> = Vec::new();
    for a in args {
        for f in a.split(',') {
            let g = if f.trim().is_empty() {
                None
            } else {
                Some(f.trim().to_string())
            };
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

/// Containers to act on, in the order to act. Start and reboot: pass by pass in group order,
/// within a pass highest `lxc.start.order` first, ties by name. Shutdown and kill: the exact
/// reverse of that. Each container at most once.
pub fn plan<'a>(cands: &'a [Candidate], sel: &Selection, mode: Mode) -> Vec<&'a Candidate> {
    let mut sorted: Vec<&Candidate> = cands.iter().filter(|c| sel.ignore_auto || c.auto).collect();
    sorted.sort_by(|a, b| b.order.cmp(&a.order).then_with(|| a.name.cmp(&b.name)));
    let mut out: Vec<&Candidate> = Vec::new();
    if sel.all {
        out = sorted;
    } else {
        for pass in &sel.groups {
            for c in &sorted {
                if out.iter().any(|o| std::ptr::eq(*o, *c)) {
                    continue;
                }
                let matches = match pass {
                    None => c.groups.is_empty(),
                    Some(g) => c.groups.iter().any(|cg| cg == g),
                };
                if matches {
                    out.push(c);
                }
            }
        }
    }
    if matches!(mode, Mode::Shutdown | Mode::Kill) {
        out.reverse();
    }
    out
}

/// Exit status: 0 all good (or nothing to do), 1 every action failed, 2 some failed.
pub fn exit_status(attempted: usize, failed: usize) -> i32 {
    if failed == 0 {
        0
    } else if failed == attempted {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, auto: bool, delay: u32, order: i64, groups: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            auto,
            delay,
            order,
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn names(v: &[&Candidate]) -> Vec<String> {
        v.iter().map(|c| c.name.clone()).collect()
    }

    fn walkthrough() -> Vec<Candidate> {
        vec![
            c("p1", true, 0, 0, &["ubuntu"]),
            c("p2", true, 5, 100, &[]),
            c("p3", false, 0, 500, &[]),
        ]
    }

    #[test]
    fn walkthrough_default_selection_is_the_no_group_pass() {
        let cs = walkthrough();
        let sel = Selection {
            groups: parse_groups(&[]),
            ..Default::default()
        };
        assert_eq!(names(&plan(&cs, &sel, Mode::Start)), ["p2"]);
    }

    #[test]
    fn all_orders_highest_first_and_shutdown_reverses() {
        let cs = walkthrough();
        let sel = Selection {
            all: true,
            ..Default::default()
        };
        assert_eq!(names(&plan(&cs, &sel, Mode::Start)), ["p2", "p1"]);
        assert_eq!(names(&plan(&cs, &sel, Mode::Shutdown)), ["p1", "p2"]);
        assert_eq!(names(&plan(&cs, &sel, Mode::Kill)), ["p1", "p2"]);
        let sel = Selection {
            all: true,
            ignore_auto: true,
            ..Default::default()
        };
        assert_eq!(names(&plan(&cs, &sel, Mode::Start)), ["p3", "p2", "p1"]);
    }

    #[test]
    fn groups_match_exactly_and_passes_keep_their_order() {
        let cs = vec![
            c("a", true, 0, 0, &["web"]),
            c("b", true, 0, 10, &["webserver", "db"]),
            c("c", true, 0, 0, &[]),
            c("d", true, 0, 0, &["onboot"]),
        ];
        let sel = Selection {
            groups: parse_groups(&["webserver".into()]),
            ..Default::default()
        };
        assert_eq!(
            names(&plan(&cs, &sel, Mode::Start)),
            ["b"],
            "no LXC prefix matching"
        );
        let sel = Selection {
            groups: parse_groups(&["onboot,".into()]),
            ..Default::default()
        };
        assert_eq!(names(&plan(&cs, &sel, Mode::Start)), ["d", "c"]);
        let sel = Selection {
            groups: parse_groups(&["db".into(), "webserver,web".into()]),
            ..Default::default()
        };
        assert_eq!(
            names(&plan(&cs, &sel, Mode::Start)),
            ["b", "a"],
            "each container once"
        );
    }

    #[test]
    fn group_lists() {
        assert_eq!(parse_groups(&[]), vec![None]);
        assert_eq!(
            parse_groups(&["a,,b".into(), "a".into(), ",".into()]),
            vec![Some("a".into()), None, Some("b".into())]
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(0, 0), 0);
        assert_eq!(exit_status(3, 0), 0);
        assert_eq!(exit_status(3, 3), 1);
        assert_eq!(exit_status(3, 1), 2);
    }
}
