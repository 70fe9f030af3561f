//! Options shared by every subcommand, and logging set-up (done once, here).

use clap::Args;
use std::path::PathBuf;

/// Default container directory; `/etc/lxrs/lxrs.conf` `lxc.lxcpath` overrides it.
pub const DEFAULT_LXCPATH: &str = "/var/lib/lxrs";

#[derive(Args, Debug, Clone)]
pub struct Globals {
    /// Container directory (default: lxc.lxcpath from /etc/lxrs/lxrs.conf, else /var/lib/lxrs).
    #[arg(short = 'P', long = "lxcpath", global = true, env = "LXRS_LXCPATH")]
    pub lxcpath: Option<PathBuf>,
    /// Log file.
    #[arg(short = 'o', long = "logfile", global = true)]
    pub logfile: Option<PathBuf>,
    /// Log priority: TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, CRIT, ALERT, FATAL.
    #[arg(short = 'l', long = "logpriority", global = true)]
    pub logpriority: Option<String>,
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,
}

impl Globals {
    /// Set up `tracing` once for the whole process.
    pub fn init_logging(&self) {
        let level = match self
            .logpriority
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("TRACE") => "trace",
            Some("DEBUG") => "debug",
            Some("INFO") | Some("NOTICE") => "info",
            Some("WARN") => "warn",
            Some("ERROR") | Some("CRIT") | Some("ALERT") | Some("FATAL") => "error",
            _ => "warn",
        };
        let filter = std::env::var("LXRS_LOG").unwrap_or_else(|_| level.to_string());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_target(false);
        if let Some(path) = &self.logfile {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => {
                    let _ = builder
                        .with_ansi(false)
                        .with_writer(std::sync::Mutex::new(f))
                        .try_init();
                }
                Err(e) => {
                    eprintln!("lxrs: cannot open log file {}: {e}", path.display());
                    let _ = builder.with_writer(std::io::stderr).try_init();
                }
            }
        } else {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }

    /// The lxcpath in force, absolute: a relative `-P` is taken from the current directory
    /// here, once, and means the same to the monitor (which runs in `/`) and to every path
    /// derived from it (`paths::normalize_lxcpath`, remembered for the process).
    pub fn lxcpath(&self) -> PathBuf {
        let p = self
            .lxcpath
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LXCPATH));
        lxrs_runtime::paths::normalize_lxcpath(&p)
    }
}
