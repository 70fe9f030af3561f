//! Options shared by every subcommand, and logging set-up (done once, here).

use clap::Args;
use std::path::PathBuf;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;

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
        let explicit = std::env::var("LXRS_LOG").ok();
        if explicit.is_none() && self.logfile.is_none() {
            // The usual case: warnings and errors to stderr. Most commands log nothing, so the
            // subscriber (about 50 µs of set-up and first-touch faults per command, measured on
            // `ls --fancy`) is built on the first event that passes the level.
            let max = level.parse().unwrap_or(LevelFilter::WARN);
            let _ = LazySubscriber::new(max, move || {
                tracing::Dispatch::new(
                    tracing_subscriber::fmt()
                        .with_max_level(max)
                        .with_target(false)
                        .with_writer(std::io::stderr)
                        .finish(),
                )
            })
            .try_init();
            return;
        }
        let filter = explicit.unwrap_or_else(|| level.to_string());
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

/// A global subscriber that builds the real one (`make`) on the first span or event that
/// passes `max`, and until then only answers which levels are enabled.
struct LazySubscriber {
    max: LevelFilter,
    make: Box<dyn Fn() -> tracing::Dispatch + Send + Sync>,
    inner: std::sync::OnceLock<tracing::Dispatch>,
}

impl LazySubscriber {
    fn new(max: LevelFilter, make: impl Fn() -> tracing::Dispatch + Send + Sync + 'static) -> Self {
        LazySubscriber {
            max,
            make: Box::new(make),
            inner: std::sync::OnceLock::new(),
        }
    }

    fn inner(&self) -> &tracing::Dispatch {
        self.inner.get_or_init(|| (self.make)())
    }
}

impl tracing::Subscriber for LazySubscriber {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.enabled(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        // The real subscriber keeps per-callsite filter state that its `enabled` sets up (the
        // dispatcher asks it before each span or event): asked here, as the dispatcher asked us.
        let inner = self.inner();
        inner.enabled(attrs.metadata());
        inner.new_span(attrs)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.inner().record(span, values)
    }
    fn record_follows_from(&self, span: &tracing::span::Id, follows: &tracing::span::Id) {
        self.inner().record_follows_from(span, follows)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        let inner = self.inner();
        if inner.enabled(event.metadata()) {
            inner.event(event)
        }
    }
    fn enter(&self, span: &tracing::span::Id) {
        self.inner().enter(span)
    }
    fn exit(&self, span: &tracing::span::Id) {
        self.inner().exit(span)
    }
    fn clone_span(&self, id: &tracing::span::Id) -> tracing::span::Id {
        self.inner().clone_span(id)
    }
    fn try_close(&self, id: tracing::span::Id) -> bool {
        self.inner().try_close(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A writer into a shared buffer, for the real subscriber's output.
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_real_subscriber_is_built_on_the_first_event_that_passes_the_level_and_gets_all() {
        let built = Arc::new(AtomicUsize::new(0));
        let out = Buf::default();
        let (b, w) = (built.clone(), out.clone());
        let lazy = LazySubscriber::new(LevelFilter::WARN, move || {
            b.fetch_add(1, Ordering::SeqCst);
            let w = w.clone();
            tracing::Dispatch::new(
                tracing_subscriber::fmt()
                    .with_max_level(LevelFilter::WARN)
                    .with_ansi(false)
                    .with_writer(move || w.clone())
                    .finish(),
            )
        });
        tracing::subscriber::with_default(lazy, || {
            tracing::debug!("not at this level");
            tracing::info!("nor this one");
            assert_eq!(built.load(Ordering::SeqCst), 0);
            tracing::warn!("first");
            tracing::error!("second");
            let span = tracing::error_span!("outer", n = 7);
            let _g = span.enter();
            tracing::warn!("third");
            tracing::info!("not this one either");
        });
        assert_eq!(built.load(Ordering::SeqCst), 1);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains("WARN") && lines[0].ends_with("first"),
            "{text}"
        );
        assert!(
            lines[1].contains("ERROR") && lines[1].ends_with("second"),
            "{text}"
        );
        assert!(
            lines[2].contains("outer{n=7}") && lines[2].ends_with("third"),
            "{text}"
        );
    }
}
