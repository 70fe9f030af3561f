//! `ls` output: the LXC 1.0 fancy table, the plain listing, and JSON.

use serde::Serialize;

/// One container as `ls` and `info` see it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Row {
    pub name: String,
    pub state: String,
    pub pid: Option<i32>,
    /// bytes
    pub ram: Option<u64>,
    /// bytes
    pub swap: Option<u64>,
    pub autostart: bool,
    pub groups: Vec<String>,
    pub interfaces: Vec<String>,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub unprivileged: bool,
}

/// Columns of `ls --fancy` / `-F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    State,
    Pid,
    Ram,
    Swap,
    Autostart,
    Groups,
    Interface,
    Ipv4,
    Ipv6,
    Unprivileged,
}

pub const DEFAULT_COLUMNS: &[Column] = &[
    Column::Name,
    Column::State,
    Column::Ipv4,
    Column::Ipv6,
    Column::Autostart,
];

impl Column {
    pub fn parse_list(s: &str) -> Result<Vec<Column>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| match c.to_ascii_uppercase().as_str() {
                "NAME" => Ok(Column::Name),
                "STATE" => Ok(Column::State),
                "PID" => Ok(Column::Pid),
                "RAM" | "MEMORY" => Ok(Column::Ram),
                "SWAP" => Ok(Column::Swap),
                "AUTOSTART" => Ok(Column::Autostart),
                "GROUPS" => Ok(Column::Groups),
                "INTERFACE" | "INTERFACES" => Ok(Column::Interface),
                "IPV4" => Ok(Column::Ipv4),
                "IPV6" => Ok(Column::Ipv6),
                "UNPRIVILEGED" => Ok(Column::Unprivileged),
                _ => Err(format!(
                    "invalid column '{c}' (valid: NAME STATE PID RAM SWAP AUTOSTART GROUPS INTERFACE IPV4 IPV6 UNPRIVILEGED)"
                )),
            })
            .collect()
    }

    fn header(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::State => "STATE",
            Column::Pid => "PID",
            Column::Ram => "RAM",
            Column::Swap => "SWAP",
            Column::Autostart => "AUTOSTART",
            Column::Groups => "GROUPS",
            Column::Interface => "INTERFACE",
            Column::Ipv4 => "IPV4",
            Column::Ipv6 => "IPV6",
            Column::Unprivileged => "UNPRIVILEGED",
        }
    }

    fn cell(self, r: &Row) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        match self {
            Column::Name => r.name.clone(),
            Column::State => r.state.clone(),
            Column::Pid => r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            Column::Ram => mb(r.ram),
            Column::Swap => mb(r.swap),
            Column::Autostart => autostart_cell(r.autostart, &r.groups),
            Column::Groups => list(&r.groups),
            Column::Interface => list(&r.interfaces),
            Column::Ipv4 => list(&r.ipv4),
            Column::Ipv6 => list(&r.ipv6),
            Column::Unprivileged => if r.unprivileged { "true" } else { "false" }.into(),
        }
    }
}

fn mb(v: Option<u64>) -> String {
    match v {
        Some(b) => format!("{:.2}MB", b as f64 / (1024.0 * 1024.0)),
        None => "-".into(),
    }
}

/// `NO`, `YES`, or `YES (g1, g2)`.
pub fn autostart_cell(auto: bool, groups: &[String]) -> String {
    match (auto, groups.is_empty()) {
        (false, _) => "NO".into(),
        (true, true) => "YES".into(),
        (true, false) => format!("YES ({})", groups.join(", ")),
    }
}

/// The LXC 1.0 fancy table: each column as wide as its widest cell plus 2, every column padded,
/// a dash rule as long as the padded widths minus 2.
pub fn render_fancy(rows: &[Row], cols: &[Column]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| c.cell(r)).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([c.header().len()])
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, vals: &mut dyn Iterator<Item = String>| {
        for (v, w) in vals.zip(&widths) {
            out.push_str(&format!("{v:<w$}"));
        }
        out.push('\n');
    };
    line(&mut out, &mut cols.iter().map(|c| c.header().to_string()));
    out.push_str(&"-".repeat(widths.iter().sum::<usize>().saturating_sub(2)));
    out.push('\n');
    for row in cells {
        line(&mut out, &mut row.into_iter());
    }
    out
}

/// Plain listing: one name per line when not on a terminal, else a column-major grid.
pub fn render_plain(names: &[String], tty_width: Option<usize>) -> String {
    let Some(width) = tty_width else {
        return names.iter().map(|n| format!("{n}\n")).collect();
    };
    if names.is_empty() {
        return String::new();
    }
    let cell = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) + 2;
    let cols = (width / cell).max(1);
    let rows = names.len().div_ceil(cols);
    let mut out = String::new();
    for r in 0..rows {
        let mut line = String::new();
        for c in 0..cols {
            if let Some(n) = names.get(c * rows + r) {
                line.push_str(&format!("{n:<cell$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str) -> Row {
        Row {
            name: name.into(),
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fancy_matches_lxc_1_0_layout() {
        let mut p1 = row("p1", "RUNNING");
        p1.ipv4 = vec!["10.0.3.187".into()];
        let mut p2 = row("p2", "STOPPED");
        p2.autostart = true;
        p2.groups = vec!["g1".into(), "g2".into()];
        let t = render_fancy(&[p1, p2], DEFAULT_COLUMNS);
        let expected = [
            "NAME  STATE    IPV4        IPV6  AUTOSTART     ",
            &"-".repeat(45),
            "p1    RUNNING  10.0.3.187  -     NO            ",
            "p2    STOPPED  -           -     YES (g1, g2)  ",
            "",
        ]
        .join("\n");
        assert_eq!(t, expected);
    }

    #[test]
    fn columns_parse_case_insensitively() {
        assert_eq!(
            Column::parse_list("name,PID,ram").unwrap(),
            vec![Column::Name, Column::Pid, Column::Ram]
        );
        assert!(Column::parse_list("name,bogus")
            .unwrap_err()
            .contains("bogus"));
    }

    #[test]
    fn ram_in_mb() {
        let mut r = row("a", "RUNNING");
        r.ram = Some(3 * 1024 * 1024 + 512 * 1024);
        let t = render_fancy(&[r], &[Column::Ram, Column::Swap]);
        assert!(t.contains("3.50MB"), "{t}");
        assert!(t.lines().nth(2).unwrap().contains('-'));
    }

    #[test]
    fn plain_listing() {
        let names: Vec<String> = ["a", "bb", "c", "d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(render_plain(&names, None), "a\nbb\nc\nd\n");
        // width 8, cell 4 → 2 columns, column-major
        assert_eq!(render_plain(&names, Some(8)), "a   c\nbb  d\n");
    }
}
