//! Value parsers. Each returns `Err(reason)`; the caller adds file/line/key/value.

use std::net::{Ipv4Addr, Ipv6Addr};

pub type VResult<T> = Result<T, String>;

/// `0` / `1`.
pub fn parse_bool01(v: &str) -> VResult<bool> {
    match v {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err("expected 0 or 1".into()),
    }
}

pub fn parse_u32(v: &str) -> VResult<u32> {
    v.parse::<u32>()
        .map_err(|_| "expected a non-negative integer".to_string())
}

pub fn parse_i32(v: &str) -> VResult<i32> {
    v.parse::<i32>()
        .map_err(|_| "expected an integer".to_string())
}

/// A byte size: a number with an optional `k`/`m`/`g` (or `kB`/`MB`/`GB`, `KiB`...) suffix.
pub fn parse_size(v: &str) -> VResult<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, suffix) = v.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a size like 128k".to_string())?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown size suffix `{suffix}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| "size too large".to_string())
}

// ---- signals ---------------------------------------------------------------------------

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parse a signal as LXC's `sig_parse`: a number (1..=SIGRTMAX), or a `SIG`-prefixed name
/// (`SIGPWR`, `SIGRTMIN+3`, `SIGRTMAX-1`). A bare name (`PWR`) is rejected, as in LXC.
pub fn parse_signal(v: &str) -> VResult<i32> {
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    if let Some(name) = v.strip_prefix("SIG").or_else(|| v.strip_prefix("sig")) {
        let up = name.to_ascii_uppercase();
        if let Some(rest) = up.strip_prefix("RTMIN") {
            let off = parse_rt_offset(rest, '+')?;
            let s = rtmin + off;
            return if s <= rtmax {
                Ok(s)
            } else {
                Err(format!("SIGRTMIN+{off} is above SIGRTMAX"))
            };
        }
        if let Some(rest) = up.strip_prefix("RTMAX") {
            let off = parse_rt_offset(rest, '-')?;
            let s = rtmax - off;
            return if s >= rtmin {
                Ok(s)
            } else {
                Err(format!("SIGRTMAX-{off} is below SIGRTMIN"))
            };
        }
        return SIGNALS
            .iter()
            .find(|(n, _)| *n == up)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("unknown signal name `{v}`"));
    }
    match v.parse::<i32>() {
        Ok(n) if (1..=rtmax).contains(&n) => Ok(n),
        Ok(n) => Err(format!("signal number {n} out of range 1..={rtmax}")),
        Err(_) if SIGNALS.iter().any(|(n, _)| v.eq_ignore_ascii_case(n)) => Err(format!(
            "signal names need the SIG prefix: SIG{}",
            v.to_ascii_uppercase()
        )),
        Err(_) => Err("expected a signal number or a name like SIGPWR".into()),
    }
}

fn parse_rt_offset(rest: &str, sign: char) -> VResult<i32> {
    if rest.is_empty() {
        return Ok(0);
    }
    let Some(n) = rest.strip_prefix(sign) else {
        return Err(format!(
            "expected `{sign}<n>` after the real-time signal name"
        ));
    };
    n.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("bad real-time offset `{n}`"))
}

/// Signal number to name (for rendering).
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = SIGNALS
        .iter()
        .find(|(nm, s)| *s == n && *nm != "IOT" && *nm != "CLD" && *nm != "POLL")
    {
        return format!("SIG{name}");
    }
    n.to_string()
}

// ---- capabilities ----------------------------------------------------------------------

/// Capability names (lower case, without `CAP_`), indexed by number.
pub const CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Resolve a capability name (without `CAP_`, any case) or number to its number.
pub fn parse_cap(v: &str) -> VResult<u32> {
    let lower = v.to_ascii_lowercase();
    if let Some(i) = CAPS.iter().position(|c| *c == lower) {
        return Ok(i as u32);
    }
    if let Ok(n) = v.parse::<u32>() {
        return if n <= 63 {
            Ok(n)
        } else {
            Err(format!("capability number {n} out of range"))
        };
    }
    if let Some(rest) = lower.strip_prefix("cap_") {
        if CAPS.contains(&rest) {
            return Err(format!(
                "write capabilities without the CAP_ prefix: `{rest}`"
            ));
        }
    }
    let best = CAPS
        .iter()
        .max_by(|a, b| strsim::jaro_winkler(&lower, a).total_cmp(&strsim::jaro_winkler(&lower, b)));
    match best {
        Some(b) if strsim::jaro_winkler(&lower, b) > 0.8 => {
            Err(format!("unknown capability `{v}` (did you mean `{b}`?)"))
        }
        _ => Err(format!("unknown capability `{v}`")),
    }
}

// ---- prlimits --------------------------------------------------------------------------

/// Resource names of `lxc.prlimit.<name>` and their `RLIMIT_*` numbers.
// The casts are no-ops on glibc (u32) but needed on musl (c_int).
#[allow(clippy::unnecessary_cast)]
pub const RLIMITS: &[(&str, u32)] = &[
    ("as", libc::RLIMIT_AS as u32),
    ("core", libc::RLIMIT_CORE as u32),
    ("cpu", libc::RLIMIT_CPU as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("stack", libc::RLIMIT_STACK as u32),
];

pub fn parse_rlimit_name(name: &str) -> VResult<u32> {
    let lower = name.to_ascii_lowercase();
    let lower = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    RLIMITS
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            format!(
                "unknown resource `{name}` (one of: {})",
                RLIMITS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            )
        })
}

