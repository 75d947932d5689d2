//! One run of a feature-space figure: train it with `visage_train::train`, read its trained
//! backbone and head back from the last checkpoint, embed training and test images, and
//! measure test accuracy as the argmax of the head's inference logits.

use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use visage_data::{ImageSample, Mnist, SampleSource, SyntheticDataset, SyntheticSplit};
use visage_heads::HeadKind;
use visage_train::config::DataKind;
use visage_train::data::{open_training, synth_config};
use visage_train::extract::embed_samples;
use visage_train::{load_trained, train, TrainConfig, TrainOptions};

use crate::preset::RunSpec;
use crate::FigureError;

/// Fashion-MNIST's class names, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Features of one trained run, ready to draw.
#[derive(Debug, Clone)]
pub struct RunFeatures {
    /// The run's name (file stem).
    pub name: String,
    /// The loss and its settings, e.g. `CosFace s = 16, m = 0.2`.
    pub label: String,
    /// Data and training, e.g. `2-D, 600 steps x 64 on 10000 train images`.
    pub training: String,
    /// Embedding width (2 or 3).
    pub dim: usize,
    /// Class names, one per class.
    pub class_names: Vec<String>,
    /// Training features `[n_train, dim]`, row-major.
    pub train: Vec<f32>,
    /// Their labels.
    pub train_labels: Vec<usize>,
    /// Test features `[n_test, dim]`, row-major.
    pub test: Vec<f32>,
    /// Their labels.
    pub test_labels: Vec<usize>,
    /// Class weights `[C, dim]` (none for heads without them).
    pub weights: Option<Vec<f32>>,
    /// Center-loss centres `[C, dim]`, when the run has them.
    pub centres: Option<Vec<f32>>,
    /// Whether the head decides by angle alone (features drawn on the unit circle / sphere).
    pub angular: bool,
    /// Test accuracy: argmax of the head's inference logits (none without logits).
    pub test_accuracy: Option<f64>,
    /// Seconds of training (the steps only; those of the earlier invocation when reused).
    pub train_seconds: f64,
    /// Whether a finished run of the same config was found and reused (no training).
    pub reused: bool,
    /// Seconds of the whole run (training, reading back, embedding).
    pub total_seconds: f64,
}

/// Whether a head's decision depends on the angle only.
pub fn is_angular(kind: HeadKind) -> bool {
    matches!(
        kind,
        HeadKind::SphereFace
            | HeadKind::NormFace
            | HeadKind::CosFace
            | HeadKind::ArcFace
            | HeadKind::Combined
            | HeadKind::AdaCos
            | HeadKind::SubCenterArcFace
    )
}

fn pretty(kind: HeadKind) -> &'static str {
    match kind {
        HeadKind::Softmax => "Softmax",
        HeadKind::LSoftmax => "L-Softmax",
        HeadKind::SphereFace => "SphereFace",
        HeadKind::NormFace => "NormFace",
        HeadKind::CosFace => "CosFace",
        HeadKind::ArcFace => "ArcFace",
        HeadKind::SubCenterArcFace => "Sub-center ArcFace",
        HeadKind::Combined => "Combined margin",
        HeadKind::AdaCos => "AdaCos",
        HeadKind::Contrastive => "Contrastive",
        HeadKind::Triplet => "Triplet",
        HeadKind::Center => "Center",
        HeadKind::DeepId2 => "DeepID2",
    }
}

/// The order settings appear in a title.
const SETTING_ORDER: [&str; 12] = [
    "scale",
    "learnable_scale",
    "margin",
    "margin_int",
    "m1",
    "m2",
    "m3",
    "easy_margin",
    "detach_margin",
    "dynamic",
    "lambda_min",
    "bias",
];

/// A number as a title shows it: `16`, `0.1`, `0.0001`.
fn number(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e9 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
        None => v.to_string().trim_matches('"').to_string(),
    }
}

/// The loss and its settings as a title says them: the head's kind and the fields the config
/// sets (`margin_int` as `m`, SphereFace's annealing by the lambda it ends at), plus center
/// loss, e.g. `CosFace (s = 16, m = 0.1)`.
pub fn describe_loss(config: &TrainConfig) -> String {
    let mut fields: Vec<(usize, String)> = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&config.head.table) {
        for (key, value) in map {
            let Some(rank) = SETTING_ORDER.iter().position(|k| *k == key) else {
                continue;
            };
            let text = match (key.as_str(), &value) {
                (_, serde_json::Value::Bool(false)) => continue,
                (k, serde_json::Value::Bool(true)) => k.replace('_', " "),
                ("scale", v) => format!("s = {}", number(v)),
                ("margin" | "margin_int", v) => format!("m = {}", number(v)),
                ("lambda_min", v) => format!("annealed to λ = {}", number(v)),
                (k, v) => format!("{k} = {}", number(v)),
            };
            fields.push((rank, text));
        }
    }
    fields.sort();
    let mut text = pretty(config.head.spec.kind()).to_string();
    if let Some(c) = &config.head.center {
        text.push_str(&format!(" + center loss λ = {}", c.weight));
    }
    if !fields.is_empty() {
        let parts: Vec<String> = fields.into_iter().map(|f| f.1).collect();
        text.push_str(&format!(" ({})", parts.join(", ")));
    }
    text
}

