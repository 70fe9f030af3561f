//! Container configuration → `StartSpec` (the lead wires the config crate in here).

use crate::globals::Globals;
use lxrs_runtime::spec::StartSpec;

/// Build the resolved start spec of container `name` (its config under the lxcpath, `-f`,
/// `-s` defines, `[-- COMMAND]`).
pub fn build(_g: &Globals, _name: &str, _a: &crate::cmd_start::Args) -> anyhow::Result<StartSpec> {
    anyhow::bail!("config → spec not wired yet")
}
