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

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::Serialize;
use visage_backbones::{
    expected_state_dict, load_state_dict, Backbone, BackboneConfig, BackboneKind, ReadOptions,
    StateDict,
};
use visage_data::{BinPack, ImageSample, Lfw, SynthConfig, VerificationSet};
use visage_eval::{Embeddings, VerificationReport};

use crate::backend::{dispatch, BackendJob, BackendKind};

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
    #[arg(long, value_parser = parse_hw)]
    pub input_size: Option<[usize; 2]>,
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

fn parse_hw(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .split_once([',', 'x', 'X'])
        .ok_or_else(|| format!("expected H,W, e.g. 112,112, got `{s}`"))?;
    let parse = |v: &str, what: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("bad {what} in `{s}`"))
    };
    Ok([parse(h, "height")?, parse(w, "width")?])
}

/// Where the weights come from.
enum Weights {
    /// A PyTorch/safetensors state dict with InsightFace keys.
    StateDict(StateDict),
    /// A Burn record written by training (`BinFileRecorder<FullPrecisionSettings>`).
    Record(PathBuf),
}

fn is_record(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

/// The embedding size stored in the weights, where the architecture's last layer says it
/// (the same keys as `visage embed`; these few lines could move into visage-backbones).
fn embedding_dim_of(kind: BackboneKind, state: &StateDict) -> Option<usize> {
    let key = match kind {
        BackboneKind::IResNet(_) => "features.weight",
        BackboneKind::MobileFaceNet => "features.layers.3.weight",
        BackboneKind::SphereNet(_) | BackboneKind::LeNetPP => "fc.bias",
    };
    state.tensors.get(key).map(|t| t.shape.num_elements())
}

/// LeNets++ input channels from the first conv weight `[32, C, 5, 5]`.
fn lenet_in_channels_of(state: &StateDict) -> Option<usize> {
    state
        .tensors
        .get("convs.0.conv.weight")
        .map(|t| t.shape.num_elements() / (32 * 5 * 5))
        .filter(|&c| c > 0)
}

/// The dataset description written into the report.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum DatasetInfo {
    /// A `.bin` pack.
    Bin {
        path: String,
        file_size: u64,
        sha256: String,
    },
    /// An LFW-layout folder.
    Lfw {
        path: String,
        images_root: String,
        pairs_file: String,
    },
    /// Synthetic held-out pairs.
    Synthetic {
        size: usize,
        seed: u64,
        difficulty: f32,
        identities: usize,
        images_per_identity: usize,
        folds: usize,
        pairs_per_fold: usize,
        pair_seed: u64,
    },
}

impl DatasetInfo {
    fn describe(&self) -> String {
        match self {
            DatasetInfo::Bin {
                path,
                file_size,
                sha256,
            } => format!("`.bin` pack `{path}` ({file_size} bytes, sha256 `{sha256}`)"),
            DatasetInfo::Lfw {
                images_root,
                pairs_file,
                ..
            } => format!("LFW layout: images `{images_root}`, pairs `{pairs_file}`"),
            DatasetInfo::Synthetic {
                size,
                seed,
                difficulty,
                identities,
                images_per_identity,
                folds,
                pairs_per_fold,
                pair_seed,
            } => format!(
                "synthetic held-out faces: {size}x{size}, seed {seed}, difficulty {difficulty}, \
                 {identities} identities x {images_per_identity} images, {folds} folds x \
                 {pairs_per_fold} genuine + {pairs_per_fold} impostor pairs, pair seed {pair_seed}"
            ),
        }
    }
}

/// The model description written into the report.
#[derive(Debug, Clone, Serialize)]
struct ModelInfo {
    kind: String,
    config: BackboneConfig,
    embedding_dim: usize,
    input_size: [usize; 2],
    in_channels: usize,
    weights: String,
    weights_format: &'static str,
}

/// OUT.json: the verification report (same fields as `visage verify`) plus provenance.
#[derive(Debug, Clone, Serialize)]
struct EvalReport {
    #[serde(flatten)]
    verification: VerificationReport,
    dataset: DatasetInfo,
    model: ModelInfo,
    flip: bool,
    backend: BackendKind,
    batch_size: usize,
    plots: Vec<String>,
    summary: String,
}

