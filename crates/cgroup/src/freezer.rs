//! Freezing and thawing: write the request, confirm it with a short bounded poll, and thaw back
//! when a freeze does not complete. Never LXC's one-second sleep between checks.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default deadline for a freeze or thaw to be confirmed.
pub const DEFAULT_FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// First poll interval; it doubles up to [`MAX_POLL_STEP`].
const FIRST_POLL_STEP: Duration = Duration::from_millis(1);
const MAX_POLL_STEP: Duration = Duration::from_millis(10);
/// How long one freeze attempt is polled before thawing and trying again.
const RETRY_ROUND: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    /// Freeze requested, not every task is frozen yet.
    Freezing,
    Frozen,
}

impl fmt::Display for FreezerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreezerState::Thawed => "THAWED",
            FreezerState::Freezing => "FREEZING",
            FreezerState::Frozen => "FROZEN",
        })
    }
}

/// The kernel freezer interface of one cgroup (v1 `freezer.state`, v2 `cgroup.freeze` +
/// `cgroup.events`). Implementors provide the two primitives; `freeze`/`thaw` are the
/// confirmed operations built on them.
pub trait Freezer {
    /// The file the state is read from (for messages).
    fn freezer_path(&self) -> PathBuf;
    /// Current state as the kernel reports it.
    fn freezer_state(&self) -> Result<FreezerState>;
    /// Ask the kernel to freeze (`true`) or thaw (`false`); does not wait.
    fn request_freeze(&self, frozen: bool) -> Result<()>;

    /// Freeze and wait until the kernel reports `Frozen`. Already frozen: no-op success. When
    /// the deadline passes, thaw back and fail.
    fn freeze(&self, timeout: Duration) -> Result<()> {
        if self.freezer_state()? == FreezerState::Frozen {
            tracing::debug!(path = %self.freezer_path().display(), "already frozen");
            return Ok(());
        }
        let start = Instant::now();
        let deadline = start + timeout;
        let mut round = 0u32;
        let state = loop {
            round += 1;
            self.request_freeze(true)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match poll_state(
                || self.freezer_state(),
                FreezerState::Frozen,
                RETRY_ROUND.min(left),
            ) {
                Ok(()) => {
                    tracing::debug!(path = %self.freezer_path().display(), took = ?start.elapsed(), round, "frozen");
                    return Ok(());
                }
                Err(PollError::Timeout(state)) => {
                    if Instant::now() >= deadline {
                        break state;
                    }
                    // The v1 freezer can stay FREEZING when tasks were forking as the freeze
                    // began; thawing and freezing again gets it through (runc does the same).
                    tracing::debug!(path = %self.freezer_path().display(), %state, round, "freeze not complete yet: thaw and retry");
                    self.request_freeze(false)?;
                }
                Err(PollError::Read(e)) => {
                    let _ = self.request_freeze(false);
                    return Err(e);
                }
            }
        };
        tracing::warn!(path = %self.freezer_path().display(), %state, "freeze did not complete, thawing back");
        if let Err(e) = self.request_freeze(false) {
            tracing::warn!(error = %e, "thawing back after a failed freeze");
        }
        Err(Error::FreezeTimeout {
            path: self.freezer_path(),
            state,
            waited: start.elapsed(),
        })
    }

    /// Thaw and wait until the kernel reports `Thawed`. Only acts when frozen or freezing.
    fn thaw(&self, timeout: Duration) -> Result<()> {
        if self.freezer_state()? == FreezerState::Thawed {
            return Ok(());
        }
        self.request_freeze(false)?;
        let start = Instant::now();
        match poll_state(|| self.freezer_state(), FreezerState::Thawed, timeout) {
            Ok(()) => Ok(()),
            Err(PollError::Timeout(state)) => Err(Error::ThawTimeout {
                path: self.freezer_path(),
                state,
                waited: start.elapsed(),
            }),
            Err(PollError::Read(e)) => Err(e),
        }
    }
}

enum PollError {
    Timeout(FreezerState),
    Read(Error),
}

