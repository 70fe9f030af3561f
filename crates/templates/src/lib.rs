//! lxrs-templates