fn load_dataset(args: &Args, hw: [usize; 2]) -> anyhow::Result<(VerificationSet, DatasetInfo)> {
    let path = &args.dataset;
    if path.as_os_str() == "synthetic" && !path.exists() {
        let size = match args.synthetic_size {
            Some(s) => s,
            None if hw[0] == hw[1] => hw[0],
            None => bail!(
                "--dataset synthetic: the backbone input is {}x{} (HxW) but synthetic faces are \
                 square: pass --synthetic-size and a square --input-size",
                hw[0],
                hw[1]
            ),
        };
        let config = SynthConfig {
            size,
            seed: args.synthetic_seed,
            difficulty: 1.0,
        };
        let (set, _) = visage_data::held_out_verification(
            config,
            args.synthetic_identities,
            args.synthetic_images,
            10,
            args.synthetic_pairs_per_fold,
            args.pair_seed,
        )
        .context("--dataset synthetic")?;
        let info = DatasetInfo::Synthetic {
            size,
            seed: config.seed,
            difficulty: config.difficulty,
            identities: args.synthetic_identities,
            images_per_identity: args.synthetic_images,
            folds: 10,
            pairs_per_fold: args.synthetic_pairs_per_fold,
            pair_seed: args.pair_seed,
        };
        return Ok((set, info));
    }
    if path.is_dir() {
        let lfw =
            Lfw::open(path).with_context(|| format!("--dataset {}: LFW folder", path.display()))?;
        let set = lfw
            .decode()
            .with_context(|| format!("--dataset {}", path.display()))?;
        let info = DatasetInfo::Lfw {
            path: path.display().to_string(),
            images_root: lfw.images_root.display().to_string(),
            pairs_file: lfw.pairs_file.display().to_string(),
        };
        return Ok((set, info));
    }
    if !path.exists() {
        bail!(
            "--dataset {}: no such file or folder (expected a .bin pack, an LFW folder with \
             pairs.txt, or `synthetic`)",
            path.display()
        );
    }
    let pack = BinPack::open(path)
        .with_context(|| format!("--dataset {}: .bin verification pack", path.display()))?;
    let set = pack
        .decode()
        .with_context(|| format!("--dataset {}", path.display()))?;
    let info = DatasetInfo::Bin {
        path: path.display().to_string(),
        file_size: pack.file_size,
        sha256: pack.sha256.clone(),
    };
    Ok((set, info))
}

/// Every image must have the backbone's input size.
fn check_sizes(samples: &[ImageSample], hw: [usize; 2], dataset: &Path) -> anyhow::Result<()> {
    if let Some((i, s)) = samples
        .iter()
        .enumerate()
        .find(|(_, s)| [s.height, s.width] != hw)
    {
        bail!(
            "--dataset {}: image {i} (pair {}, image {}) is {}x{} (HxW) but the backbone expects \
             {}x{}: use a pack of the right size or pass --input-size",
            dataset.display(),
            i / 2,
            i % 2,
            s.height,
            s.width,
            hw[0],
            hw[1]
        );
    }
    Ok(())
}

/// Loads a Burn record into `model` ([`visage_train::load_backbone`]), the error saying which
/// flags to check.
fn load_record<B: Backend>(
    model: Backbone<B>,
    path: &Path,
    kind: &str,
    device: &B::Device,
) -> anyhow::Result<Backbone<B>> {
    visage_train::load_backbone(model, path, device).with_context(|| {
        format!("--weights for a {kind} backbone (check --backbone/--config, --embedding-dim, --in-channels, --input-size)")
    })
}

struct EvalJob {
    config: BackboneConfig,
    weights: Weights,
    samples: Vec<ImageSample>,
    in_channels: usize,
    flip: bool,
    batch_size: usize,
}

