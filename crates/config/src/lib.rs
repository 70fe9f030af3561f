//! lxrs-config