fn class_names(config: &TrainConfig, classes: usize) -> Vec<String> {
    let fashion = config.data.kind == DataKind::Mnist
        && config
            .data
            .path
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().to_lowercase().contains("fashion"))
        && classes == FASHION_CLASSES.len();
    (0..classes)
        .map(|c| match config.data.kind {
            _ if fashion => FASHION_CLASSES[c].to_string(),
            DataKind::Synthetic => format!("identity {c}"),
            _ => format!("{c}"),
        })
        .collect()
}

/// The test images of a run: the `t10k` split of an MNIST-format folder, or for synthetic
/// identities the images after the training ones of the same identities; at most `limit`.
pub fn test_samples(config: &TrainConfig, limit: usize) -> Result<Vec<ImageSample>, FigureError> {
    match config.data.kind {
        DataKind::Mnist => {
            let dir = config.data.path.clone().unwrap_or_default();
            let test = Mnist::open_split(&dir, "t10k")?;
            (0..test.len().min(limit))
                .map(|i| test.get(i).map_err(FigureError::from))
                .collect()
        }
        DataKind::Synthetic => {
            let ids = config.data.identities.unwrap_or(0).max(1);
            let per_id = config.data.images_per_identity.unwrap_or(0);
            let held = limit.div_ceil(ids);
            let set = SyntheticDataset::new(
                synth_config(&config.data),
                SyntheticSplit::Train,
                ids,
                per_id,
            );
            Ok((0..held)
                .flat_map(|j| (0..ids).map(move |id| (id, per_id + j)))
                .take(limit)
                .map(|(id, image)| set.image(id, image))
                .collect())
        }
        _ => Err(FigureError::setting(
            "data.kind",
            "feature figures need test images: use kind = \"mnist\" or \"synthetic\"",
        )),
    }
}

fn finite(run: &str, split: &'static str, values: &[f32], dim: usize) -> Result<(), FigureError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(p) => Err(FigureError::NonFinite {
            run: run.to_string(),
            split,
            index: p / dim.max(1),
        }),
        None => Ok(()),
    }
}

/// The argmax of each row of `logits` `[N, C]` (row-major) compared with `labels`.
pub fn accuracy_of(logits: &[f32], classes: usize, labels: &[usize]) -> f64 {
    if labels.is_empty() || classes == 0 {
        return 0.0;
    }
    let right = logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, &y)| {
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                );
            best.0 == y
        })
        .count();
    right as f64 / labels.len() as f64
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, FigureError> {
    Ok(visage_io::read_back::<f32, B, D>(t)?.0)
}

/// `", from the <run> run's network"` for a run whose backbone started from another run's
/// `backbone.bin` (named by that run's folder), else empty.
fn started_from(config: &TrainConfig) -> String {
    config
        .train
        .init_backbone
        .as_ref()
        .and_then(|p| p.parent()?.file_name())
        .map(|run| format!(", from the {} run's network", run.to_string_lossy()))
        .unwrap_or_default()
}

/// The model of a finished run of exactly `config` in `run_dir` (its `report.json` written,
/// its last checkpoint of the same config fingerprint) and that run's training seconds.
fn finished_run<B: Backend>(
    config: &TrainConfig,
    run_dir: &Path,
    classes: usize,
    device: &B::Device,
) -> Option<(visage_train::Trainee<B>, f64)> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).ok()?).ok()?;
    let seconds = report.get("train_seconds")?.as_f64()?;
    let model = load_trained::<B>(config, run_dir, classes, device).ok()?;
    Some((model, seconds))
}

