//! lxrs-rootfs
