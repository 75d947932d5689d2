//! `visage embed`: embeddings of aligned face images with a backbone and its weights.
//!
//! ```text
//! visage embed --backbone iresnet50 --weights backbone.pth --input aligned/ --output emb.npy \
//!     [--flip] [--normalize] [--backend flex] [--batch-size 32]
//! ```
//! - `--weights`: a `.pth` / `.safetensors` state dict (InsightFace keys; embedding size and
//!   LeNets++ input channels read from it) or a Burn record `.bin` written by `visage train`.
//! - `--input` is a folder of aligned images (searched recursively, sorted by path; decoded to
//!   RGB, or BT.601 luma for 1-channel backbones, as in training and `visage eval`;
//!   normalised (x/255 - 0.5)/0.5; they must already have the backbone's input size), or a
//!   `.safetensors` file with `images` f32 `[N, C, H, W]` already normalised.
//! - The work is [`visage_infer::embed_input`]; this command parses flags and prints.
//! - `--output` is `.npy` or `.safetensors` (`embeddings` f32 `[N, d]`); for a folder the
//!   image order is written beside it to `OUTPUT.paths.txt` (paths relative to the folder).
//! - `--flip` sums the embeddings of each image and its horizontal mirror; `--normalize`
//!   divides each embedding by its L2 norm (after the flip sum).
//! - The network runs in inference mode (batch-norm running statistics, no dropout).
//! - NaN or infinite values in the weights or in the `images` tensor are errors naming the
//!   tensor, and a non-finite embedding is an error naming its row (nothing is written);
//!   `--allow-non-finite` lets all three through.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use visage_infer::{
    backbone_config, BackboneSource, EmbedOptions, EmbedOutcome, EmbedRequest, ModelSpec,
};

use crate::backend::{dispatch, BackendJob, BackendKind};
use crate::progress::Bar;

/// Arguments of `visage embed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Backbone: iresnet18/34/50/100/200 (r50 ..), mobilefacenet (mbf), sphere4/10/20/36/64,
    /// lenet_pp.
    #[arg(long)]
    pub backbone: String,
    /// Weights: an InsightFace `backbone.pth` (PyTorch state dict), a safetensors file with
    /// the same keys, or a Burn record `.bin` written by `visage train`.
    #[arg(long)]
    pub weights: PathBuf,
    /// A folder of aligned images, or a `.safetensors` file with `images` f32 [N, C, H, W].
    #[arg(long)]
    pub input: PathBuf,
    /// Output file, `.npy` or `.safetensors`.
    #[arg(long)]
    pub output: PathBuf,
    /// Sum each embedding with the embedding of the horizontally mirrored image.
    #[arg(long)]
    pub flip: bool,
    /// L2-normalise each embedding (after `--flip`).
    #[arg(long)]
    pub normalize: bool,
    /// Embedding size; default: read from the weights (else the backbone's default).
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// Input channels (lenet_pp only); default: read from .pth/.safetensors weights, else 1.
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// Input size HxW (or H,W), e.g. 112x96; default: the backbone's (112x112; 112x96 for
    /// sphere nets).
    #[arg(long)]
    pub input_size: Option<String>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Accept NaN/Inf in the weights and the input tensor, and write non-finite embeddings
    /// (by default each is an error naming the tensor or the row).
    #[arg(long)]
    pub allow_non_finite: bool,
}

struct EmbedJob(EmbedRequest);

impl BackendJob for EmbedJob {
    type Output = EmbedOutcome;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<EmbedOutcome> {
        // inference mode: the plain backend (running statistics, no dropout)
        Ok(visage_infer::embed_input::<B::InnerBackend>(
            &self.0,
            &device,
            &mut Bar::default(),
        )?)
    }
}

/// Runs `visage embed`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = backbone_config(
        &BackboneSource::Kind(args.backbone),
        args.input_size.as_deref(),
        args.embedding_dim,
        args.in_channels,
    )?;
    let request = EmbedRequest {
        model: ModelSpec {
            config,
            weights: args.weights,
            allow_non_finite: args.allow_non_finite,
        },
        input: args.input,
        output: Some(args.output.clone()),
        options: EmbedOptions::new()
            .with_flip(args.flip)
            .with_normalize(args.normalize)
            .with_batch_size(args.batch_size),
        allow_non_finite: args.allow_non_finite,
    };
    let outcome = dispatch(args.backend, EmbedJob(request))?;
    let e = &outcome.embeddings;
    let order = match &outcome.paths_file {
        Some(list) => format!(" (image order in {})", list.display()),
        None => String::new(),
    };
    eprintln!(
        "wrote {} embeddings of size {} to {}{order}",
        e.rows,
        e.dim,
        args.output.display()
    );
    Ok(())
}
