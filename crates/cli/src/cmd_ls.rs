//! `lxrs ls`: list containers (reference section 4, with section 0's layout decisions).

use crate::globals::Globals;
use crate::inventory;
use crate::table::{self, Column, Row};
use anyhow::{bail, Result};
use lxrs_runtime::state::State;
use std::io::{IsTerminal, Write};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One name per line.
    #[arg(short = '1', long = "line")]
    pub line: bool,
    /// A table: NAME STATE IPV4 IPV6 AUTOSTART.
    #[arg(short = 'f', long = "fancy")]
    pub fancy: bool,
    /// Table columns (comma-separated): NAME STATE PID RAM SWAP AUTOSTART GROUPS INTERFACE IPV4 IPV6 UNPRIVILEGED.
    #[arg(short = 'F', long = "fancy-format", value_name = "COLUMNS")]
    pub fancy_format: Option<String>,
    /// Only running or frozen containers.
    #[arg(long)]
    pub active: bool,
    /// Only running containers.
    #[arg(long)]
    pub running: bool,
    /// Only frozen containers.
    #[arg(long)]
    pub frozen: bool,
    /// Only stopped containers.
    #[arg(long)]
    pub stopped: bool,
    /// Only containers in all of these groups (comma-separated; repeatable).
    #[arg(short = 'g', long = "groups", value_name = "GROUPS")]
    pub groups: Vec<String>,
    /// Output format: table (default) or json.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Only names matching this regular expression (searched anywhere in the name).
    #[arg(long = "filter", value_name = "REGEX")]
    pub filter_opt: Option<String>,
    /// Only names matching this regular expression.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let lxcpath = g.lxcpath();
    let cols: Vec<Column> = match &a.fancy_format {
        Some(f) => Column::parse_list(f).map_err(anyhow::Error::msg)?,
        None => table::DEFAULT_COLUMNS.to_vec(),
    };
    let json = match a.format.as_str() {
        "table" => false,
        "json" => true,
        other => bail!("--format {other}: expected table or json"),
    };
    let re = match a.filter_opt.as_ref().or(a.filter.as_ref()) {
        Some(f) => {
            Some(regex::Regex::new(f).map_err(|e| anyhow::anyhow!("bad filter {f:?}: {e}"))?)
        }
        None => None,
    };
    let want_groups: Vec<String> = a
        .groups
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let fancy = a.fancy || a.fancy_format.is_some() || json;
    let need = |c: Column| json || (fancy && cols.contains(&c));
    let need_config = !want_groups.is_empty() || need(Column::Autostart) || need(Column::Groups);
    let need_addrs = need(Column::Ipv4) || need(Column::Ipv6) || need(Column::Interface);
    let need_stats = need(Column::Ram) || need(Column::Swap);
    let state_filter = a.active || a.running || a.frozen || a.stopped;

    let mut rows = Vec::new();
    for name in inventory::defined(&lxcpath) {
        if let Some(re) = &re {
            if !re.is_match(&name) {
                continue;
            }
        }
        let mut row = Row {
            name: name.clone(),
            ..Default::default()
        };
        if need_config {
            let path = lxcpath.join(&name).join("config");
            match lxrs_config::ContainerConfig::load(&path) {
                Ok(l) => {
                    row.autostart = l.config.start.auto;
                    row.groups = l.config.groups.clone();
                }
                Err(e) => tracing::warn!("{name}: {e}"),
            }
            if !want_groups.iter().all(|g| row.groups.contains(g)) {
                continue;
            }
        }
        let live = inventory::live(&lxcpath, &name);
        let st = live.state;
        if state_filter {
            let keep = (a.running && st == State::Running)
                || (a.frozen && st == State::Frozen)
                || (a.stopped && st == State::Stopped)
                || (a.active
                    && matches!(
                        st,
                        State::Running | State::Frozen | State::Freezing | State::Thawed
                    ));
            if !keep {
                continue;
            }
        }
        row.state = st.as_str().to_string();
        row.pid = live.init_pid;
        if let (true, Some(pid)) = (need_addrs, live.init_pid) {
            let (v4, v6, ifs) = inventory::addresses(pid);
            row.ipv4 = v4;
            row.ipv6 = v6;
            row.interfaces = ifs;
        }
        if need_stats && live.init_pid.is_some() {
            let (ram, swap, _) = inventory::stats(&lxcpath, &name);
            row.ram = ram;
            row.swap = swap;
        }
        rows.push(row);
    }

    let out = if json {
        let mut s = serde_json::to_string_pretty(&rows)?;
        s.push('\n');
        s
    } else if fancy {
        table::render_fancy(&rows, &cols)
    } else {
        let names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        let width = (!a.line && std::io::stdout().is_terminal())
            .then(terminal_width)
            .flatten();
        table::render_plain(&names, width)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(0)
}

fn terminal_width() -> Option<usize> {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ on stdout writes into a properly sized, owned winsize struct.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}
