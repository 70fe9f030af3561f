//! Usage figures for `info` and the `ls` RAM / SWAP / PID columns.

/// What a cgroup uses; `None` where the host does not account it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory in use, bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_bytes: Option<u64>,
    /// Swap in use, bytes (v1 `memsw - usage` or `memory.stat swap`, v2 `memory.swap.current`).
    pub swap_bytes: Option<u64>,
    /// CPU time, nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec` × 1000).
    pub cpu_ns: Option<u64>,
    /// Processes (v1/v2 `pids.current`, else the pids in `cgroup.procs` of the whole subtree).
    pub processes: Option<u64>,
}

/// The value of `key` in a flat-keyed file (`memory.stat`, `cpu.stat`: `key value` lines).
pub(crate) fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let cpu = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 0\n";
        assert_eq!(flat_keyed(cpu, "usage_usec"), Some(123456));
        assert_eq!(flat_keyed(cpu, "usage"), None);
        let mem = "cache 4096\nrss 8192\nswap 0\ntotal_swap 12288\n";
        assert_eq!(flat_keyed(mem, "swap"), Some(0));
        assert_eq!(flat_keyed(mem, "total_swap"), Some(12288));
        assert_eq!(flat_keyed("swap x\n", "swap"), None);
    }
}
