//! burn-train against visage's own loop where the two coincide: one SGD optimiser (momentum,
//! weight decay) whose head learning rate and decay equal the backbone's, a constant learning
//! rate, no gradient clipping, an ArcFace head, the same seeded initial weights
//! (`visage_train::init_model`) and the same batches.
//!
//! What is compared: the loss of every step of `visage_train::train` (its `TrainSummary`)
//! against the loss of the same step through burn-train, twice:
//! - driving burn-train's `Learner` by hand (`lr_step`, `train_step`, `optimizer_step`) with
//!   the batches of visage's own epoch plan (`TrainBatches`: the shuffle and flip draws of
//!   `visage train` for that seed and epoch);
//! - through `SupervisedTraining::launch`, whose loader yields those same batches in order, the
//!   losses read back by a metric that records every training item.
//!
//! Step `k`'s loss depends on the weights after steps `0..k`, so equal losses over several
//! steps (two epochs) also check the optimiser updates. The tolerance (1e-5 relative) allows
//! only for float reassociation; the runs here agree to the last bit on one machine.

use std::sync::{Arc, Mutex};

use burn::backend::{Autodiff, Flex};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::tensor::backend::Backend;
use burn::train::metric::{
    Adaptor, LossMetric, Metric, MetricMetadata, MetricName, Numeric, NumericEntry, SerializedEntry,
};
use burn::train::{ClassificationOutput, Learner, SupervisedTraining};
use visage_data::{AugmentConfig, BatchItem, BatchPlan, ImageBatch, SampleSource, TrainBatches};
use visage_learner::FaceModel;
use visage_train::{init_model, train, TrainConfig, TrainOptions};

type B = Autodiff<Flex>;
type Inner = Flex;

const STEPS: usize = 4;

/// Burn's seeded initialisation draws from one generator per device: tests that seed and
/// draw take turns, or their weights interleave.
static SEEDED: Mutex<()> = Mutex::new(());

fn config() -> TrainConfig {
    toml::from_str(
        r#"
[data]
kind = "synthetic"
identities = 8
images_per_identity = 4
image_size = 28
difficulty = 0.3

[backbone]
kind = "lenet_pp"
in_channels = 3
embedding_dim = 16

[head]
kind = "arcface"
scale = 8.0
margin = 0.2

[optim]
kind = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 0.0005

[schedule]
kind = "constant"

[train]
steps = 4
batch_size = 16
seed = 11
log_every = 1
"#,
    )
    .expect("test config parses")
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("visage-learner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The batches `visage train` uses for steps `0..STEPS` of `config`: its shuffled plan of each
/// epoch, its flip draws (seeded by seed, epoch, batch and position).
fn visage_batches<BB: Backend>(config: &TrainConfig) -> Vec<ImageBatch<BB>> {
    let source = visage_train::data::open_training(&config.data).unwrap();
    let plan = BatchPlan::Shuffled {
        batch_size: config.train.batch_size,
        drop_last: true,
    };
    let augment = AugmentConfig {
        flip_p: config.data.flip.unwrap_or(0.5),
        jitter: 0.0,
        grey_p: 0.0,
        ..AugmentConfig::default()
    };
    let mut out = Vec::new();
    let mut epoch = 0;
    while out.len() < STEPS {
        let it = TrainBatches::<BB, _>::new(
            source.as_ref(),
            plan,
            augment,
            config.train.seed,
            epoch,
            &Default::default(),
        )
        .unwrap();
        out.extend(it.map(|b| b.unwrap()));
        epoch += 1;
    }
    out.truncate(STEPS);
    out
}

fn sgd(config: &TrainConfig) -> SgdConfig {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(config.optim.momentum.unwrap())
                .with_dampening(0.0)
                .with_nesterov(false),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(
            config.optim.weight_decay() as f32
        )))
}

fn model(config: &TrainConfig) -> FaceModel<B> {
    let source = visage_train::data::open_training(&config.data).unwrap();
    let trainee = init_model::<B>(config, source.num_classes(), &Default::default()).unwrap();
    FaceModel::from_trainee(trainee).unwrap()
}

