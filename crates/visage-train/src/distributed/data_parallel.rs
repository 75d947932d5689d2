//! Local data-parallel training: one worker thread per device, gradients averaged each step
//! with burn-collective's all-reduce (see the module documentation of [`super`]).

use std::sync::Mutex;
use std::time::Instant;

use burn::collective::{
    all_reduce, finish_collective, register, reset_collective, CollectiveConfig, PeerId,
    ReduceOperation,
};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Element, Tensor, TensorData, TensorPrimitive};
use visage_backbones::Backbone;
use visage_data::augment::augment;
use visage_data::rng::SplitMix64;
use visage_data::sampler::{pk_batches, shuffled_batches};
use visage_data::{AugmentConfig, DataError, ImageBatcher, SampleSource};
use visage_heads::{Head, HeadConfig, HeadState};

use super::DistributedError;
use crate::config::{SamplerKind, TrainConfig};
use crate::data::open_training;
use crate::optim::{clip_global_norm, GroupOptimizer};
use crate::schedule::learning_rate;
use crate::{init_model, TrainError, Trainee};

/// burn-collective keeps one local server per backend type in the process: one run at a time
/// (which also keeps the seeded draw of the model from interleaving with another run's).
static COLLECTIVE: Mutex<()> = Mutex::new(());

/// What a data-parallel run produced.
#[derive(Debug)]
pub struct DataParallelSummary<B: AutodiffBackend> {
    /// `(step, loss)`: the loss of each global batch (the mean of the workers' losses).
    pub losses: Vec<(u64, f64)>,
    /// The trained model (worker 0's replica; every replica holds the same weights).
    pub model: Trainee<B>,
    /// The head state after the last step.
    pub head_state: HeadState,
    /// Number of workers.
    pub workers: usize,
    /// Wall time of the steps, seconds.
    pub train_seconds: f64,
    /// Training images per second (all workers together).
    pub images_per_second: f64,
}

/// Everything the workers share, read-only.
struct Plan<'a> {
    config: &'a TrainConfig,
    source: &'a dyn SampleSource,
    labels: Vec<usize>,
    total: u64,
    batches_per_epoch: u64,
    in_channels: usize,
    augment: AugmentConfig,
    world: usize,
}

impl Plan<'_> {
    fn batches(&self, epoch: u64) -> Result<Vec<Vec<usize>>, TrainError> {
        let t = &self.config.train;
        Ok(match t.sampler {
            SamplerKind::Shuffled => {
                shuffled_batches(self.source.len(), t.batch_size, true, t.seed, epoch)?
            }
            SamplerKind::Pk => {
                let k = t.k.unwrap_or(2);
                pk_batches(&self.labels, t.batch_size / k, k, t.seed, epoch)?
            }
        })
    }
}

/// Trains `config` for its `train.steps` (or epochs) on `devices.len()` workers, one thread
/// per device, and returns the losses and the trained model. Held-out evaluation, checkpoints
/// and the run directory are those of [`crate::train`] on one device and are not done here.
///
/// `train.batch_size` is the global batch: worker `r` of `W` takes items `[r B/W, (r+1) B/W)`
/// of every global batch (augmented with the draws the item has in the one-device loop), so
/// the union of the workers' parts is the one-device batch. The model is drawn once (the
/// seeded draw of [`crate::init_model`]) and cloned to each device; the workers check that
/// their replicas are identical before the first step.
///
/// Errors: `devices` empty, `batch_size` not a multiple of the workers, a head whose loss
/// couples the rows of a batch (metric losses, DeepID2, dynamic AdaCos, center/contrastive
/// auxiliaries), or any error of a worker, named by its rank.
pub fn train_data_parallel<B: AutodiffBackend>(
    config: &TrainConfig,
    devices: &[B::Device],
) -> Result<DataParallelSummary<B>, DistributedError> {
    config.validate_static()?;
    let world = devices.len();
    if world == 0 {
        return Err(TrainError::config("distributed.devices", "at least 1 device").into());
    }
    let batch = config.train.batch_size;
    if batch == 0 || !batch.is_multiple_of(world) {
        return Err(TrainError::config(
            "train.batch_size",
            format!("{batch} is not a positive multiple of the {world} devices (each worker takes batch_size / devices items)"),
        )
        .into());
    }
    check_row_separable(config)?;

    let source = open_training(&config.data)?;
    let classes = source.num_classes();
    let labels: Vec<usize> = (0..source.len())
        .map(|i| source.label(i))
        .collect::<Result<_, _>>()
        .map_err(TrainError::from)?;
    let mut plan = Plan {
        config,
        source: source.as_ref(),
        labels,
        total: 0,
        batches_per_epoch: 0,
        in_channels: config.backbone.in_channels().map_err(TrainError::from)?,
        augment: AugmentConfig {
            flip_p: config.data.flip.unwrap_or(0.5),
            jitter: config.data.jitter.unwrap_or(0.0),
            grey_p: config.data.grey.unwrap_or(0.0),
            ..AugmentConfig::default()
        },
        world,
    };
    plan.batches_per_epoch = plan.batches(0)?.len() as u64;
    if plan.batches_per_epoch == 0 {
        return Err(TrainError::config(
            "train.batch_size",
            format!(
                "{batch} is larger than one epoch of the data ({} images)",
                source.len()
            ),
        )
        .into());
    }
    plan.total = config
        .train
        .steps
        .unwrap_or_else(|| config.train.epochs.unwrap_or(1) * plan.batches_per_epoch);
    let _only_run = COLLECTIVE.lock().unwrap_or_else(|p| p.into_inner());
    // Drawn under the lock: the seeded draw uses the backend's process-wide generator.
    let model = init_model::<B>(config, classes, &devices[0])?;
    reset_collective::<B::InnerBackend>();
    let started = Instant::now();
    let results: Vec<Result<Option<WorkerOut<B>>, DistributedError>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let replica = model.clone().fork(device);
                let plan = &plan;
                s.spawn(move || worker::<B>(rank, device.clone(), replica, plan))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(rank, h)| {
                h.join().unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(DistributedError::Panicked {
                        worker: rank,
                        message,
                    })
                })
            })
            .collect()
    });
    reset_collective::<B::InnerBackend>();
    let seconds = started.elapsed().as_secs_f64();
    let mut first = None;
    for r in results {
        if let Some(out) = r? {
            first.get_or_insert(out);
        }
    }
    let out = first.expect("worker 0 returns its model");
    Ok(DataParallelSummary {
        images_per_second: out.losses.len() as f64 * batch as f64 / seconds.max(1e-9),
        losses: out.losses,
        model: out.model,
        head_state: out.head_state,
        workers: world,
        train_seconds: seconds,
    })
}

