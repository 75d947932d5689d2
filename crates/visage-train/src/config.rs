//! The training config: a TOML file, deserialised with serde and validated before anything
//! runs. Unknown keys are errors that name the key; impossible values are errors that name
//! the key and say what was expected.
//!
//! ```toml
//! [data]      # training data: kind = "synthetic" | "image_folder" | "recordio" | "mnist"
//! [eval]      # held-out verification: kind = "synthetic" | "bin" | "lfw"
//! [backbone]  # visage_backbones::BackboneConfig (kind = "mobilefacenet", ...)
//! [head]      # visage_heads::HeadConfig, plus optional [head.center] / [head.contrastive]
//! [optim]     # kind = "sgd" | "adamw", lr, momentum, nesterov, weight_decay, head_lr, ...
//! [schedule]  # warmup_steps, kind = "constant" | "poly" | "multistep" | "cosine", ...
//! [train]     # steps or epochs, batch_size, sampler, seed, clip_grad_norm, eval_every, ...
//! [output]    # dir
//! ```
//!
//! A config may start from another: a top-level `base = "base/synth.toml"` (relative to the
//! config's own folder, written before the first table) reads that file first and merges this
//! one over it, table by table (see [`crate::inherit`] for the rules). The repository's
//! `configs/synth-*.toml` are each a `[head]` over `configs/base/synth.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_backbones::BackboneConfig;
use visage_heads::{HeadConfig, HeadKind};

use crate::TrainError;

/// The whole config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Training data.
    pub data: DataConfig,
    /// Held-out verification data (none: no evaluation).
    #[serde(default)]
    pub eval: Option<EvalConfig>,
    /// The backbone.
    pub backbone: BackboneConfig,
    /// The head and its auxiliary losses.
    pub head: HeadTable,
    /// The optimiser.
    #[serde(default)]
    pub optim: OptimConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// The loop.
    pub train: LoopConfig,
    /// Where results go.
    #[serde(default)]
    pub output: OutputConfig,
    /// Data-parallel training over several devices (`[distributed] devices = N`; absent: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<crate::distributed::DistributedConfig>,
}

/// Where the training images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// The built-in synthetic identities (no download).
    Synthetic,
    /// `root/<identity>/<image>` folders.
    ImageFolder,
    /// InsightFace RecordIO (`path` = prefix or `.rec`).
    Recordio,
    /// MNIST IDX files in a folder (`train-images-idx3-ubyte[.gz]`, ...).
    Mnist,
}

/// `[data]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The kind of source.
    pub kind: DataKind,
    /// File or folder (every kind but synthetic).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Synthetic: number of training identities.
    #[serde(default)]
    pub identities: Option<usize>,
    /// Synthetic: images per identity.
    #[serde(default)]
    pub images_per_identity: Option<usize>,
    /// Synthetic: image side in pixels (default 112).
    #[serde(default)]
    pub image_size: Option<usize>,
    /// Synthetic: generator seed (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Synthetic: nuisance strength (default 1).
    #[serde(default)]
    pub difficulty: Option<f32>,
    /// MNIST: use at most this many training images (the first ones).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Probability of a horizontal flip (default 0.5).
    #[serde(default)]
    pub flip: Option<f32>,
    /// Colour jitter strength (default 0).
    #[serde(default)]
    pub jitter: Option<f32>,
    /// Probability of grey conversion (default 0).
    #[serde(default)]
    pub grey: Option<f32>,
}

/// Where held-out verification pairs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalKind {
    /// Held-out synthetic identities (disjoint from training), LFW-like pairs.
    Synthetic,
    /// An InsightFace `.bin` pack.
    Bin,
    /// LFW in its original layout with `pairs.txt` (`path` = the folder holding both).
    Lfw,
}

/// `[eval]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// The kind of pair set.
    pub kind: EvalKind,
    /// File or folder (bin, lfw).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Synthetic: held-out identities (default 100).
    #[serde(default)]
    pub identities: Option<usize>,
    /// Synthetic: images per held-out identity (default 10).
    #[serde(default)]
    pub images_per_identity: Option<usize>,
    /// Synthetic: genuine (and impostor) pairs per fold, 10 folds (default 30).
    #[serde(default)]
    pub pairs_per_fold: Option<usize>,
    /// Synthetic: seed of the pair draw (default 7), recorded in the report.
    #[serde(default)]
    pub pair_seed: Option<u64>,
    /// Flip fusion (default true).
    #[serde(default)]
    pub flip: Option<bool>,
}

