//! `cargo xtask bench`: the hot paths, measured over repeated runs, side by side with LXC where
//! it is installed. Each figure is the median with its spread (p10–p90, min–max); the ratio is
//! lxrs's median over LXC's. The two tools take turns of a few runs each ([`in_turns`]), so
//! that the machine's drift over the minutes of a bench falls on both alike.
//!
//! Everything runs in throw-away lxcpaths under /tmp, with containers that have no network
//! (`lxc.net.0.type = empty`) unless a row says otherwise.

mod debian;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
    p99: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stats {
        median: q(0.5),
        p10: q(0.1),
        p90: q(0.9),
        p99: q(0.99),
        min: v[0],
        max: v[v.len() - 1],
        n: v.len(),
    }
}

struct Row {
    what: String,
    lxrs: Stats,
    lxc: Option<Stats>,
    unit: &'static str,
}

fn fmt(s: &Stats, unit: &str) -> String {
    format!(
        "{:>8.2} {unit} (p10 {:.2}, p90 {:.2}, p99 {:.2}, min {:.2}, max {:.2}, n={})",
        s.median, s.p10, s.p90, s.p99, s.min, s.max, s.n
    )
}

fn print(rows: &[Row]) {
    println!(
        "\n{:<44} {:<78} {:<44} ratio",
        "operation", "lxrs median (spread)", "LXC median (spread)"
    );
    println!("{}", "-".repeat(172));
    for r in rows {
        let lxc = r
            .lxc
            .as_ref()
            .map(|s| {
                format!(
                    "{:.2} {} (p10 {:.2}, p90 {:.2}, n={})",
                    s.median, r.unit, s.p10, s.p90, s.n
                )
            })
            .unwrap_or_else(|| "-".into());
        let ratio = r
            .lxc
            .as_ref()
            .map(|s| format!("{:.2}", r.lxrs.median / s.median))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<44} {:<78} {:<44} {}",
            r.what,
            fmt(&r.lxrs, r.unit),
            lxc,
            ratio
        );
    }
}

fn time_ms(cmd: &mut Command) -> Result<f64> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(ms)
}

fn quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One tool under test: lxrs or LXC, with its own lxcpath.
struct Tool {
    lxc: bool,
    bin: PathBuf,
    lxcpath: PathBuf,
    config: PathBuf,
    /// A config with one veth on the bench bridge.
    veth_config: PathBuf,
}

impl Tool {
    fn cmd(&self, sub: &str, name: &str) -> Command {
        let mut c = if self.lxc {
            Command::new(format!("lxc-{sub}"))
        } else {
            let mut c = Command::new(&self.bin);
            c.arg(sub);
            c
        };
        c.arg("-P").arg(&self.lxcpath).arg("-n").arg(name);
        c
    }
    fn create(&self, name: &str) -> Command {
        let mut c = self.cmd("create", name);
        c.args(["-t", "busybox", "-f"]).arg(&self.config);
        c
    }
    fn create_with(&self, name: &str, config: &std::path::Path) -> Command {
        let mut c = self.cmd("create", name);
        c.args(["-t", "busybox", "-f"]).arg(config);
        c
    }
    fn simple(&self, sub: &str, name: &str) -> Command {
        self.cmd(sub, name)
    }
    fn attach_true(&self, name: &str) -> Command {
        let mut c = self.cmd("attach", name);
        c.args(["--", "true"]);
        c
    }
    fn start(&self, name: &str) -> Command {
        let mut c = self.cmd("start", name);
        c.arg("-d");
        c
    }
    fn stop_kill(&self, name: &str) -> Command {
        let mut c = self.cmd("stop", name);
        c.arg("-k");
        c
    }
    fn destroy(&self, name: &str) -> Command {
        let mut c = self.cmd("destroy", name);
        c.arg("-f");
        c
    }
    fn ls_fancy(&self) -> Command {
        let mut c = if self.lxc {
            Command::new("lxc-ls")
        } else {
            let mut c = Command::new(&self.bin);
            c.arg("ls");
            c
        };
        c.arg("-P").arg(&self.lxcpath).arg("--fancy");
        c
    }
    fn monitor_pid(&self, name: &str) -> Option<i32> {
        let title = if self.lxc {
            format!("[lxc monitor] {} {}", self.lxcpath.display(), name)
        } else {
            format!("[lxrs monitor] {} {}", self.lxcpath.display(), name)
        };
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let s = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if s.trim_end() == title {
                return Some(pid);
            }
        }
        None
    }
    fn cleanup(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.lxcpath) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let _ = quiet(&mut self.destroy(&n));
            }
        }
        let _ = std::fs::remove_dir_all(&self.lxcpath);
        if !self.lxc {
            // lxrs keeps a lock file per container name (and state records) under its run
            // directory, by lxcpath; the bench's directory (the lxcpath's parent) is its own,
            // so that tree goes too.
            let run = std::env::var_os("LXRS_RUNDIR")
                .map_or_else(|| PathBuf::from("/run/lxrs"), PathBuf::from);
            let base = self.lxcpath.parent().unwrap_or(&self.lxcpath);
            let rel = base.strip_prefix("/").unwrap_or(base);
            for sub in ["lock", "state"] {
                let _ = std::fs::remove_dir_all(run.join(sub).join(rel));
            }
        }
    }
}

