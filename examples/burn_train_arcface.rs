//! Train a small backbone + ArcFace with burn-train, on visage's built-in synthetic identities,
//! watching Burn's dashboard.
//!
//! The pieces: Burn's `DataLoaderBuilder` over a visage dataset (`BurnDataset` +
//! `ImageBatcher`), the backbone and head as one burn-train model (`FaceModel`: `TrainStep` /
//! `InferenceStep`), and held-out verification on unseen identities (10-fold accuracy and
//! TAR@FAR, `visage-eval`'s protocol) as burn-train metrics, next to Burn's loss and accuracy.
//!
//! Run (the dashboard is Burn's `tui` feature, switched on by `dashboard`):
//!
//! ```text
//! cargo run -p visage-examples --example burn_train_arcface --release --features dashboard
//! ```
//!
//! Without `--features dashboard`, or when stdout is not a terminal, burn-train prints its
//! plain progress instead. Arguments (optional): the output folder (default
//! `target/burn-train-arcface`) and the number of epochs (default 15). burn-train writes its
//! metric logs, per-epoch checkpoints and `experiment.log` there.

use std::error::Error;
use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::data::dataloader::DataLoaderBuilder;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::record::CompactRecorder;
use burn::tensor::backend::Backend;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use visage_backbones::{BackboneConfig, BackboneKind};
use visage_data::{
    held_out_verification, BurnDataset, ImageBatcher, SampleSource, SynthConfig, SyntheticDataset,
    SyntheticSplit,
};
use visage_heads::heads::ArcFaceConfig;
use visage_heads::HeadConfig;
use visage_learner::{FaceModel, VerificationMetric};

type B = Autodiff<Flex>;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/burn-train-arcface".into()),
    );
    let epochs: usize = match args.next() {
        Some(e) => e
            .parse()
            .map_err(|_| format!("epochs: {e:?} is not a whole number"))?,
        None => 15,
    };
    let device = Default::default();

    // Data: 64 training identities x 16 images of 32x32, and 300 verification pairs over 40
    // identities the model never sees (10 folds x 15 genuine + 15 impostor pairs).
    let synth = SynthConfig {
        size: 32,
        seed: 0,
        difficulty: 0.5,
    };
    let train = SyntheticDataset::try_new(synth, SyntheticSplit::Train, 64, 16)?;
    let classes = train.num_classes();
    let (pairs, _) = held_out_verification(synth, 40, 6, 10, 15, 7)?;
    let issame = pairs.issame.clone();
    let train_loader = DataLoaderBuilder::new(ImageBatcher)
        .batch_size(64)
        .shuffle(0)
        .num_workers(2)
        .build(BurnDataset::new(train));
    // Pair order matters to the verification metric: no shuffle.
    let valid_loader = DataLoaderBuilder::new(ImageBatcher)
        .batch_size(120)
        .build(pairs);

    // Model: a 4-layer SphereFace net at 32x32 with 128-d embeddings, ArcFace (s = 16,
    // m = 0.3): the recipe of `configs/synth-arcface.toml`.
    B::seed(&device, 0);
    let dim = 128;
    let backbone = BackboneConfig {
        embedding_dim: Some(dim),
        input_size: Some([32, 32]),
        ..BackboneConfig::new(BackboneKind::SphereNet(4))
    }
    .init::<B>(&device)?;
    let head = HeadConfig::ArcFace(ArcFaceConfig {
        scale: 16.0,
        margin: 0.3,
        ..ArcFaceConfig::default()
    })
    .init::<B>(classes, dim, &device)?;
    let model = FaceModel::new(backbone, head)?;
    let optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init();

    let result = SupervisedTraining::new(&dir, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(VerificationMetric::accuracy(issame.clone())?)
        .metric_valid_numeric(VerificationMetric::tar_at_far(issame, "1e-2")?)
        .with_file_checkpointer(CompactRecorder::new())
        .num_epochs(epochs)
        .summary()
        .launch(Learner::new(model, optim, 0.05));
    // The trained backbone, ready for embedding (inference mode).
    let _backbone = result.model.backbone;
    println!("run written to {}", dir.display());
    Ok(())
}