/// Re-read the state until it is `target`: first after 1 ms, then doubling steps capped at
/// 10 ms, until `timeout` has passed (one last read at the deadline).
fn poll_state(
    mut read: impl FnMut() -> Result<FreezerState>,
    target: FreezerState,
    timeout: Duration,
) -> std::result::Result<(), PollError> {
    let deadline = Instant::now() + timeout;
    let mut step = FIRST_POLL_STEP;
    loop {
        let state = read().map_err(PollError::Read)?;
        if state == target {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(PollError::Timeout(state));
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(MAX_POLL_STEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A simulated kernel freezer: a freeze request passes through FREEZING for `lag` reads
    /// (or forever when `stuck`), as a v1 freezer.state does while tasks are being frozen.
    struct FakeFreezer {
        state: Cell<FreezerState>,
        lag: Cell<u32>,
        stuck: bool,
        writes: RefCell<Vec<bool>>,
    }

    impl FakeFreezer {
        fn new(state: FreezerState, lag: u32, stuck: bool) -> Self {
            FakeFreezer {
                state: Cell::new(state),
                lag: Cell::new(lag),
                stuck,
                writes: RefCell::new(Vec::new()),
            }
        }
    }

    impl Freezer for FakeFreezer {
        fn freezer_path(&self) -> PathBuf {
            PathBuf::from("/fake/freezer.state")
        }
        fn freezer_state(&self) -> Result<FreezerState> {
            if self.state.get() == FreezerState::Freezing && !self.stuck {
                if self.lag.get() == 0 {
                    self.state.set(FreezerState::Frozen);
                } else {
                    self.lag.set(self.lag.get() - 1);
                }
            }
            Ok(self.state.get())
        }
        fn request_freeze(&self, frozen: bool) -> Result<()> {
            self.writes.borrow_mut().push(frozen);
            self.state.set(if frozen {
                FreezerState::Freezing
            } else {
                FreezerState::Thawed
            });
            Ok(())
        }
    }

    #[test]
    fn freeze_passes_through_freezing() {
        let f = FakeFreezer::new(FreezerState::Thawed, 3, false);
        f.freeze(Duration::from_secs(2)).unwrap();
        assert_eq!(f.freezer_state().unwrap(), FreezerState::Frozen);
        assert_eq!(*f.writes.borrow(), vec![true]);
    }

    #[test]
    fn freezing_twice_is_a_noop() {
        let f = FakeFreezer::new(FreezerState::Frozen, 0, false);
        f.freeze(Duration::from_secs(2)).unwrap();
        assert!(f.writes.borrow().is_empty());
    }

    #[test]
    fn stuck_freeze_thaws_back_and_fails() {
        let f = FakeFreezer::new(FreezerState::Thawed, 0, true);
        let e = f.freeze(Duration::from_millis(30)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::FreezeTimeout {
                    state: FreezerState::Freezing,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("/fake/freezer.state"), "{e}");
        assert_eq!(*f.writes.borrow(), vec![true, false]);
        assert_eq!(f.state.get(), FreezerState::Thawed);
    }

    #[test]
    fn stuck_freeze_is_retried_by_thawing_and_freezing_again() {
        // Stuck in FREEZING for longer than one round: thaw, freeze again, then it completes.
        let f = FakeFreezer::new(FreezerState::Thawed, 1_000_000, false);
        let lag = &f.lag;
        let writes = &f.writes;
        struct Unstick<'a>(&'a FakeFreezer);
        impl Freezer for Unstick<'_> {
            fn freezer_path(&self) -> PathBuf {
                self.0.freezer_path()
            }
            fn freezer_state(&self) -> Result<FreezerState> {
                self.0.freezer_state()
            }
            fn request_freeze(&self, frozen: bool) -> Result<()> {
                self.0.request_freeze(frozen)?;
                if !frozen {
                    self.0.lag.set(2); // after a thaw, the next freeze goes through
                }
                Ok(())
            }
        }
        Unstick(&f).freeze(Duration::from_secs(5)).unwrap();
        assert_eq!(f.state.get(), FreezerState::Frozen);
        assert_eq!(*writes.borrow(), vec![true, false, true]);
        assert!(lag.get() <= 2);
    }

    #[test]
    fn thaw_only_acts_when_frozen_or_freezing() {
        let f = FakeFreezer::new(FreezerState::Thawed, 0, false);
        f.thaw(Duration::from_secs(1)).unwrap();
        assert!(f.writes.borrow().is_empty());
        let f = FakeFreezer::new(FreezerState::Freezing, 0, true);
        f.thaw(Duration::from_secs(1)).unwrap();
        assert_eq!(*f.writes.borrow(), vec![false]);
        assert_eq!(f.state.get(), FreezerState::Thawed);
    }
}