/// Refuses heads whose loss is not a mean of per-row terms (their gradient from parts of
/// the batch is not the gradient of the whole batch).
fn check_row_separable(config: &TrainConfig) -> Result<(), TrainError> {
    let spec = &config.head.spec;
    let coupled = match spec {
        HeadConfig::AdaCos(a) => a.dynamic,
        HeadConfig::DeepId2(_) => true,
        other => !other.kind().is_classifier(),
    };
    if coupled {
        return Err(TrainError::config(
            "head.kind",
            format!("`{}` couples the rows of a batch (in-batch pairs or batch statistics): data-parallel training supports the softmax-family heads (dynamic AdaCos: set dynamic = false)", spec.name()),
        ));
    }
    if config.head.center.is_some() || config.head.contrastive.is_some() {
        return Err(TrainError::config(
            "head",
            "the center and contrastive auxiliaries are not supported by data-parallel training",
        ));
    }
    Ok(())
}

struct WorkerOut<B: AutodiffBackend> {
    losses: Vec<(u64, f64)>,
    model: Trainee<B>,
    head_state: HeadState,
}

fn worker<B: AutodiffBackend>(
    rank: usize,
    device: B::Device,
    model: Trainee<B>,
    plan: &Plan<'_>,
) -> Result<Option<WorkerOut<B>>, DistributedError> {
    let peer = PeerId::from(rank);
    let failed = |operation: &'static str| {
        move |e: burn::collective::CollectiveError| DistributedError::Collective {
            worker: rank,
            operation,
            message: format!("{e:?}"),
        }
    };
    let wrap = |source: TrainError| DistributedError::Worker {
        worker: rank,
        source,
    };
    register::<B::InnerBackend>(
        peer,
        device.clone(),
        CollectiveConfig::default().with_num_devices(plan.world),
    )
    .map_err(failed("register"))?;
    let result = run_worker::<B, _, _>(rank, peer, &device, model, plan, &failed, &wrap);
    // Unregister even after an error (the others are then stopped by the error's report).
    let finished = finish_collective::<B::InnerBackend>(peer).map_err(failed("finish_collective"));
    let out = result?;
    finished?;
    Ok((rank == 0).then_some(out))
}

