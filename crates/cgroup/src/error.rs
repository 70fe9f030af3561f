//! Errors of this crate: every variant names the path, key, rule or value and the operation.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::Driver;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    #[error("listing cgroup directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },

    #[error("creating cgroup {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },

    #[error("{path}:{line}: malformed mountinfo line {text:?}")]
    Mountinfo {
        path: PathBuf,
        line: usize,
        text: String,
    },

    #[error("no cgroup {driver} hierarchy is mounted (according to {mountinfo})")]
    NoHierarchy { driver: Driver, mountinfo: PathBuf },

    #[error("invalid cgroup driver {value:?}: expected `v1` or `v2`")]
    InvalidDriver { value: String },

    #[error("invalid container name {name:?} for a cgroup: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("no free cgroup name for {base}: {base} and {base}-1 .. {base}-999 all exist")]
    NoFreeName { base: String },

    #[error("cgroup {name} does not exist under {roots}")]
    NotFound { name: String, roots: String },

    #[error("placing pid {pid} into {path}: {source}")]
    AddPid {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    #[error("cgroup setting {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },

    #[error(
        "cgroup setting {key:?}: controller {controller:?} is not mounted as a cgroup v1 hierarchy"
    )]
    ControllerNotMounted { key: String, controller: String },

    #[error(
        "cgroup setting {key:?}: controller {controller:?} is not enabled for {path} in the cgroup2 tree \
         (enabled: {enabled:?}); on a hybrid host the controllers belong to the v1 hierarchies, \
         use lxc.cgroup.* or the v1 driver"
    )]
    ControllerNotEnabled {
        key: String,
        controller: String,
        path: PathBuf,
        enabled: String,
    },

    #[error("cgroup setting {key:?}: the kernel has no file {path}")]
    NoSuchSetting { key: String, path: PathBuf },

    #[error("cgroup setting {key} = {value:?}: writing {path}: {source}")]
    Setting {
        key: String,
        value: String,
        path: PathBuf,
        source: io::Error,
    },

    #[error("device rule {rule:?}: {reason}")]
    DeviceRule { rule: String, reason: String },

    #[error("freezing {path}: still {state} after {waited:?}, thawed it back")]
    FreezeTimeout {
        path: PathBuf,
        state: crate::FreezerState,
        waited: Duration,
    },

    #[error("thawing {path}: still {state} after {waited:?}")]
    ThawTimeout {
        path: PathBuf,
        state: crate::FreezerState,
        waited: Duration,
    },

    #[error("unexpected freezer state {value:?} in {path}")]
    FreezerStateValue { path: PathBuf, value: String },

    #[error("no freezer for cgroup {name}: {reason}")]
    NoFreezer { name: String, reason: String },

    #[error("{op} for the device program of {path}: {source}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("loading the eBPF device program for {path} ({insns} instructions): {source}; verifier log: {log}")]
    BpfLoad {
        path: PathBuf,
        insns: usize,
        source: io::Error,
        log: String,
    },

    #[error("sending SIGKILL to pid {pid} of {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    #[error("removing cgroup {path}: still busy after {waited:?} (pids left: {pids:?}): {source}")]
    Rmdir {
        path: PathBuf,
        waited: Duration,
        pids: Vec<i32>,
        source: io::Error,
    },

    #[error("removing cgroup {name}: {}", join(.errors))]
    Teardown { name: String, errors: Vec<Error> },
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