impl BackendJob for EvalJob {
    type Output = Embeddings;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Embeddings> {
        // inference mode: the plain backend (running statistics, no dropout)
        let model: Backbone<B::InnerBackend> = self.config.init(&device)?;
        let model = match self.weights {
            Weights::StateDict(state) => load_state_dict(model, &state)?,
            Weights::Record(path) => {
                let expected = expected_state_dict(&model);
                let loaded = load_record(model, &path, &self.config.kind, &device)?;
                let got = expected_state_dict(&loaded);
                if got != expected {
                    let diff = expected
                        .iter()
                        .zip(&got)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| {
                            format!("`{}` should be {:?}, the record has {:?}", a.0, a.1, b.1)
                        })
                        .unwrap_or_else(|| "a different number of tensors".into());
                    bail!(
                        "{}: the Burn record does not fit a {} backbone: {diff} (check \
                         --backbone/--config, --embedding-dim, --in-channels, --input-size)",
                        path.display(),
                        self.config.kind
                    );
                }
                loaded
            }
        };
        let embeddings = visage_train::extract::embed_samples::<B::InnerBackend>(
            &model,
            &self.samples,
            self.in_channels,
            self.flip,
            self.batch_size.max(1),
            &device,
        )?;
        Ok(embeddings)
    }
}

fn tar_text(t: &Option<f64>) -> String {
    match t {
        Some(v) => format!("{:.4} %", v * 100.0),
        None => "undefined".into(),
    }
}

fn summary_markdown(report: &EvalReport, json_name: &str, roc: &str, hist: &str) -> String {
    let r = &report.verification;
    let m = &report.model;
    let mut s = String::new();
    s.push_str("# Verification summary\n\n");
    s.push_str(&format!(
        "- Accuracy: **{:.4} % +- {:.4} %** (10-fold mean +- population std)\n",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0
    ));
    s.push_str(&format!("- EER: {:.4} %\n", r.eer * 100.0));
    s.push_str(&format!("- AUC: {:.6}\n", r.auc));
    s.push_str(&format!(
        "- Pairs: {} (genuine {}, impostor {}); embedding size {}\n\n",
        r.pairs, r.genuine, r.impostor, r.dim
    ));
    s.push_str("| FAR | TAR |\n|---|---|\n");
    for (far, tar) in &r.tar_at_far {
        s.push_str(&format!("| {far} | {} |\n", tar_text(tar)));
    }
    s.push_str(
        "\n\"undefined\": fewer impostor pairs than 1/FAR, so that FAR cannot be reached.\n\n",
    );
    s.push_str("## Dataset\n\n");
    s.push_str(&format!("{}\n\n", report.dataset.describe()));
    s.push_str("## Model\n\n");
    s.push_str(&format!(
        "- Backbone: {} (embedding {}, input {}x{}, {} channel(s))\n",
        m.kind, m.embedding_dim, m.input_size[0], m.input_size[1], m.in_channels
    ));
    s.push_str(&format!(
        "- Weights: `{}` ({})\n",
        m.weights, m.weights_format
    ));
    s.push_str(&format!(
        "- Flip fusion: {}; backend: {}; batch size {}\n\n",
        if report.flip { "on" } else { "off" },
        report.backend,
        report.batch_size
    ));
    s.push_str("## Plots\n\n");
    s.push_str(&format!("- [ROC]({roc})\n- [Score histograms]({hist})\n\n"));
    s.push_str(&format!(
        "Full numbers: [{json_name}]({json_name}).\n\nProtocol: {}\n",
        r.protocol
    ));
    s
}

