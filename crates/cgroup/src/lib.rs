//! lxrs-cgroup