/// `[head.center]`: center loss added to the head's loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterAux {
    /// Weight lambda (0.003 in the paper).
    pub weight: f64,
    /// Centre learning rate alpha (default 0.5).
    #[serde(default)]
    pub alpha: Option<f64>,
}

/// `[head.contrastive]`: contrastive loss added to the head's loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContrastiveAux {
    /// Weight lambda.
    pub weight: f64,
    /// Margin (default 1).
    #[serde(default)]
    pub margin: Option<f64>,
    /// Normalise features first (default false).
    #[serde(default)]
    pub normalize: Option<bool>,
}

/// `[head]`: the head (the table `visage head --spec` reads) and optional auxiliary losses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadTable {
    /// The head (`kind` and the kind's fields).
    #[serde(flatten)]
    pub spec: HeadConfig,
    /// Center loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub center: Option<CenterAux>,
    /// Contrastive loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contrastive: Option<ContrastiveAux>,
    /// `sharded = true`: the class weights split by class range over the data-parallel
    /// workers (Partial FC, `visage_heads::sharded`); the same as `[distributed] shard_head`.
    /// Read through [`TrainConfig::sharded_head`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharded: Option<bool>,
    /// With `sharded`: the fraction of each shard's classes used per step (Partial FC v2
    /// sampling, the batch's classes always kept), in `(0, 1]`; default 1. The same as
    /// `[distributed] sample_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// The head's keys as the file writes them (`kind` and the fields set, without the
    /// defaults filled in), for descriptions of a run.
    #[serde(skip)]
    pub table: toml::Table,
}

impl<'de> Deserialize<'de> for HeadTable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        // Keys of the table that are not the head's own: taken out before the head parses.
        fn take<T: serde::de::DeserializeOwned, E: Error>(
            table: &mut toml::Table,
            key: &str,
            describe: impl FnOnce(toml::de::Error) -> String,
        ) -> Result<Option<T>, E> {
            table
                .remove(key)
                .map(|v| v.try_into::<T>())
                .transpose()
                .map_err(|e| E::custom(describe(e)))
        }
        let center = take(&mut table, "center", |e| format!("[head.center]: {e}"))?;
        let contrastive = take(&mut table, "contrastive", |e| {
            format!("[head.contrastive]: {e}")
        })?;
        let sharded = take(&mut table, "sharded", |e| {
            format!("head.sharded: {e} (true or false)")
        })?;
        let sample_rate = take(&mut table, "sample_rate", |e| {
            format!("head.sample_rate: {e} (a number in (0, 1])")
        })?;
        let spec = toml::Value::Table(table.clone())
            .try_into::<HeadConfig>()
            .map_err(D::Error::custom)?;
        Ok(HeadTable {
            spec,
            center,
            contrastive,
            sharded,
            sample_rate,
            table,
        })
    }
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    /// SGD with PyTorch's semantics: momentum without dampening, optional Nesterov, weight
    /// decay coupled (added to the gradient).
    #[default]
    Sgd,
    /// AdamW (decoupled decay) with PyTorch's defaults: lr 1e-3, betas (0.9, 0.999),
    /// eps 1e-8, weight_decay 1e-2.
    Adamw,
}

/// `[optim]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// SGD or AdamW.
    #[serde(default)]
    pub kind: OptimKind,
    /// Base learning rate (SGD 0.1, AdamW 1e-3).
    #[serde(default)]
    pub lr: Option<f64>,
    /// SGD momentum (0.9).
    #[serde(default)]
    pub momentum: Option<f64>,
    /// SGD Nesterov momentum (false).
    #[serde(default)]
    pub nesterov: Option<bool>,
    /// Weight decay (SGD 5e-4, AdamW 1e-2).
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// AdamW betas (0.9, 0.999).
    #[serde(default)]
    pub betas: Option<[f64; 2]>,
    /// AdamW epsilon (1e-8).
    #[serde(default)]
    pub eps: Option<f64>,
    /// Learning rate of the head's class weights (default: `lr`).
    #[serde(default)]
    pub head_lr: Option<f64>,
    /// Weight decay of the head's class weights (default: `weight_decay`).
    #[serde(default)]
    pub head_weight_decay: Option<f64>,
}

