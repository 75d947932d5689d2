//! `visage identify` (placeholder until its issue lands).

/// Arguments of `visage identify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `visage identify`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`visage identify` is not available yet")
}