fn run_worker<B: AutodiffBackend, F, E>(
    rank: usize,
    peer: PeerId,
    device: &B::Device,
    mut model: Trainee<B>,
    plan: &Plan<'_>,
    failed: &impl Fn(&'static str) -> F,
    wrap: &impl Fn(TrainError) -> E,
) -> Result<WorkerOut<B>, DistributedError>
where
    F: Fn(burn::collective::CollectiveError) -> DistributedError,
    E: Into<DistributedError>,
{
    let config = plan.config;
    let world = plan.world;
    check_identical::<B, _>(rank, peer, &model, device, world, failed)?;
    let mut opt_backbone =
        GroupOptimizer::<Backbone<B>, B>::new(&config.optim, config.optim.weight_decay());
    let mut opt_head =
        GroupOptimizer::<Head<B>, B>::new(&config.optim, config.optim.head_weight_decay());
    let per = config.train.batch_size / world;
    let mut head_state = HeadState::default();
    let mut losses = Vec::with_capacity(plan.total as usize);
    let mut cached: Option<(u64, Vec<Vec<usize>>)> = None;
    for step in 0..plan.total {
        let (epoch, b) = (step / plan.batches_per_epoch, step % plan.batches_per_epoch);
        if cached.as_ref().map(|(e, _)| *e) != Some(epoch) {
            cached = Some((epoch, plan.batches(epoch).map_err(|e| wrap(e).into())?));
        }
        let global = &cached.as_ref().expect("plan").1[b as usize];
        let offset = rank * per;
        let items = global[offset..offset + per]
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let sample = plan.source.get(i)?;
                let key = [config.train.seed, 0xA06, epoch, b, (offset + j) as u64];
                Ok(augment(
                    &sample,
                    &plan.augment,
                    &mut SplitMix64::from_parts(&key),
                ))
            })
            .collect::<Result<Vec<_>, DataError>>()
            .map_err(|e| wrap(e.into()).into())?;
        let batch = ImageBatcher
            .batch_channels::<B>(&items, plan.in_channels, device)
            .map_err(|e| wrap(e.into()).into())?;
        let embeddings = model.backbone.forward(batch.images);
        let loss = model
            .head
            .forward(embeddings, batch.labels, &mut head_state)
            .loss;
        let global_loss = all_reduce::<B::InnerBackend>(
            peer,
            loss.clone().inner().into_primitive().tensor(),
            ReduceOperation::Mean,
        )
        .map_err(failed("all_reduce"))?;
        let loss_value = visage_io::read_back_scalar(Tensor::<B::InnerBackend, 1>::from_primitive(
            TensorPrimitive::Float(global_loss),
        ))
        .map_err(|e| wrap(e.into()).into())?;
        if !loss_value.is_finite() {
            return Err(wrap(TrainError::NonFinite {
                step,
                value: loss_value,
            })
            .into());
        }
        let mut grads = loss.backward();
        let g_backbone = GradientsParams::from_module(&mut grads, &model.backbone)
            .all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean)
            .map_err(failed("all_reduce"))?;
        let g_head = GradientsParams::from_module(&mut grads, &model.head)
            .all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean)
            .map_err(failed("all_reduce"))?;
        let (mut g_backbone, mut g_head) = (g_backbone, g_head);
        if let Some(max) = config.train.clip_grad_norm {
            clip_global_norm::<B, _, _>(
                (&model.backbone, &mut g_backbone),
                (&model.head, &mut g_head),
                max,
            );
        }
        let lr = learning_rate(&config.schedule, config.optim.lr(), step, plan.total);
        let head_lr = learning_rate(&config.schedule, config.optim.head_lr(), step, plan.total);
        let Trainee {
            backbone,
            head,
            center,
        } = model;
        model = Trainee {
            backbone: opt_backbone.step(lr, backbone, g_backbone),
            head: opt_head.step(head_lr, head, g_head),
            center,
        };
        head_state.advance();
        losses.push((step, loss_value));
    }
    Ok(WorkerOut {
        losses,
        model,
        head_state,
    })
}

/// Sum and sum of squares of every parameter, in f64.
struct Fingerprint([f64; 2]);

impl<B: Backend> ModuleVisitor<B> for Fingerprint {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let values: Vec<f64> = param
            .val()
            .into_data()
            .convert::<f64>()
            .into_vec()
            .unwrap_or_default();
        for v in values {
            self.0[0] += v;
            self.0[1] += v * v;
        }
    }
}

/// Every worker's fingerprint gathered by an all-reduce (sum) of a zero-padded `[W, 2]`
/// buffer; an error names this worker if the group's fingerprints differ.
fn check_identical<B: AutodiffBackend, F>(
    rank: usize,
    peer: PeerId,
    model: &Trainee<B>,
    device: &B::Device,
    world: usize,
    failed: &impl Fn(&'static str) -> F,
) -> Result<(), DistributedError>
where
    F: Fn(burn::collective::CollectiveError) -> DistributedError,
{
    let mut fp = Fingerprint([0.0; 2]);
    model.visit(&mut fp);
    let local = [fp.0[0] as f32, fp.0[1] as f32];
    let mut buffer = vec![0.0f32; world * 2];
    buffer[rank * 2..rank * 2 + 2].copy_from_slice(&local);
    let dtype = <B::FloatElem as Element>::dtype();
    let t = Tensor::<B::InnerBackend, 1>::from_data(
        TensorData::new(buffer, [world * 2]).convert_dtype(dtype),
        (device, dtype),
    );
    let all =
        all_reduce::<B::InnerBackend>(peer, t.into_primitive().tensor(), ReduceOperation::Sum)
            .map_err(failed("all_reduce"))?;
    let all: Vec<f32> = Tensor::<B::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(all))
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap_or_default();
    let pairs: Vec<[f64; 2]> = all.chunks(2).map(|c| [c[0] as f64, c[1] as f64]).collect();
    let min = pairs
        .iter()
        .fold([f64::INFINITY; 2], |a, p| [a[0].min(p[0]), a[1].min(p[1])]);
    let max = pairs.iter().fold([f64::NEG_INFINITY; 2], |a, p| {
        [a[0].max(p[0]), a[1].max(p[1])]
    });
    if min != max {
        return Err(DistributedError::Diverged {
            worker: rank,
            local: [local[0] as f64, local[1] as f64],
            min,
            max,
        });
    }
    Ok(())
}
