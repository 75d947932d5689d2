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
                steps: 200,
                batch_size: 64,
                test_images: 3_000,
                plot_train: 2_000,
                toy_images: 150,
                toy_steps: 150,
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
    /// Training order: lower first (one run of each loss before the sweeps).
    pub priority: usize,
    /// The run whose trained backbone this one starts from (its `[train] init_backbone` is
    /// set to that run's `backbone.bin` when it trains), or `None` for a random start.
    pub start_from: Option<String>,
}

/// The runs trained first, in this order; the others follow in the preset's order. The two
/// softmax runs come first: the normalised losses start from their backbones.
pub const FIRST_RUNS: [&str; 10] = [
    "softmax",
    "toy-softmax",
    "center-1e-2",
    "sphereface-m4",
    "normface",
    "cosface-m0.2",
    "arcface",
    "adacos",
    "normface-3d",
    "toy-arcface",
];

fn priority(name: &str, index: usize) -> usize {
    FIRST_RUNS
        .iter()
        .position(|n| *n == name)
        .unwrap_or(FIRST_RUNS.len() + index)
}

/// The softmax run the normalised losses (NormFace, CosFace, ArcFace, AdaCos) of the 2-D
/// MNIST runs start from.
pub const SOFTMAX_RUN: &str = "softmax";

/// The `[head]` tables of the MNIST runs: `(name, TOML, start_from)`, `start_from` naming the
/// run whose trained backbone the run starts from. `steps` sets SphereFace's annealing (see
/// [`sphereface_head`]).
///
/// The normalised losses fine-tune the softmax run's network, as NormFace did (its paper
/// fine-tunes softmax-trained models): from a random start all features of LeNets++ point
/// into one narrow cone, every class weight is pulled into it, and in 250 steps
/// (the cpu preset's earlier budget) the features never leave it (ArcFace ended in a half plane, AdaCos's dynamic scale
/// ran to ~200). SphereFace anneals from softmax by itself; center loss is softmax-based.
pub fn mnist_heads(steps: u64) -> Vec<(String, String, Option<String>)> {
    let from_softmax = || Some(SOFTMAX_RUN.to_string());
    let mut heads = vec![(
        SOFTMAX_RUN.to_string(),
        "kind = \"softmax\"".to_string(),
        None,
    )];
    for (tag, weight) in [
        ("1e-4", 1e-4),
        ("1e-3", 1e-3),
        ("1e-2", 1e-2),
        ("1e-1", 1e-1),
    ] {
        heads.push((
            format!("center-{tag}"),
            format!("kind = \"softmax\"\n[head.center]\nweight = {weight:e}\nalpha = 0.5"),
            None,
        ));
    }
    heads.push((
        "normface".into(),
        "kind = \"normface\"\nscale = 16.0".into(),
        from_softmax(),
    ));
    for m in 1..=4 {
        heads.push((format!("sphereface-m{m}"), sphereface_head(m, steps), None));
    }
    for m in [0.0f64, 0.1, 0.2] {
        heads.push((
            format!("cosface-m{m}"),
            format!("kind = \"cosface\"\nscale = 16.0\nmargin = {m:?}"),
            from_softmax(),
        ));
    }
    heads.push((
        "arcface".into(),
        "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3".into(),
        from_softmax(),
    ));
    heads.push((
        "adacos".into(),
        "kind = \"adacos\"\ndynamic = true".into(),
        from_softmax(),
    ));
    heads
}

/// SphereFace with margin `m`, annealed as `lambda = 1000 / (1 + gamma t)` from softmax
/// down to the floor lambda = 1, reached half-way through `steps` (the official recipe
/// reaches its floor of 5 after ~1,700 steps; short runs need the faster decay).
fn sphereface_head(m: u32, steps: u64) -> String {
    let gamma = 999.0 / (steps.max(2) as f64 / 2.0);
    format!(
        "kind = \"sphereface\"\nmargin_int = {m}\nbase = 1000.0\ngamma = {gamma:?}\npower = 1.0\nlambda_min = 1.0"
    )
}

/// `[optim]`, `[schedule]` and `[train]` of every preset run: AdamW (lr 3e-3, decay 1e-4), a
/// short warm-up, cosine decay, the global gradient norm clipped at 5. In 250 steps SGD (lr
/// 0.03, momentum 0.9, tried first) left softmax at 67 % test accuracy, stuck for its first
/// ~40 steps on the Caffe initialisation's small outputs; AdamW reached
/// 74 %.
fn training_toml(steps: u64, batch: usize) -> String {
    format!(
        r#"[optim]
kind = "adamw"
lr = 0.003
weight_decay = 1e-4

[schedule]
kind = "cosine"
warmup_steps = 20

[train]
steps = {steps}
batch_size = {batch}
seed = 0
clip_grad_norm = 5.0
log_every = 25
"#
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

{rest}"#,
        rest = training_toml(sizes.steps, sizes.batch_size),
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

{rest}"#,
        per_id = sizes.toy_images,
        rest = training_toml(sizes.toy_steps, 64),
    )
}

