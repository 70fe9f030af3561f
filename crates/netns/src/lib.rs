//! lxrs-netns