fn parse_limit(v: &str) -> VResult<Option<u64>> {
    if v == "unlimited" {
        return Ok(None);
    }
    v.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("`{v}` is not a number or `unlimited`"))
}

/// `soft[:hard]`; one value sets both. `None` = unlimited.
pub fn parse_prlimit_value(v: &str) -> VResult<(Option<u64>, Option<u64>)> {
    let (s, h) = match v.split_once(':') {
        Some((s, h)) => (parse_limit(s)?, parse_limit(h)?),
        None => {
            let l = parse_limit(v)?;
            (l, l)
        }
    };
    if let (Some(s), Some(h)) = (s, h) {
        if s > h {
            return Err("soft limit above hard limit".into());
        }
    }
    if s.is_none() && h.is_some() {
        return Err("soft limit unlimited but hard limit finite".into());
    }
    Ok((s, h))
}

// ---- addresses -------------------------------------------------------------------------

/// Classful default prefix (A/8, B/16, C/24), as LXC's `config_ip_prefix`.
pub fn classful_prefix(a: Ipv4Addr) -> Option<u8> {
    match a.octets()[0] {
        0..=127 => Some(8),
        128..=191 => Some(16),
        192..=223 => Some(24),
        _ => None,
    }
}

/// `a.b.c.d[/prefix][ broadcast]`.
pub fn parse_ipv4_address(v: &str) -> VResult<(Ipv4Addr, u8, Option<Ipv4Addr>)> {
    let mut parts = v.split_whitespace();
    let cidr = parts.next().ok_or("empty address")?;
    let bcast = match parts.next() {
        Some(b) => Some(
            b.parse::<Ipv4Addr>()
                .map_err(|_| format!("bad broadcast address `{b}`"))?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err("expected `address[/prefix] [broadcast]`".into());
    }
    let (a, p) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (cidr, None),
    };
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
    let prefix = match p {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("bad IPv4 prefix `/{p}`"))?,
        None => classful_prefix(addr)
            .ok_or_else(|| format!("`{a}` has no classful prefix; give one (/N)"))?,
    };
    Ok((addr, prefix, bcast))
}

/// `addr[/prefix]` (default prefix 64).
pub fn parse_ipv6_address(v: &str) -> VResult<(Ipv6Addr, u8)> {
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
    let prefix = match p {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| format!("bad IPv6 prefix `/{p}`"))?,
        None => 64,
    };
    Ok((addr, prefix))
}

/// Broadcast of an IPv4 network (0.0.0.0 for /31 and /32, as LXC).
pub fn ipv4_broadcast(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    if prefix >= 31 {
        return Ipv4Addr::UNSPECIFIED;
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ipv4Addr::from(u32::from(a) | !mask)
}

// ---- idmap -----------------------------------------------------------------------------

/// `u|g nsid hostid range`.
pub fn parse_idmap(v: &str) -> VResult<(char, u32, u32, u32)> {
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.len() != 4 {
        return Err("expected `u|g <container id> <host id> <range>`".into());
    }
    let kind = match f[0] {
        "u" => 'u',
        "g" => 'g',
        o => return Err(format!("map type `{o}` is not `u` or `g`")),
    };
    let num = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{what} `{s}` is not a number"))
    };
    let ns = num(f[1], "container id")?;
    let host = num(f[2], "host id")?;
    let range = num(f[3], "range")?;
    if range == 0 {
        return Err("range must be at least 1".into());
    }
    if ns.checked_add(range - 1).is_none() || host.checked_add(range - 1).is_none() {
        return Err("id range overflows".into());
    }
    Ok((kind, ns, host, range))
}

// ---- devices rules ---------------------------------------------------------------------

/// Validate a cgroup devices rule: `a`, or `<a|b|c> <major|*>:<minor|*> [rwm]`; v1 also takes a
/// `/dev/path [access]`.
pub fn check_device_rule(v: &str, v1: bool) -> VResult<()> {
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.is_empty() {
        return Err("empty rule".into());
    }
    if v1 && f[0].starts_with('/') {
        return Ok(());
    }
    if !matches!(f[0], "a" | "b" | "c") {
        return Err(format!("device type `{}` is not a, b or c", f[0]));
    }
    if f[0] == "a" && f.len() == 1 {
        return Ok(());
    }
    if f.len() < 2 || f.len() > 3 {
        return Err("expected `<type> <major>:<minor> <access>`".into());
    }
    let (maj, min) = f[1].split_once(':').ok_or("expected `<major>:<minor>`")?;
    for n in [maj, min] {
        if n != "*" && n.parse::<u32>().is_err() {
            return Err(format!("`{n}` is not a device number or `*`"));
        }
    }
    if let Some(acc) = f.get(2) {
        if acc.is_empty() || !acc.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(format!("access `{acc}` is not a combination of r, w, m"));
        }
    }
    Ok(())
}

// ---- misc ------------------------------------------------------------------------------

/// Split a command line into argv: whitespace separates, single and double quotes group,
/// backslash escapes the next char outside single quotes.
pub fn split_command(cmd: &str) -> VResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.push(chars.next().ok_or("trailing backslash")?),
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().ok_or("trailing backslash")?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Decode fstab octal escapes (`\040` = space).
pub fn unescape_fstab(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if n <= 255 {
                out.push(n as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
