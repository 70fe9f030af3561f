//! lxrs-runtime: the container lifecycle (the liblxc of lxrs).

pub mod child;
pub mod monitor;
pub mod spec;
