//! lxrs-runtime: the container lifecycle (the liblxc of lxrs).

pub mod attach;
pub mod cgroups;
pub mod child;
pub mod console;
pub mod error;
pub mod host;
pub mod lifecycle;
pub mod lock;
pub mod monitor;
pub mod network;
pub mod paths;
pub mod proto;
pub mod record;
pub mod ringbuf;
pub mod spec;
pub mod state;
pub mod syscall;