/// Trains `spec` in `runs_dir/<name>` (or reuses a finished run of the same config there) on backend `B` and returns its features.
pub fn train_run<B: AutodiffBackend>(
    spec: &RunSpec,
    runs_dir: &Path,
    device: &B::Device,
) -> Result<RunFeatures, FigureError> {
    let started = Instant::now();
    let config = &spec.config;
    let name = spec.name.as_str();
    let err = |e| FigureError::train(name, e);
    let dim = config.backbone.embedding_dim().map_err(|e| err(e.into()))?;
    if !(2..=3).contains(&dim) {
        return Err(FigureError::setting(
            "backbone.embedding_dim",
            format!("{dim}: feature figures draw 2-D or 3-D features"),
        ));
    }
    let in_channels = config.backbone.in_channels().map_err(|e| err(e.into()))?;
    let run_dir = runs_dir.join(name);
    let source = open_training(&config.data).map_err(err)?;
    let classes = source.num_classes();
    let (model, train_seconds, reused) =
        match finished_run::<B::InnerBackend>(config, &run_dir, classes, device) {
            Some((model, seconds)) => (model, seconds, true),
            None => {
                // Not a finished run of this config: whatever an older run left is replaced
                // (a stale checkpoint of another config must not be read back after training).
                let options = TrainOptions {
                    quiet: true,
                    overwrite: true,
                    ..Default::default()
                };
                let summary = train::<B>(config, &run_dir, &options, device).map_err(err)?;
                let model = load_trained::<B::InnerBackend>(config, &run_dir, classes, device)
                    .map_err(err)?;
                (model, summary.train_seconds, false)
            }
        };

    let train_samples: Vec<ImageSample> = (0..source.len().min(spec.plot_train))
        .map(|i| source.get(i))
        .collect::<Result<_, _>>()?;
    let test_samples = test_samples(config, spec.test_images)?;
    let embed = |samples: &[ImageSample]| {
        embed_samples::<B::InnerBackend>(&model.backbone, samples, in_channels, false, 256, device)
            .map_err(err)
    };
    let train_e = embed(&train_samples)?;
    let test_e = embed(&test_samples)?;
    finite(name, "train", &train_e.data, dim)?;
    finite(name, "test", &test_e.data, dim)?;
    let test_labels: Vec<usize> = test_samples.iter().map(|s| s.label).collect();

    let test_accuracy = if test_e.rows == 0 {
        None
    } else {
        let x = Tensor::<B::InnerBackend, 2>::from_data(
            TensorData::new(test_e.data.clone(), [test_e.rows, dim]),
            device,
        );
        model
            .head
            .inference_logits(x)
            .map(|logits| host(logits).map(|h| accuracy_of(&h, classes, &test_labels)))
            .transpose()?
    };
    let steps = config.train.steps.map_or_else(
        || format!("{} epochs", config.train.epochs.unwrap_or(1)),
        |s| format!("{s} steps"),
    );
    Ok(RunFeatures {
        name: name.to_string(),
        label: describe_loss(config),
        training: format!(
            "{dim}-D, {steps} × {} on {} train images{}",
            config.train.batch_size,
            source.len(),
            started_from(config)
        ),
        dim,
        class_names: class_names(config, classes),
        train: train_e.data,
        train_labels: train_samples.iter().map(|s| s.label).collect(),
        test: test_e.data,
        test_labels,
        weights: model.head.class_tensor().map(host).transpose()?,
        centres: model.center.map(|c| host(c.centers.val())).transpose()?,
        angular: is_angular(config.head.spec.kind()),
        test_accuracy,
        train_seconds,
        reused,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_is_the_argmax_hit_rate() {
        let logits = [0.1f32, 0.9, 2.0, -1.0, 0.0, 0.5];
        assert_eq!(accuracy_of(&logits, 2, &[1, 0, 0]), 2.0 / 3.0);
        assert_eq!(accuracy_of(&[], 2, &[]), 0.0);
    }

    #[test]
    fn titles_name_the_loss_and_its_settings() {
        let text = "[data]\nkind = \"synthetic\"\nidentities = 2\nimages_per_identity = 2\n\
                    [backbone]\nkind = \"lenet_pp\"\n[head]\nkind = \"sphereface\"\nmargin_int = 3\n\
                    base = 1000.0\ngamma = 0.05\nlambda_min = 1.0\n[train]\nsteps = 1\nbatch_size = 2\n";
        let config: TrainConfig = toml::from_str(text).unwrap();
        assert_eq!(
            describe_loss(&config),
            "SphereFace (m = 3, annealed to λ = 1)"
        );
        let text = text.replace(
            "kind = \"sphereface\"\nmargin_int = 3\nbase = 1000.0\ngamma = 0.05\nlambda_min = 1.0\n",
            "kind = \"softmax\"\n[head.center]\nweight = 0.001\n",
        );
        let config: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(describe_loss(&config), "Softmax + center loss λ = 0.001");
    }
}