/// Runs `visage eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // the backbone config: from a run's config.toml, or from --backbone and the options
    let mut config = match (&args.config, &args.backbone) {
        (Some(path), _) => {
            visage_train::TrainConfig::from_file(path)
                .with_context(|| format!("--config {}", path.display()))?
                .backbone
        }
        (None, Some(name)) => BackboneConfig::new(
            BackboneKind::from_str(name).with_context(|| format!("--backbone {name}"))?,
        ),
        (None, None) => bail!("give --backbone KIND or --config RUN/config.toml"),
    };
    let kind = config.backbone_kind().context("backbone")?;
    if !args.weights.is_file() {
        bail!(
            "--weights {}: no such file (or not a regular file)",
            args.weights.display()
        );
    }
    let weights = if is_record(&args.weights) {
        Weights::Record(args.weights.clone())
    } else {
        Weights::StateDict(
            StateDict::read_with(
                &args.weights,
                ReadOptions {
                    allow_non_finite: args.allow_non_finite,
                },
            )
            .with_context(|| format!("--weights {}", args.weights.display()))?,
        )
    };
    if let Some(d) = args.embedding_dim {
        config.embedding_dim = Some(d);
    } else if let Weights::StateDict(state) = &weights {
        if config.embedding_dim.is_none() {
            config.embedding_dim = embedding_dim_of(kind, state);
        }
    }
    if let Some(c) = args.in_channels {
        config.in_channels = Some(c);
    } else if let (Weights::StateDict(state), BackboneKind::LeNetPP) = (&weights, kind) {
        if config.in_channels.is_none() {
            config.in_channels = lenet_in_channels_of(state);
        }
    }
    if args.input_size.is_some() {
        config.input_size = args.input_size;
    }
    let hw = config.input_size().context("backbone")?;
    let in_channels = config.in_channels().context("backbone")?;
    let embedding_dim = config.embedding_dim().context("backbone")?;

    let report_dir = match args.report.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !report_dir.is_dir() {
        bail!(
            "--report {}: the folder {} does not exist",
            args.report.display(),
            report_dir.display()
        );
    }

    let (set, dataset) = load_dataset(&args, hw)?;
    if set.samples.len() != 2 * set.issame.len() {
        bail!(
            "--dataset {}: {} images for {} pairs (expected 2 per pair)",
            args.dataset.display(),
            set.samples.len(),
            set.issame.len()
        );
    }
    if set.is_empty() {
        bail!("--dataset {}: no pairs", args.dataset.display());
    }
    check_sizes(&set.samples, hw, &args.dataset)?;

    let flip = !args.no_flip;
    let model = ModelInfo {
        kind: kind.to_string(),
        config: config.clone(),
        embedding_dim,
        input_size: hw,
        in_channels,
        weights: args.weights.display().to_string(),
        weights_format: match weights {
            Weights::StateDict(_) => "PyTorch/safetensors state dict",
            Weights::Record(_) => "Burn record (BinFileRecorder, full precision)",
        },
    };
    let job = EvalJob {
        config,
        weights,
        samples: set.samples,
        in_channels,
        flip,
        batch_size: args.batch_size,
    };
    let embeddings = dispatch(args.backend, job)?;
    let verification = visage_eval::verify_interleaved(&embeddings, &set.issame)
        .with_context(|| format!("verification on {}", args.dataset.display()))?;

    let roc_path = report_dir.join("roc.png");
    let hist_path = visage_report::histogram_path(&roc_path);
    let title = format!(
        "{} on {}",
        model.kind,
        args.dataset
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| args.dataset.display().to_string())
    );
    visage_report::plot_roc(&roc_path, &verification.roc, &format!("ROC: {title}"))?;
    visage_report::plot_score_histograms(
        &hist_path,
        &verification.scores.genuine_scores(),
        &verification.scores.impostor_scores(),
        &format!("Cosine scores: {title}"),
    )?;
    let summary_path = report_dir.join("summary.md");
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let report = EvalReport {
        verification: verification.report,
        dataset,
        model,
        flip,
        backend: args.backend,
        batch_size: args.batch_size,
        plots: vec![
            roc_path.display().to_string(),
            hist_path.display().to_string(),
        ],
        summary: summary_path.display().to_string(),
    };
    let md = summary_markdown(
        &report,
        &file_name(&args.report),
        &file_name(&roc_path),
        &file_name(&hist_path),
    );
    visage_eval::io::write_atomic(&summary_path, md.as_bytes())?;
    visage_eval::write_report(&args.report, &report)?;

    let r = &report.verification;
    println!(
        "accuracy {:.4} % +- {:.4} %, TAR@FAR=1e-3 {}, EER {:.4} %, {} pairs; report {}",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0,
        tar_text(r.tar_at_far.get("1e-3").unwrap_or(&None)),
        r.eer * 100.0,
        r.pairs,
        args.report.display()
    );
    Ok(())
}
