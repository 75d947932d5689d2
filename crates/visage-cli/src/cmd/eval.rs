//! `visage eval`: model-driven 1:1 verification (embeddings with flip fusion, then the
//! protocol of `visage verify`).
//!
//! ```text
//! visage eval --backbone KIND --weights FILE --dataset PATH [--no-flip] --report OUT.json \
//!     [--backend flex] [--batch-size 32] [--input-size H,W] [--config RUN/config.toml]
//! ```
//! - `--weights`: an InsightFace `backbone.pth` / safetensors state dict (embedding size and,
//!   for LeNets++, input channels read from it), or a Burn record `RUN/backbone.bin` written by
//!   `visage train` (then the backbone must match the run's: give `--config RUN/config.toml`,
//!   or `--backbone` with `--embedding-dim`/`--in-channels`/`--input-size` as trained).
//! - `--dataset`: a `.bin` verification pack, an LFW-layout folder with `pairs.txt`, or
//!   `synthetic` (held-out synthetic identities, see the `--synthetic-*` options).
//! - Writes OUT.json (the `visage verify` report plus the dataset and model description),
//!   `roc.png`, `roc_hist.png` and `summary.md` in OUT.json's folder, and prints one line.
//! - The work is [`visage_infer::evaluate`]; this command parses flags and prints.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use visage_infer::{
    backbone_config, BackboneSource, DatasetSpec, EvalOutcome, EvalRequest, ModelSpec,
    SyntheticPairs,
};

use crate::backend::{dispatch, BackendJob, BackendKind};
use crate::progress::Bar;

/// Arguments of `visage eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Backbone: iresnet18/34/50/100/200 (r50 ..), mobilefacenet (mbf), sphere4/10/20/36/64,
    /// lenet_pp. Not needed with --config.
    #[arg(long, required_unless_present = "config")]
    pub backbone: Option<String>,
    /// A training run's config.toml: its `[backbone]` table gives the backbone (for
    /// `RUN/backbone.bin`).
    #[arg(long, conflicts_with = "backbone")]
    pub config: Option<PathBuf>,
    /// Weights: `backbone.pth` / `.safetensors` (InsightFace keys) or a Burn record `.bin`
    /// written by `visage train`.
    #[arg(long)]
    pub weights: PathBuf,
    /// A `.bin` verification pack, an LFW folder with pairs.txt, or `synthetic`.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Embed the images only, without summing the embedding of the mirrored image.
    #[arg(long)]
    pub no_flip: bool,
    /// Output JSON report; the plots and summary.md go to its folder.
    #[arg(long)]
    pub report: PathBuf,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Backbone input size `H,W` (or `HxW`); default: the backbone's.
    #[arg(long)]
    pub input_size: Option<String>,
    /// Embedding size; default: read from .pth/.safetensors weights, else the backbone's.
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// Input channels (lenet_pp only); default: read from .pth/.safetensors weights, else 1.
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// Synthetic images' side; default: the backbone's input size (which must be square).
    #[arg(long)]
    pub synthetic_size: Option<usize>,
    /// Synthetic held-out identities.
    #[arg(long, default_value_t = 100)]
    pub synthetic_identities: usize,
    /// Synthetic images per identity.
    #[arg(long, default_value_t = 10)]
    pub synthetic_images: usize,
    /// Synthetic genuine (and impostor) pairs per fold (10 folds).
    #[arg(long, default_value_t = 30)]
    pub synthetic_pairs_per_fold: usize,
    /// Seed of the synthetic faces.
    #[arg(long, default_value_t = 0)]
    pub synthetic_seed: u64,
    /// Seed of the synthetic pair draw.
    #[arg(long, default_value_t = 7)]
    pub pair_seed: u64,
    /// Load .pth/.safetensors weights holding NaN/Inf (by default an error naming the
    /// tensor); non-finite embeddings still fail the verification.
    #[arg(long)]
    pub allow_non_finite: bool,
}

struct EvalJob(EvalRequest);

impl BackendJob for EvalJob {
    type Output = EvalOutcome;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<EvalOutcome> {
        // inference mode: the plain backend (running statistics, no dropout)
        Ok(visage_infer::evaluate::<B::InnerBackend>(
            &self.0,
            &device,
            &mut Bar::default(),
        )?)
    }
}

/// Runs `visage eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let source = match (args.config, args.backbone) {
        (Some(path), _) => BackboneSource::RunConfig(path),
        (None, Some(name)) => BackboneSource::Kind(name),
        (None, None) => anyhow::bail!("give --backbone KIND or --config RUN/config.toml"),
    };
    let config = backbone_config(
        &source,
        args.input_size.as_deref(),
        args.embedding_dim,
        args.in_channels,
    )?;
    let synthetic = SyntheticPairs {
        size: args.synthetic_size,
        seed: args.synthetic_seed,
        identities: args.synthetic_identities,
        images_per_identity: args.synthetic_images,
        pairs_per_fold: args.synthetic_pairs_per_fold,
        pair_seed: args.pair_seed,
    };
    let request = EvalRequest {
        model: ModelSpec {
            config,
            weights: args.weights,
            allow_non_finite: args.allow_non_finite,
        },
        dataset: DatasetSpec::from_path(&args.dataset, synthetic),
        flip: !args.no_flip,
        batch_size: args.batch_size,
        report: Some(args.report.clone()),
        backend: args.backend.name().to_string(),
    };
    let outcome = dispatch(args.backend, EvalJob(request))?;
    let r = &outcome.report.verification;
    println!(
        "accuracy {:.4} % +- {:.4} %, TAR@FAR=1e-3 {}, EER {:.4} %, {} pairs; report {}",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0,
        visage_infer::tar_text(r.tar_at_far.get("1e-3").unwrap_or(&None)),
        r.eer * 100.0,
        r.pairs,
        args.report.display()
    );
    Ok(())
}
