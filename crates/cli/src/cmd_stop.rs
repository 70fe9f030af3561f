//! `lxrs stop`.

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, _g: &crate::globals::Globals) -> anyhow::Result<i32> {
    anyhow::bail!("lxrs stop: not implemented yet")
}