impl OptimConfig {
    /// The base learning rate in force.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.kind {
            OptimKind::Sgd => 0.1,
            OptimKind::Adamw => 1e-3,
        })
    }
    /// The weight decay in force.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(match self.kind {
            OptimKind::Sgd => 5e-4,
            OptimKind::Adamw => 1e-2,
        })
    }
    /// The head's learning rate in force.
    pub fn head_lr(&self) -> f64 {
        self.head_lr.unwrap_or(self.lr())
    }
    /// The head's weight decay in force.
    pub fn head_weight_decay(&self) -> f64 {
        self.head_weight_decay.unwrap_or(self.weight_decay())
    }
}

/// The decay after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Constant.
    Constant,
    /// `lr (1 - t)^power` over the steps after warm-up (arcface_torch's PolyScheduler).
    #[default]
    Poly,
    /// `lr gamma^(number of milestones passed)`.
    Multistep,
    /// Cosine from `lr` to `min_lr`.
    Cosine,
}

/// `[schedule]`, applied per step.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The decay.
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Linear warm-up steps (0).
    #[serde(default)]
    pub warmup_steps: u64,
    /// Poly power (2).
    #[serde(default)]
    pub power: Option<f64>,
    /// Multistep milestones (steps).
    #[serde(default)]
    pub milestones: Vec<u64>,
    /// Multistep factor (0.1).
    #[serde(default)]
    pub gamma: Option<f64>,
    /// Cosine floor (0).
    #[serde(default)]
    pub min_lr: Option<f64>,
}

/// How batches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Every image once per epoch, shuffled.
    #[default]
    Shuffled,
    /// P identities x K images (pair and triplet losses); `batch_size` = P x K.
    Pk,
}

/// `[train]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// Optimiser steps (or give `epochs`).
    #[serde(default)]
    pub steps: Option<u64>,
    /// Epochs (or give `steps`).
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Images per batch.
    pub batch_size: usize,
    /// Batch sampler.
    #[serde(default)]
    pub sampler: SamplerKind,
    /// Images per identity for the P x K sampler (P = batch_size / k).
    #[serde(default)]
    pub k: Option<usize>,
    /// Seed of initialisation, data order and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Clip the global gradient norm (over all parameters, as `clip_grad_norm_`).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Held-out evaluation every N steps (and always at the end); 0 = only at the end.
    #[serde(default)]
    pub eval_every: u64,
    /// Checkpoint every N steps (and at the end); 0 = only at the end.
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Checkpoints kept (the last K, plus the best by held-out accuracy).
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Log a line (and a `metrics.jsonl` record) every N steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Start the backbone from this Burn record (another run's `backbone.bin`, same
    /// backbone table) instead of its random initialisation: fine-tuning, e.g. a normalised
    /// loss started from a softmax-trained network as NormFace did. The head and the
    /// optimiser state start fresh. Unset: random initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_backbone: Option<PathBuf>,
}

fn default_keep() -> usize {
    2
}
fn default_log_every() -> u64 {
    10
}

/// `[output]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Run directory (default `runs/<config file stem>`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

fn positive(key: &str, v: f64) -> Result<(), TrainError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(
            key,
            format!("{v} must be a finite number > 0"),
        ))
    }
}
fn non_negative(key: &str, v: f64) -> Result<(), TrainError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(
            key,
            format!("{v} must be a finite number >= 0"),
        ))
    }
}
fn probability(key: &str, v: f32) -> Result<(), TrainError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(TrainError::config(
            key,
            format!("{v} must be a probability in [0, 1]"),
        ))
    }
}

