//! The runs of `visage figures`: LeNets++ with a 2-D embedding under each loss (and one 3-D
//! run for the sphere picture) on an MNIST-format folder, plus the 8-identity toy on the
//! synthetic identities. Each run is a [`TrainConfig`] written as TOML, so a run's
//! `config.toml` can be trained on its own with `visage train`.

use std::path::{Path, PathBuf};

use visage_train::TrainConfig;

use crate::FigureError;

/// How much of the data and how many steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Sized for 2 CPU cores in under an hour: a subset of the training images, short runs.
    Cpu,
    /// The full training and test sets and longer runs (for a GPU).
    Full,
}

/// The sizes a preset sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetSizes {
    /// Training images used (the first ones of the training split).
    pub train_images: Option<usize>,
    /// Optimiser steps of each run.
    pub steps: u64,
    /// Batch size.
    pub batch_size: usize,
    /// Test images embedded and scored (the first ones of `t10k`).
    pub test_images: usize,
    /// Training images whose features are drawn.
    pub plot_train: usize,
    /// Synthetic toy: training images per identity.
    pub toy_images: usize,
    /// Synthetic toy: steps.
    pub toy_steps: u64,
}

impl Preset {
    /// The preset's sizes.
    pub fn sizes(self) -> PresetSizes {
        match self {
            Preset::Cpu => PresetSizes {
                train_images: Some(10_000),
                steps: 500,
                batch_size: 64,
                test_images: 5_000,
                plot_train: 4_000,
                toy_images: 200,
                toy_steps: 300,
            },
            Preset::Full => PresetSizes {
                train_images: None,
                steps: 9_400,
                batch_size: 128,
                test_images: 10_000,
                plot_train: 10_000,
                toy_images: 1_000,
                toy_steps: 2_000,
            },
        }
    }
}

/// One run of a feature-space figure.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// File stem of its figure and name of its run directory.
    pub name: String,
    /// What to train.
    pub config: TrainConfig,
    /// At most this many test images.
    pub test_images: usize,
    /// At most this many training images drawn.
    pub plot_train: usize,
}

/// The `[head]` tables of the MNIST runs: `(name, TOML)`.
pub fn mnist_heads() -> Vec<(String, String)> {
    let mut heads = vec![("softmax".to_string(), "kind = \"softmax\"".to_string())];
    for (tag, weight) in [("1e-4", 1e-4), ("1e-3", 1e-3), ("1e-2", 1e-2), ("1e-1", 1e-1)] {
        heads.push((
            format!("center-{tag}"),
            format!("kind = \"softmax\"\n[head.center]\nweight = {weight:e}\nalpha = 0.5"),
        ));
    }
    heads.push(("normface".into(), "kind = \"normface\"\nscale = 16.0".into()));
    for m in 1..=4 {
        heads.push((format!("sphereface-m{m}"), sphereface_head(m)));
    }
    for m in [0.0f64, 0.1, 0.2] {
        heads.push((
            format!("cosface-m{m}"),
            format!("kind = \"cosface\"\nscale = 16.0\nmargin = {m:?}"),
        ));
    }
    heads.push((
        "arcface".into(),
        "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3".into(),
    ));
    heads.push(("adacos".into(), "kind = \"adacos\"\ndynamic = true".into()));
    heads
}

/// SphereFace with margin `m`, annealed from softmax (lambda 1000) down to lambda 1: fast
/// enough for short runs (the official recipe's floor is 5; a 2-D LeNets++ trains at 1).
fn sphereface_head(m: u32) -> String {
    format!(
        "kind = \"sphereface\"\nmargin_int = {m}\nbase = 1000.0\ngamma = 0.05\npower = 1.0\nlambda_min = 1.0"
    )
}

fn base_toml(head: &str, dim: usize, sizes: &PresetSizes) -> String {
    format!(
        r#"[data]
kind = "mnist"
flip = 0.0

[backbone]
kind = "lenet_pp"
in_channels = 1
embedding_dim = {dim}

[head]
{head}

[optim]
kind = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 5e-4

[schedule]
kind = "cosine"
warmup_steps = 20

[train]
steps = {steps}
batch_size = {batch}
seed = 0
log_every = 50
"#,
        steps = sizes.steps,
        batch = sizes.batch_size,
    )
}

fn toy_toml(head: &str, sizes: &PresetSizes) -> String {
    format!(
        r#"[data]
kind = "synthetic"
identities = 8
images_per_identity = {per_id}
image_size = 28
difficulty = 0.5
flip = 0.0

[backbone]
kind = "lenet_pp"
in_channels = 3
embedding_dim = 2

[head]
{head}

[optim]
kind = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 5e-4

[schedule]
kind = "cosine"
warmup_steps = 20

[train]
steps = {steps}
batch_size = 64
seed = 0
log_every = 50
"#,
        per_id = sizes.toy_images,
        steps = sizes.toy_steps,
    )
}

fn parse(name: &str, text: &str) -> Result<TrainConfig, FigureError> {
    toml::from_str(text).map_err(|e| FigureError::setting(format!("preset run {name}"), e.to_string()))
}

/// The runs of `preset` on the MNIST-format folder `data`: every MNIST head in 2-D, ArcFace
/// in 3-D (`arcface-3d`), and softmax and ArcFace on the 8-identity synthetic toy.
pub fn preset_runs(preset: Preset, data: &Path) -> Result<Vec<RunSpec>, FigureError> {
    let sizes = preset.sizes();
    let mut runs = Vec::new();
    let mnist = |name: &str, head: &str, dim: usize| -> Result<RunSpec, FigureError> {
        let mut config = parse(name, &base_toml(head, dim, &sizes))?;
        config.data.path = Some(data.to_path_buf());
        config.data.limit = sizes.train_images;
        Ok(RunSpec {
            name: name.to_string(),
            config,
            test_images: sizes.test_images,
            plot_train: sizes.plot_train,
        })
    };
    for (name, head) in mnist_heads() {
        runs.push(mnist(&name, &head, 2)?);
    }
    runs.push(mnist(
        "arcface-3d",
        "kind = \"arcface\"\nscale = 16.0\nmargin = 0.5",
        3,
    )?);
    for (name, head) in [
        ("toy-softmax", "kind = \"softmax\""),
        ("toy-arcface", "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3"),
    ] {
        runs.push(RunSpec {
            name: name.to_string(),
            config: parse(name, &toy_toml(head, &sizes))?,
            test_images: 8 * 50,
            plot_train: 8 * sizes.toy_images,
        });
    }
    Ok(runs)
}

/// One run from a user's config file (named after the file), drawn with `preset`'s sizes.
pub fn config_run(path: &Path, preset: Preset) -> Result<RunSpec, FigureError> {
    let config = TrainConfig::from_file(path)
        .map_err(|e| FigureError::train(path.display().to_string(), e))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let sizes = preset.sizes();
    Ok(RunSpec {
        name,
        config,
        test_images: sizes.test_images,
        plot_train: sizes.plot_train,
    })
}

/// Where a run's figure goes: `out/<name>` (`.png` and `.svg`).
pub fn figure_stem(out: &Path, run: &RunSpec) -> PathBuf {
    out.join(&run.name)
}
