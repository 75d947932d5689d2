//! `visage eval` (placeholder until its issue lands).

/// Arguments of `visage eval`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage eval`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage eval` is not available yet")
}
