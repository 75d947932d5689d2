//! `visage embed` (placeholder until its issue lands).

/// Arguments of `visage embed`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage embed`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage embed` is not available yet")
}
