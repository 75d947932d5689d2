//! `visage head` (placeholder until its issue lands).

/// Arguments of `visage head`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage head`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage head` is not available yet")
}