fn parse(name: &str, text: &str) -> Result<TrainConfig, FigureError> {
    toml::from_str(text)
        .map_err(|e| FigureError::setting(format!("preset run {name}"), e.to_string()))
}

/// The runs of `preset` on the MNIST-format folder `data`: every MNIST head in 2-D, NormFace
/// in 3-D (`normface-3d`, the sphere picture), and softmax and ArcFace on the 8-identity
/// synthetic toy (ArcFace starting from the toy softmax run). (ArcFace m = 0.5 in 3-D, tried
/// first, fell into its fallback region within 250 steps: every feature
/// ~150 degrees from its class weight.)
pub fn preset_runs(preset: Preset, data: &Path) -> Result<Vec<RunSpec>, FigureError> {
    let sizes = preset.sizes();
    let mut runs = Vec::new();
    let mnist = |name: &str, head: &str, dim: usize, start_from: Option<String>| {
        let mut config = parse(name, &base_toml(head, dim, &sizes))?;
        config.data.path = Some(data.to_path_buf());
        config.data.limit = sizes.train_images;
        Ok::<_, FigureError>(RunSpec {
            name: name.to_string(),
            config,
            test_images: sizes.test_images,
            plot_train: sizes.plot_train,
            priority: 0,
            start_from,
        })
    };
    for (name, head, start_from) in mnist_heads(sizes.steps) {
        runs.push(mnist(&name, &head, 2, start_from)?);
    }
    runs.push(mnist(
        "normface-3d",
        "kind = \"normface\"\nscale = 16.0",
        3,
        None,
    )?);
    for (name, head, start_from) in [
        ("toy-softmax", "kind = \"softmax\"", None),
        (
            "toy-arcface",
            "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3",
            Some("toy-softmax".to_string()),
        ),
    ] {
        runs.push(RunSpec {
            name: name.to_string(),
            config: parse(name, &toy_toml(head, &sizes))?,
            test_images: 8 * 50,
            plot_train: 8 * sizes.toy_images,
            priority: 0,
            start_from,
        });
    }
    for (i, r) in runs.iter_mut().enumerate() {
        r.priority = priority(&r.name, i);
    }
    Ok(runs)
}

/// The runs of `runs` named in `names`, with the runs they start from (transitively) added,
/// in `runs`' order.
///
/// # Errors
/// [`FigureError::Setting`] for a name that is not a run, listing the runs.
pub fn select_runs(runs: Vec<RunSpec>, names: &[String]) -> Result<Vec<RunSpec>, FigureError> {
    let known: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(FigureError::setting(
            "--runs",
            format!("no run named `{bad}` (runs: {})", known.join(", ")),
        ));
    }
    let mut wanted: Vec<String> = names.to_vec();
    let mut i = 0;
    while i < wanted.len() {
        let start = runs
            .iter()
            .find(|r| r.name == wanted[i])
            .and_then(|r| r.start_from.clone());
        if let Some(start) = start {
            if !wanted.contains(&start) {
                wanted.push(start);
            }
        }
        i += 1;
    }
    Ok(runs
        .into_iter()
        .filter(|r| wanted.contains(&r.name))
        .collect())
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
        priority: 0,
        start_from: None,
    })
}

/// Where a run's figure goes: `out/<name>` (`.png` and `.svg`).
pub fn figure_stem(out: &Path, run: &RunSpec) -> PathBuf {
    out.join(&run.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(runs: &[RunSpec]) -> Vec<&str> {
        runs.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn the_preset_has_every_run_of_the_issue_and_parents_train_first() {
        let runs = preset_runs(Preset::Cpu, Path::new("/data")).unwrap();
        assert_eq!(runs.len(), 18);
        for name in FIRST_RUNS {
            assert!(names(&runs).contains(&name), "{name}");
        }
        for r in &runs {
            if let Some(parent) = &r.start_from {
                let p = runs.iter().find(|q| &q.name == parent).unwrap();
                assert!(p.priority < r.priority, "{} before {}", p.name, r.name);
                assert!(p.start_from.is_none());
            }
        }
        let from: Vec<&str> = runs
            .iter()
            .filter(|r| r.start_from.is_some())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            from,
            [
                "normface",
                "cosface-m0",
                "cosface-m0.1",
                "cosface-m0.2",
                "arcface",
                "adacos",
                "toy-arcface"
            ]
        );
    }

    #[test]
    fn selecting_runs_brings_the_runs_they_start_from() {
        let runs = preset_runs(Preset::Cpu, Path::new("/data")).unwrap();
        let picked = select_runs(runs.clone(), &["toy-arcface".into(), "arcface".into()]).unwrap();
        assert_eq!(
            names(&picked),
            ["softmax", "arcface", "toy-softmax", "toy-arcface"]
        );
        let picked = select_runs(runs.clone(), &["center-1e-1".into()]).unwrap();
        assert_eq!(names(&picked), ["center-1e-1"]);
        let e = select_runs(runs, &["nope".into()]).unwrap_err().to_string();
        assert!(
            e.contains("--runs") && e.contains("nope") && e.contains("softmax"),
            "{e}"
        );
    }
}
