//! A new process's first CPU.
//!
//! A process the kernel forks or clones starts on its parent's CPU and waits there until the
//! parent sleeps, even with another CPU idle: on this project's 2-CPU test machines the
//! monitor's cgroup work and the child's early setup, or the starter's network namespace and
//! the monitor's set-up, ran one after the other on one CPU. [`CpuNudge`] sends the new process
//! to another CPU for its first run (an affinity of that one CPU); the process itself puts its
//! affinity back to what its parent had ([`CpuNudge::mask`]) at a point it is sure to come
//! after the nudge. Only the first placement changes: every process ends with the affinity it
//! would have had.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The calling process's affinity and the CPU a new process of it should start on.
#[derive(Debug, Clone, Copy)]
pub struct CpuNudge {
    mask: CpuSet,
    to: usize,
}

impl CpuNudge {
    /// Plan a nudge away from the CPU we run on: to the next CPU in our affinity after it.
    /// `None` when we may run on one CPU only (or the kernel does not say).
    pub fn plan() -> Option<Self> {
        let mask = sched_getaffinity(Pid::from_raw(0)).ok()?;
        Self::away_from(mask, sched_getcpu().ok()?)
    }

    /// The nudge away from `here` for a process whose parent has `mask`.
    pub fn away_from(mask: CpuSet, here: usize) -> Option<Self> {
        let n = CpuSet::count();
        (1..n)
            .map(|i| (here + i) % n)
            .find(|&c| mask.is_set(c).unwrap_or(false))
            .map(|to| Self { mask, to })
    }

    /// The CPU the new process is sent to.
    pub fn target(&self) -> usize {
        self.to
    }

    /// The affinity to put back.
    pub fn mask(&self) -> &CpuSet {
        &self.mask
    }

    /// Send `pid` to the planned CPU. False when it could not be (gone, or the CPU is not
    /// allowed to it any more): it stays where the kernel put it, which is harmless.
    pub fn push(&self, pid: i32) -> bool {
        let mut one = CpuSet::new();
        one.set(self.to).is_ok() && sched_setaffinity(Pid::from_raw(pid), &one).is_ok()
    }

    /// Put the calling process's affinity back to [`Self::mask`] (it stays on the CPU it runs
    /// on, which is in the mask).
    pub fn restore(&self) -> nix::Result<()> {
        sched_setaffinity(Pid::from_raw(0), &self.mask)
    }
}

/// The CPUs in `mask`, in order.
pub fn cpus(mask: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count())
        .filter(|&c| mask.is_set(c).unwrap_or(false))
        .collect()
}

/// `mask` as the kernel's lists write it (`0-3,8`).
pub fn cpu_list(mask: &CpuSet) -> String {
    let mut out: Vec<String> = Vec::new();
    let cpus = cpus(mask);
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cpus: &[usize]) -> CpuSet {
        let mut s = CpuSet::new();
        for &c in cpus {
            s.set(c).unwrap();
        }
        s
    }

    #[test]
    fn next_allowed_cpu_after_ours_wrapping_around() {
        assert_eq!(CpuNudge::away_from(set(&[0, 1]), 0).unwrap().target(), 1);
        assert_eq!(CpuNudge::away_from(set(&[0, 1]), 1).unwrap().target(), 0);
        assert_eq!(CpuNudge::away_from(set(&[2, 5, 7]), 5).unwrap().target(), 7);
        assert_eq!(CpuNudge::away_from(set(&[2, 5, 7]), 7).unwrap().target(), 2);
        // running outside our own mask (it changed under us): any allowed CPU
        assert_eq!(CpuNudge::away_from(set(&[3]), 1).unwrap().target(), 3);
    }

    #[test]
    fn no_nudge_with_one_cpu() {
        assert!(CpuNudge::away_from(set(&[4]), 4).is_none());
        assert!(CpuNudge::away_from(CpuSet::new(), 0).is_none());
    }

    #[test]
    fn cpu_lists_as_the_kernel_writes_them() {
        assert_eq!(cpu_list(&set(&[0, 1, 2, 3, 8])), "0-3,8");
        assert_eq!(cpu_list(&set(&[1, 3, 4])), "1,3-4");
        assert_eq!(cpu_list(&CpuSet::new()), "");
    }

    #[test]
    fn the_mask_is_the_parents() {
        let m = set(&[0, 1, 2]);
        assert_eq!(*CpuNudge::away_from(m, 1).unwrap().mask(), m);
    }
}
