//! The per-container monitor process.

/// If this process was exec'd as a container monitor, run it to completion and return its exit
/// code; otherwise return `None` at once (cheap: called first thing in `lxrs`'s `main`).
pub fn run_if_monitor() -> Option<i32> {
    None
}
