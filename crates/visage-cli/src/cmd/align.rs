//! `visage align` (placeholder until its issue lands).

/// Arguments of `visage align`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage align`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage align` is not available yet")
}
