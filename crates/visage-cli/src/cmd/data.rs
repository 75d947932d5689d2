//! `visage data` (placeholder until its issue lands).

/// Arguments of `visage data`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage data`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage data` is not available yet")
}
