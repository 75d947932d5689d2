//! `visage`: train, evaluate and inspect face-representation models on any Burn backend.

mod cmd;
mod progress;

/// Backend dispatch lives in `visage-parity`; `crate::backend` is its path for the commands.
use visage_parity::backend;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: a CPU training step allocates and frees tens of
/// MB of activations and gradients, and glibc's malloc hands much of it back to the kernel
/// and takes it again every step (page faults, TLB shootdowns between the worker threads);
/// with mimalloc the LeNets++ step of `cargo xtask bench compare` takes about 5 % less CPU
/// time (2-core Xeon, flex). Library users choose their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "visage",
    version,
    about = "Face representation learning on Burn: heads, backbones, data, evaluation, training"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one loss head on given tensors: loss, logits and gradients (PyTorch parity checks).
    Head(cmd::head::Args),
    /// Embed a folder of aligned faces (or a safetensors batch) with a backbone.
    Embed(cmd::embed::Args),
    /// Datasets: synthesise, inspect, pack and export.
    Data(cmd::data::Args),
    /// Five-point alignment of a folder of images to the ArcFace template.
    Align(cmd::align::Args),
    /// 1:1 verification report (10-fold accuracy, ROC, TAR@FAR, EER, AUC) from embeddings.
    Verify(cmd::verify::Args),
    /// 1:N identification report (MegaFace-style rank-k, TAR@FAR=1e-6) from embeddings.
    Identify(cmd::identify::Args),
    /// Extract embeddings with a backbone and run verification on a dataset.
    Eval(cmd::eval::Args),
    /// Train from a TOML config (or resume a run).
    Train(cmd::train::Args),
    /// Compare backends on one config: heads, backbone and training steps, number by number.
    Parity(cmd::parity::Args),
    /// Train every loss on one budget and tabulate held-out verification (the loss zoo).
    Zoo(cmd::zoo::Args),
    /// The face-loss papers' figures for your settings: feature spaces, margins, curves.
    Figures(cmd::figures::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Head(args) => cmd::head::run(args),
        Command::Embed(args) => cmd::embed::run(args),
        Command::Data(args) => cmd::data::run(args),
        Command::Align(args) => cmd::align::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Identify(args) => cmd::identify::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Parity(args) => cmd::parity::run(args),
        Command::Zoo(args) => cmd::zoo::run(args),
        Command::Figures(args) => cmd::figures::run(args),
    }
}