fn smaps_kib(pid: i32, key: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn have_lxc() -> bool {
    Command::new("lxc-create")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(args: &[String]) -> Result<()> {
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .max(1);
    let bin = crate::build_release()?;
    crate::run(
        Command::new(env!("CARGO"))
            .current_dir(crate::root())
            .args([
                "bench",
                "-p",
                "lxrs-config",
                "--bench",
                "parse",
                "--",
                "--noplot",
            ]),
    )
    .unwrap_or_else(|e| eprintln!("xtask: config parse bench: {e}"));
    let base = PathBuf::from(format!("/tmp/lxrs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    let config = base.join("nonet.conf");
    std::fs::write(&config, "lxc.net.0.type = empty\n")?;
    // One veth on a bridge of the bench's own (no address traffic leaves the machine: the
    // containers' DHCP clients only talk to the bridge's dnsmasq).
    let netconf = base.join("bench-net.conf");
    std::fs::write(
        &netconf,
        format!(
            "bridge = lxrsbench0\naddress = 10.0.251.1/24\ndhcp_range = 10.0.251.2,10.0.251.254\n\
             dhcp_ping = false\nno_upstream_dns = true\nnat = false\nnft_table = lxrsbench\nrun_dir = {}\n",
            base.join("net").display()
        ),
    )?;
    let veth = "lxc.net.0.type = veth\nlxc.net.0.link = lxrsbench0\nlxc.net.0.flags = up\n";
    let veth_config = base.join("veth.conf");
    std::fs::write(&veth_config, veth)?;
    let lxc_veth_config = base.join("lxc-veth.conf");
    std::fs::write(&lxc_veth_config, format!("{veth}lxc.console.path = none\n"))?;
    quiet(
        Command::new(&bin)
            .arg("net")
            .arg("up")
            .arg("--config")
            .arg(&netconf),
    )?;
    let mut tools = vec![Tool {
        lxc: false,
        bin: bin.clone(),
        lxcpath: base.join("lxrs"),
        config: config.clone(),
        veth_config: veth_config.clone(),
    }];
    if have_lxc() {
        // LXC chmods the console pty on the host's /dev/pts, which is mounted read-only on some
        // machines (this one): it then cannot start at all, so its containers run without a
        // console. lxrs keeps its console (and ttys) in every measurement.
        let lxc_config = base.join("lxc-nonet.conf");
        std::fs::write(
            &lxc_config,
            "lxc.net.0.type = empty\nlxc.console.path = none\n",
        )?;
        tools.push(Tool {
            lxc: true,
            bin: bin.clone(),
            lxcpath: base.join("lxc"),
            config: lxc_config,
            veth_config: lxc_veth_config,
        });
    } else {
        eprintln!("xtask: LXC is not installed (apt-get install lxc): lxrs figures only");
    }
    let result = bench_all(&tools, reps).and_then(|mut rows| {
        if debian::wanted(args) {
            rows.extend(debian::rows(&tools, args)?);
        }
        Ok(rows)
    });
    for t in &tools {
        t.cleanup();
    }
    if let Err(e) = quiet(
        Command::new(&bin)
            .arg("net")
            .arg("down")
            .arg("--config")
            .arg(&netconf),
    ) {
        eprintln!("xtask: bench network teardown: {e}");
    }
    let _ = std::fs::remove_dir_all(&base);
    let rows = result?;
    print(&rows);
    Ok(())
}

/// Before each timed group: what the commands before it left the kernel to finish in the
/// background (dirty pages of the containers just created, written back seconds later; a dying
/// network namespace, cgroups going offline, RCU callbacks) is not the next operation's cost.
/// Flush it and let it settle, for both tools alike.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// Quiet time before each operation of the "after idle" rows.
const IDLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Repetitions of an operation per turn in [`in_turns`]; the first of each turn is not counted.
const TURN: usize = 5;

/// Run `op` (one or more figures per run) until each tool has `reps` counted runs, the tools
/// taking turns of [`TURN`] runs: the machine's speed drifts over the minutes of a bench (by a
/// third here), and in turns the drift falls on both tools alike. The first run of each turn
/// follows the other tool's commands and is not counted: the rest are back to back, as a
/// tool's own commands run (a cgroup migration by pid, LXC's, waits for an RCU grace period
/// unless another came just before). Returns, per tool and per figure, the samples.
fn in_turns(
    tools: &[&Tool],
    reps: usize,
    mut op: impl FnMut(&Tool) -> Result<Vec<f64>>,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let mut out: Vec<Vec<Vec<f64>>> = vec![Vec::new(); tools.len()];
    let mut done = 0;
    while done < reps {
        let n = (reps - done).min(TURN - 1);
        for (i, t) in tools.iter().enumerate() {
            op(t)?;
            for _ in 0..n {
                let figures = op(t)?;
                out[i].resize(figures.len(), Vec::new());
                for (k, f) in figures.into_iter().enumerate() {
                    out[i][k].push(f);
                }
            }
        }
        done += n;
    }
    Ok(out)
}

/// One row per figure of an [`in_turns`] result: lxrs's samples and LXC's, if measured.
fn rows_of(
    samples: Vec<Vec<Vec<f64>>>,
    tools: &[&Tool],
    names: &[String],
    unit: &'static str,
) -> Vec<Row> {
    let mut per_tool: Vec<Vec<Option<Vec<f64>>>> = samples
        .into_iter()
        .map(|figs| figs.into_iter().map(Some).collect())
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(k, what)| {
            let mut take = |lxc: bool| {
                let i = tools.iter().position(|t| t.lxc == lxc)?;
                per_tool[i].get_mut(k)?.take().map(stats)
            };
            let lxrs = take(false).expect("lxrs is always measured");
            Row {
                what: what.clone(),
                lxrs,
                lxc: take(true),
                unit,
            }
        })
        .collect()
}

/// `start -d` and `stop -k` of `name` back to back, and after [`IDLE`] each: four rows
/// labelled with `what` (`driver`: `LXRS_CGROUP_DRIVER` for lxrs).
fn start_stop_rows(
    tools: &[&Tool],
    name: &str,
    what: &str,
    driver: Option<&str>,
    reps: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let with_driver = |mut c: Command| {
        if let Some(d) = driver {
            c.env("LXRS_CGROUP_DRIVER", d);
        }
        c
    };
    for (idle, label) in [
        (false, String::new()),
        (true, ", after 250 ms idle".to_string()),
    ] {
        settle();
        let samples = in_turns(tools, reps, |t| {
            if idle {
                std::thread::sleep(IDLE);
            }
            let s = time_ms(&mut with_driver(t.start(name)))?;
            if idle {
                std::thread::sleep(IDLE);
            }
            let k = time_ms(&mut with_driver(t.stop_kill(name)))?;
            Ok(vec![s, k])
        })?;
        rows.extend(rows_of(
            samples,
            tools,
            &[
                format!("start -d ({what}{label})"),
                format!("stop -k ({what}{label})"),
            ],
            "ms",
        ));
    }
    Ok(())
}

/// Every row, the tools interleaved ([`in_turns`]).
fn bench_all(tools: &[Tool], reps: usize) -> Result<Vec<Row>> {
    let all: Vec<&Tool> = tools.iter().collect();
    let lxrs_only: Vec<&Tool> = tools.iter().filter(|t| !t.lxc).collect();
    let mut rows = Vec::new();
    let each = |f: &mut dyn FnMut(&Tool) -> Result<()>| all.iter().try_for_each(|t| f(t));
    eprintln!(
        "xtask: benchmarking {}",
        if all.len() > 1 {
            "lxrs and LXC, in turns"
        } else {
            "lxrs"
        }
    );
    // create busybox (each destroyed again, not timed). Not in turns: a create leaves the
    // kernel seconds of writeback, which would fall on the other tool's next turn (LXC's
    // creates write 20 times more); each tool's creates run after the other's are flushed.
    let mut i = 0;
    let mut v = Vec::new();
    for t in &all {
        settle();
        v.extend(in_turns(&[t], reps.min(20), |t| {
            i += 1;
            let n = format!("bc{i}");
            let ms = time_ms(&mut t.create(&n))?;
            quiet(&mut t.destroy(&n))?;
            Ok(vec![ms])
        })?);
    }
    rows.extend(rows_of(v, &all, &["create -t busybox".to_string()], "ms"));
    // start -d / stop -k, no network, back to back and after a quiet moment (what a user
    // typing the command sees). A cgroup migration by pid (LXC's placement of init) waits
    // for an RCU grace period (5-12 ms here) when it is the first after a pause; back to
    // back, the previous command's migration spares the next one that wait. lxrs
    // migrates nothing on the start path.
    each(&mut |t| quiet(&mut t.create("b1")))?;
    start_stop_rows(&all, "b1", "no network", None, reps, &mut rows)?;
    // with one veth on a bridge
    each(&mut |t| quiet(&mut t.create_with("v1", &t.veth_config)))?;
    start_stop_rows(&all, "v1", "one veth on a bridge", None, reps, &mut rows)?;
    each(&mut |t| quiet(&mut t.destroy("v1")))?;
    // lxrs with its v2 driver (the cgroup2 tree; on a v2-only host, the default): the
    // container is cloned into its cgroup and the monitor born in its own.
    if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        start_stop_rows(
            &lxrs_only,
            "b1",
            "no network, v2 driver",
            Some("v2"),
            reps,
            &mut rows,
        )?;
    }
    // freeze + unfreeze pairs, and attach -- true, on a running container
    each(&mut |t| quiet(&mut t.start("b1")))?;
    settle();
    let v = in_turns(&all, reps.max(50), |t| {
        let a = time_ms(&mut t.simple("freeze", "b1"))?;
        let b = time_ms(&mut t.simple("unfreeze", "b1"))?;
        Ok(vec![a + b])
    })?;
    rows.extend(rows_of(
        v,
        &all,
        &["freeze + unfreeze (a pair of commands)".to_string()],
        "ms",
    ));
    let v = in_turns(&all, reps.max(50), |t| {
        Ok(vec![time_ms(&mut t.attach_true("b1"))?])
    })?;
    rows.extend(rows_of(v, &all, &["attach -- true".to_string()], "ms"));
    let v = in_turns(&all, reps, |t| {
        std::thread::sleep(IDLE);
        Ok(vec![time_ms(&mut t.attach_true("b1"))?])
    })?;
    rows.extend(rows_of(
        v,
        &all,
        &["attach -- true (after 250 ms idle)".to_string()],
        "ms",
    ));
    // Memory of a monitor that has served those commands: at once (right after one more
    // command of its own), and after 3 s of quiet.
    let mem_of = |t: &Tool, label: &str| -> Vec<Vec<f64>> {
        match t
            .monitor_pid("b1")
            .and_then(|pid| Some((smaps_kib(pid, "Rss:")?, smaps_kib(pid, "Pss:")?)))
        {
            Some((rss, pss)) => vec![vec![rss / 1024.0], vec![pss / 1024.0]],
            None => {
                eprintln!("xtask: monitor of b1 not found ({label})");
                Vec::new()
            }
        }
    };
    let mem =
        |label: &str| -> Vec<Vec<Vec<f64>>> { all.iter().map(|t| mem_of(t, label)).collect() };
    let mem_rows = |v: Vec<Vec<Vec<f64>>>, label: &str, rows: &mut Vec<Row>| {
        if v[0].is_empty() {
            return;
        }
        rows.extend(rows_of(
            v,
            &all,
            &[format!("monitor RSS{label}"), format!("monitor PSS{label}")],
            "MiB",
        ));
    };
    let at_once = all
        .iter()
        .map(|t| {
            quiet(&mut t.attach_true("b1"))?;
            Ok(mem_of(t, "at once"))
        })
        .collect::<Result<Vec<_>>>()?;
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let later = mem("3 s later");
    mem_rows(at_once, " after 100+ commands, at once", &mut rows);
    mem_rows(later, " after 100+ commands, 3 s later", &mut rows);
    each(&mut |t| quiet(&mut t.stop_kill("b1")))?;
    // monitor memory of a fresh container
    each(&mut |t| quiet(&mut t.start("b1")))?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let fresh = mem("fresh");
    mem_rows(fresh, "", &mut rows);
    each(&mut |t| quiet(&mut t.stop_kill("b1")))?;
    // ls --fancy with 1, 20 and 100 defined containers, 20 running at 100
    let mut defined = 1;
    for target in [1usize, 20, 100] {
        while defined < target {
            each(&mut |t| quiet(&mut t.create(&format!("l{defined}"))))?;
            defined += 1;
        }
        let running: Vec<String> = if target == 100 {
            (1..=20).map(|i| format!("l{i}")).collect()
        } else {
            vec![]
        };
        for n in &running {
            each(&mut |t| quiet(&mut t.start(n)))?;
        }
        settle();
        let v = in_turns(&all, reps, |t| Ok(vec![time_ms(&mut t.ls_fancy())?]))?;
        rows.extend(rows_of(
            v,
            &all,
            &[format!(
                "ls --fancy ({target} defined, {} running)",
                running.len()
            )],
            "ms",
        ));
        for n in &running {
            each(&mut |t| quiet(&mut t.stop_kill(n)))?;
        }
    }
    Ok(rows)
}
