//! `visage verify` (placeholder until its issue lands).

/// Arguments of `visage verify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage verify`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage verify` is not available yet")
}