impl TrainConfig {
    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        // A regular file of at most 1 MiB: a named pipe is refused, not waited on.
        let text = visage_data::read::read_regular_text(path, crate::inherit::MAX_CONFIG_BYTES)?;
        let config = Self::from_toml(path, &text)?;
        config.validate_static()?;
        Ok(config)
    }

    /// Parses `text`, the contents of the config file `path`, resolving its chain of bases
    /// (the `base` key, see [`crate::inherit`]), without [`validate_static`](Self::validate_static).
    /// Unknown keys are errors after merging; an error in a merged config names every file
    /// of the chain (`child.toml <- base.toml`).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, TrainError> {
        let resolved = crate::inherit::resolve_text(path, text)?;
        if resolved.files.len() == 1 {
            // No base: the parser's messages point at lines of this very file.
            return toml::from_str(text).map_err(|e| TrainError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            });
        }
        let describe = resolved.describe();
        toml::Value::Table(resolved.table)
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Parse {
                path: format!("{describe} (merged)"),
                message: e.to_string(),
            })
    }

    /// The run directory.
    pub fn run_dir(&self, config_path: &Path) -> PathBuf {
        self.output.dir.clone().unwrap_or_else(|| {
            let stem = config_path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "run".into());
            PathBuf::from("runs").join(stem)
        })
    }

    /// The embedding size and the number of class-weight rows of the head over `classes`
    /// classes (classes times sub-centres; `classes` for heads without class weights).
    pub fn class_weight_rows(&self, classes: usize) -> Result<(usize, usize), TrainError> {
        let dim = self.backbone.embedding_dim()?;
        let rows = self
            .head
            .spec
            .classifier(classes, dim)
            .map_or(classes, |c| c.rows());
        Ok((rows, dim))
    }

    /// The sample rate of the sharded head when the head is sharded over the data-parallel
    /// workers (`[head] sharded = true` with `[head] sample_rate`, or the older spelling
    /// `[distributed] shard_head` with `[distributed] sample_rate`; a rate set in `[head]`
    /// wins), `None` for a replicated head. [`validate_static`](Self::validate_static)
    /// refuses the two spellings disagreeing.
    pub fn sharded_head(&self) -> Option<f64> {
        let d = self.distributed.filter(|d| d.shard_head);
        match (self.head.sharded, d) {
            (Some(true), _) | (None, Some(_)) => Some(
                self.head
                    .sample_rate
                    .unwrap_or(d.map_or(1.0, |d| d.sample_rate)),
            ),
            _ => None,
        }
    }

    /// The key that set the sharded head's sample rate, for errors.
    pub fn sample_rate_key(&self) -> &'static str {
        match self.head.sample_rate {
            Some(_) => "head.sample_rate",
            None => "distributed.sample_rate",
        }
    }

    /// Checks `[head] sharded` and `sample_rate` against `[distributed]`.
    fn check_head_sharding(&self) -> Result<(), TrainError> {
        let d = self.distributed.unwrap_or_default();
        if self.head.sharded == Some(false) && d.shard_head {
            return Err(TrainError::config(
                "head.sharded",
                "is false but [distributed] shard_head = true: set one of them",
            ));
        }
        if let Some(rate) = self.head.sample_rate {
            if self.sharded_head().is_none() {
                return Err(TrainError::config(
                    "head.sample_rate",
                    "applies to a sharded head: set [head] sharded = true",
                ));
            }
            if d.shard_head && d.sample_rate != 1.0 && d.sample_rate != rate {
                return Err(TrainError::config(
                    "head.sample_rate",
                    format!(
                        "{rate} disagrees with [distributed] sample_rate = {}: set one of them",
                        d.sample_rate
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks everything that does not need the data: values in range, keys that go together.
    pub fn validate_static(&self) -> Result<(), TrainError> {
        self.check_head_sharding()?;
        if let Some(path) = &self.train.init_backbone {
            if !path.is_file() {
                return Err(TrainError::config(
                    "train.init_backbone",
                    format!(
                        "{} does not exist (a run's backbone.bin was expected)",
                        path.display()
                    ),
                ));
            }
        }
        let d = &self.data;
        match d.kind {
            DataKind::Synthetic => {
                for (key, v) in [
                    ("data.identities", d.identities),
                    ("data.images_per_identity", d.images_per_identity),
                ] {
                    match v {
                        Some(0) => return Err(TrainError::config(key, "must be at least 1")),
                        None => {
                            return Err(TrainError::config(key, "is required for synthetic data"))
                        }
                        _ => {}
                    }
                }
                if d.image_size == Some(0) {
                    return Err(TrainError::config("data.image_size", "must be at least 1"));
                }
                if let Some(v) = d.difficulty {
                    non_negative("data.difficulty", v as f64)?;
                }
            }
            _ => {
                let path = d.path.as_ref().ok_or_else(|| {
                    TrainError::config("data.path", "is required for this data kind")
                })?;
                if !path.exists() && !path.with_extension("rec").exists() {
                    return Err(TrainError::config(
                        "data.path",
                        format!("{} does not exist", path.display()),
                    ));
                }
            }
        }
        for (key, v) in [("data.flip", d.flip), ("data.grey", d.grey)] {
            if let Some(v) = v {
                probability(key, v)?;
            }
        }
        if let Some(v) = d.jitter {
            non_negative("data.jitter", v as f64)?;
        }
        if let Some(e) = &self.eval {
            match e.kind {
                EvalKind::Synthetic => {
                    if e.identities.unwrap_or(100) < 2 {
                        return Err(TrainError::config(
                            "eval.identities",
                            "needs at least 2 identities for impostor pairs",
                        ));
                    }
                    if e.images_per_identity.unwrap_or(10) < 2 {
                        return Err(TrainError::config(
                            "eval.images_per_identity",
                            "needs at least 2 images for genuine pairs",
                        ));
                    }
                    if e.pairs_per_fold == Some(0) {
                        return Err(TrainError::config(
                            "eval.pairs_per_fold",
                            "must be at least 1",
                        ));
                    }
                }
                _ => {
                    let path = e.path.as_ref().ok_or_else(|| {
                        TrainError::config("eval.path", "is required for this eval kind")
                    })?;
                    if !path.exists() {
                        return Err(TrainError::config(
                            "eval.path",
                            format!("{} does not exist", path.display()),
                        ));
                    }
                }
            }
        }
        self.backbone.backbone_kind()?;
        self.backbone.embedding_dim()?;
        self.backbone.input_size()?;
        let o = &self.optim;
        positive("optim.lr", o.lr())?;
        positive("optim.head_lr", o.head_lr())?;
        non_negative("optim.weight_decay", o.weight_decay())?;
        non_negative("optim.head_weight_decay", o.head_weight_decay())?;
        if let Some(m) = o.momentum {
            if !(0.0..1.0).contains(&m) {
                return Err(TrainError::config(
                    "optim.momentum",
                    format!("{m} must be in [0, 1)"),
                ));
            }
        }
        if o.kind == OptimKind::Sgd && (o.betas.is_some() || o.eps.is_some()) {
            return Err(TrainError::config(
                "optim.betas / optim.eps",
                "apply to kind = \"adamw\" only",
            ));
        }
        if o.kind == OptimKind::Adamw && (o.momentum.is_some() || o.nesterov.is_some()) {
            return Err(TrainError::config(
                "optim.momentum / optim.nesterov",
                "apply to kind = \"sgd\" only",
            ));
        }
        let s = &self.schedule;
        if let Some(p) = s.power {
            positive("schedule.power", p)?;
        }
        if let Some(g) = s.gamma {
            positive("schedule.gamma", g)?;
        }
        if !s.milestones.windows(2).all(|w| w[0] < w[1]) {
            return Err(TrainError::config(
                "schedule.milestones",
                "must be strictly increasing",
            ));
        }
        let t = &self.train;
        match (t.steps, t.epochs) {
            (Some(0), _) | (_, Some(0)) => {
                return Err(TrainError::config("train.steps", "must be at least 1"))
            }
            (None, None) => {
                return Err(TrainError::config(
                    "train.steps",
                    "give `steps` or `epochs`",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(TrainError::config(
                    "train.epochs",
                    "give `steps` or `epochs`, not both",
                ))
            }
            _ => {}
        }
        if t.batch_size == 0 {
            return Err(TrainError::config("train.batch_size", "must be at least 1"));
        }
        if let Some(c) = t.clip_grad_norm {
            positive("train.clip_grad_norm", c)?;
        }
        if t.log_every == 0 {
            return Err(TrainError::config("train.log_every", "must be at least 1"));
        }
        let needs_pairs = matches!(
            self.head.spec.kind(),
            HeadKind::Contrastive | HeadKind::Triplet | HeadKind::DeepId2
        ) || self.head.contrastive.is_some();
        if t.sampler == SamplerKind::Pk {
            let k = t.k.ok_or_else(|| {
                TrainError::config("train.k", "is required with sampler = \"pk\"")
            })?;
            if k < 2 || !t.batch_size.is_multiple_of(k) || t.batch_size / k < 2 {
                return Err(TrainError::config(
                    "train.batch_size",
                    format!(
                        "{} cannot be cut into P >= 2 identities x K = {k} >= 2 images",
                        t.batch_size
                    ),
                ));
            }
        } else if needs_pairs && t.k.is_some() {
            return Err(TrainError::config(
                "train.k",
                "applies to sampler = \"pk\" only",
            ));
        }
        if let Some(c) = &self.head.center {
            non_negative("head.center.weight", c.weight)?;
        }
        if let Some(c) = &self.head.contrastive {
            non_negative("head.contrastive.weight", c.weight)?;
        }
        if self.head.center.is_some() && !self.head.spec.kind().is_classifier() {
            return Err(TrainError::config(
                "head.center",
                "pairs with a classification head (center loss alone collapses)",
            ));
        }
        Ok(())
    }
}