fn visage_losses(config: &TrainConfig, name: &str) -> Vec<f64> {
    let dir = tmp(name);
    let summary = train::<B>(
        config,
        &dir,
        &TrainOptions {
            quiet: true,
            ..TrainOptions::default()
        },
        &Default::default(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(summary.losses.len(), STEPS);
    summary.losses.iter().map(|&(_, l)| l).collect()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite() && y.is_finite());
        assert!(
            (x - y).abs() <= 1e-5 * x.abs().max(1.0),
            "step {i}: visage {x} vs burn-train {y}\nvisage {a:?}\nburn-train {b:?}"
        );
    }
}

#[test]
fn learner_steps_equal_visage_train_steps() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let config = config();
    let expect = visage_losses(&config, "learner");
    // The steps do move the weights (the losses differ from step to step).
    assert!(expect.windows(2).all(|w| w[0] != w[1]), "{expect:?}");

    let mut learner = Learner::new(
        model(&config),
        sgd(&config).init::<B, FaceModel<B>>(),
        config.optim.lr(),
    );
    let mut got = Vec::new();
    for batch in visage_batches::<B>(&config) {
        learner.lr_step();
        let out = learner.train_step(Ok(batch));
        got.push(visage_io::read_back_scalar(out.item.loss.clone()).unwrap());
        learner.optimizer_step(out.grads);
    }
    assert_close(&expect, &got);
}

/// Pre-built batches as a dataset (one batch per item) and the batcher that passes them on,
/// so that burn-train's loop sees exactly visage's batches.
#[derive(Debug, Clone)]
struct Prebuilt<BB: Backend>(Vec<ImageBatch<BB>>);

impl<BB: Backend> Dataset<ImageBatch<BB>> for Prebuilt<BB> {
    fn get(&self, index: usize) -> Option<ImageBatch<BB>> {
        self.0.get(index).cloned()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct PassOn;

impl<BB: Backend> Batcher<BB, ImageBatch<BB>, BatchItem<BB>> for PassOn {
    fn batch(&self, mut items: Vec<ImageBatch<BB>>, _device: &BB::Device) -> BatchItem<BB> {
        assert_eq!(items.len(), 1, "one pre-built batch per loader batch");
        Ok(items.pop().unwrap())
    }
}

/// Records the loss of every training item, in order.
#[derive(Clone)]
struct LossRecorder(Arc<Mutex<Vec<f64>>>);

struct LossValue(f64);

impl Adaptor<LossValue> for ClassificationOutput<Flex> {
    fn adapt(&self) -> LossValue {
        LossValue(visage_io::read_back_scalar(self.loss.clone()).unwrap())
    }
}

impl Metric for LossRecorder {
    type Input = LossValue;
    fn name(&self) -> MetricName {
        Arc::new("recorded loss".into())
    }
    fn update(&mut self, item: &LossValue, _: &MetricMetadata) -> SerializedEntry {
        self.0.lock().unwrap().push(item.0);
        SerializedEntry::new(format!("{}", item.0), format!("{}", item.0))
    }
    fn clear(&mut self) {}
}

impl Numeric for LossRecorder {
    fn value(&self) -> NumericEntry {
        NumericEntry::Value(self.0.lock().unwrap().last().copied().unwrap_or(0.0))
    }
    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}

#[test]
fn supervised_training_launch_equals_visage_train() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let config = config();
    let expect = visage_losses(&config, "launch");

    let train_loader = DataLoaderBuilder::<B, _, _>::new(PassOn)
        .batch_size(1)
        .build(Prebuilt(visage_batches::<B>(&config)));
    let valid_loader = DataLoaderBuilder::<Inner, _, _>::new(PassOn)
        .batch_size(1)
        .build(Prebuilt(visage_batches::<Inner>(&config)[..1].to_vec()));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let dir = tmp("launch-burn");
    let result = SupervisedTraining::new(&dir, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LossRecorder(recorded.clone()))
        .num_epochs(1)
        .with_application_logger(None)
        .launch(Learner::new(
            model(&config),
            sgd(&config).init::<B, FaceModel<B>>(),
            config.optim.lr(),
        ));
    drop(result);
    let got = recorded.lock().unwrap().clone();
    let _ = std::fs::remove_dir_all(&dir);
    assert_close(&expect, &got);
}
