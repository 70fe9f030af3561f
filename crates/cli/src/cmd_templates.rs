//! `lxrs templates`: every template lxrs can use and where it comes from.

use crate::globals::Globals;
use anyhow::Result;
use lxrs_templates::SearchPath;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, _g: &Globals) -> Result<i32> {
    let l = lxrs_templates::list(&SearchPath::default());
    let w = l.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(8);
    println!("{:<w$}  SOURCE", "TEMPLATE");
    for (n, src) in l {
        println!("{n:<w$}  {src}");
    }
    Ok(0)
}
