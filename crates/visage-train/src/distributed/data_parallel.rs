//! Local data-parallel training: one worker thread per device, gradients averaged each step
//! with burn-collective's all-reduce (see the module documentation of [`super`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::collective::{
    all_reduce, finish_collective, register, reset_collective, CollectiveConfig, CollectiveError,
    PeerId, ReduceOperation,
};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Element, Int, Tensor, TensorData, TensorPrimitive};
use serde_json::json;
use visage_backbones::Backbone;
use visage_data::augment::augment;
use visage_data::rng::SplitMix64;
use visage_data::sampler::{pk_batches, shuffled_batches};
use visage_data::ImageBatch;
use visage_data::{AugmentConfig, DataError, ImageBatcher, SampleSource};
use visage_heads::sharded::{Exchange, ReduceOp, ShardError, ShardedHead};
use visage_heads::{Head, HeadConfig, HeadState, HeadTensors};

use super::checkpoint::{checkpoint_files, fresh_shards, load_start, ShardStart, Start};
use super::exchange::{take_collective_seconds, timed};
use super::{CollectiveExchange, DistributedError};
use crate::checkpoint::{newest_intact, prune, write_checkpoint, CheckpointState, ShardLayout};
use crate::config::{SamplerKind, TrainConfig};
use crate::data::open_training;
use crate::durable::append_line;
use crate::optim::{clip_factor, clip_global_norm, scale_grads, squared_grad_norm, GroupOptimizer};
use crate::run_dir::truncate_metrics;
use crate::schedule::learning_rate;
use crate::step_report::StepReport;
use crate::trainer::{config_fingerprint, record_bytes};
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
    /// The step the run started from (0, or the checkpoint it resumed from).
    pub start_step: u64,
    /// Whether it stopped at `stop_after` before the run's last step.
    pub interrupted: bool,
    /// Seconds of training over every invocation of the run (with a run directory).
    pub total_train_seconds: f64,
    /// Checkpoints that failed verification on resume and were skipped, with the reason.
    pub skipped_checkpoints: Vec<String>,
    /// The share of the workers' step time spent in collective calls (all-reduces, waiting
    /// for the slowest worker included), averaged over the workers.
    pub collective_share: f64,
}

/// The run directory of a data-parallel run ([`super::train_on_devices`]): metrics and
/// checkpoints are written there, and a run may resume from its newest intact checkpoint.
pub(crate) struct RunFiles<'a> {
    /// The run directory (claimed or checked by the caller).
    pub run_dir: &'a Path,
    /// Continue from the newest intact checkpoint (the caller found at least one).
    pub resume: bool,
    /// Stop after this many steps, as if killed (no checkpoint at that step but the periodic
    /// ones).
    pub stop_after: Option<u64>,
    /// Where worker 0 reports the steps (stage `"train"`, a status line at every
    /// `train.log_every`), as the single-device loop does.
    pub progress: Option<visage_io::SharedProgress>,
    /// Without `progress`: print `step i/n  loss ...` lines on stderr unless this is set.
    pub quiet: bool,
}

/// A failure injected on purpose: worker `worker` at step `step`, either as an error reading
/// its part of the batch or (`panic`) as a panic after the step's status exchange, while the
/// others go on into the step's all-reduces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fault {
    worker: usize,
    step: u64,
    panic: bool,
}

/// How long the other workers are given to stop on their own after a worker failed, before
/// the collective is reset under them (which ends every all-reduce they wait in with an
/// error).
const FAILURE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A shard's record and its optimiser state, encoded.
type ShardFiles = (Vec<u8>, Vec<u8>);

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
    /// Where a worker fails on purpose (tests of failure handling).
    fault: Option<Fault>,
    /// Steps `start..end` run in this invocation.
    start: u64,
    end: u64,
    /// The checkpoint state the run starts from (step 0's for a new run).
    state: CheckpointState,
    /// Where metrics and checkpoints go (none: the library call without a run directory).
    metrics: Option<PathBuf>,
    /// Where worker 0 reports progress, and whether it prints status lines without one.
    progress: Option<visage_io::SharedProgress>,
    say_steps: bool,
    run_dir: Option<&'a Path>,
    /// With a sharded head: the class ranges, and where the workers leave their shard's
    /// record and optimiser state for worker 0 to write the checkpoint.
    layout: Option<ShardLayout>,
    deposits: Mutex<Vec<Option<ShardFiles>>>,
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
/// per device, and returns the losses and the trained model, without a run directory (no
/// metrics, no checkpoints: [`super::train_on_devices`] runs the same loop in one, with
/// checkpoints and resume).
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
    train_data_parallel_with_fault(config, devices, None)
}

/// [`train_data_parallel`] with worker `fault.0` failing on purpose at step `fault.1` (as if
/// its part of the batch could not be read): the run must stop with that worker's error, the
/// others stopping too (tests of failure handling).
#[doc(hidden)]
pub fn train_data_parallel_with_fault<B: AutodiffBackend>(
    config: &TrainConfig,
    devices: &[B::Device],
    fault: Option<(usize, u64)>,
) -> Result<DataParallelSummary<B>, DistributedError> {
    let fault = fault.map(|(worker, step)| Fault {
        worker,
        step,
        panic: false,
    });
    run_data_parallel(config, devices, fault, None)
}

/// [`train_data_parallel`] with worker `fault.0` panicking at step `fault.1` after it read its
/// part of the batch, while the others go on into the step's all-reduces and wait there: the
/// run must stop within a bounded time with that worker's error (tests of failure handling).
#[doc(hidden)]
pub fn train_data_parallel_with_panic<B: AutodiffBackend>(
    config: &TrainConfig,
    devices: &[B::Device],
    fault: (usize, u64),
) -> Result<DataParallelSummary<B>, DistributedError> {
    let fault = Fault {
        worker: fault.0,
        step: fault.1,
        panic: true,
    };
    run_data_parallel(config, devices, Some(fault), None)
}

/// The data-parallel run, with or without a run directory (`files`).
pub(crate) fn run_data_parallel<B: AutodiffBackend>(
    config: &TrainConfig,
    devices: &[B::Device],
    fault: Option<Fault>,
    files: Option<&RunFiles<'_>>,
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
    check_sharding(config)?;

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
        fault,
        start: 0,
        end: 0,
        state: CheckpointState {
            step: 0,
            head_state: HeadState::default(),
            config_fingerprint: config_fingerprint(config),
            baseline_accuracy: None,
            best: None,
            train_seconds: 0.0,
            shards: config
                .sharded_head()
                .map(|_| ShardLayout::new(classes, world)),
        },
        metrics: files.map(|f| f.run_dir.join("metrics.jsonl")),
        progress: files.and_then(|f| f.progress.clone()),
        say_steps: files.is_some_and(|f| !f.quiet && f.progress.is_none()),
        run_dir: files.map(|f| f.run_dir),
        layout: config
            .sharded_head()
            .map(|_| ShardLayout::new(classes, world)),
        deposits: Mutex::new(vec![None; world]),
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
    let mut skipped_checkpoints = Vec::new();
    let start = match files.filter(|f| f.resume) {
        Some(f) => {
            let found = newest_intact(
                f.run_dir,
                &plan.state.config_fingerprint,
                Some(plan.total),
                |e| {
                    // Always said: the run goes on from an older checkpoint.
                    eprintln!("skipping {e}");
                    skipped_checkpoints.push(e.to_string());
                },
            )?;
            if let Some(metrics) = &plan.metrics {
                truncate_metrics(metrics, found.state.step)?;
            }
            let start = load_start(config, &found, model, world, &devices[0])?;
            plan.state = found.state;
            plan.state.shards = plan.layout.clone();
            start
        }
        None => Start {
            shards: fresh_shards(config, &model, world).map_err(|e| DistributedError::Shard {
                worker: 0,
                source: Box::new(e),
            })?,
            model,
            optim_backbone: None,
            optim_head: None,
        },
    };
    plan.start = plan.state.step;
    plan.end = files
        .and_then(|f| f.stop_after)
        .map_or(plan.total, |s| s.clamp(plan.start, plan.total));
    let Start {
        model,
        optim_backbone,
        optim_head,
        shards,
    } = start;
    let mut shards: Vec<Option<ShardStart<B>>> = shards.into_iter().map(Some).collect();
    reset_collective::<B::InnerBackend>();
    let started = Instant::now();
    let mut first_failure = None;
    let results: Vec<Result<WorkerOut<B>, DistributedError>> = std::thread::scope(|s| {
        let mut handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let given = WorkerStart {
                    model: model.clone().fork(device),
                    shard: shards
                        .get_mut(rank)
                        .and_then(Option::take)
                        .map(|(shard, optim)| (shard.fork(device), optim)),
                    optim_backbone: optim_backbone.clone(),
                    optim_head: optim_head.clone(),
                };
                let plan = &plan;
                Some(s.spawn(move || worker::<B>(rank, device.clone(), given, plan)))
            })
            .collect();
        // Watch the workers: once one has failed (an error or a panic), the others can finish
        // no all-reduce; give them FAILURE_GRACE to stop on their own (a failure seen at the
        // step's status exchange), then reset the collective, which ends the all-reduces they
        // wait in with an error, so that nothing hangs.
        let mut results: Vec<Option<Result<WorkerOut<B>, DistributedError>>> =
            (0..world).map(|_| None).collect();
        let mut failed_at: Option<Instant> = None;
        while handles.iter().any(Option::is_some) {
            for (rank, slot) in handles.iter_mut().enumerate() {
                if !slot.as_ref().is_some_and(|h| h.is_finished()) {
                    continue;
                }
                let result = slot
                    .take()
                    .expect("finished")
                    .join()
                    .unwrap_or_else(|panic| {
                        Err(DistributedError::Panicked {
                            worker: rank,
                            message: panic_message(&*panic),
                        })
                    });
                if result.is_err() && first_failure.is_none() {
                    first_failure = Some(rank);
                    failed_at = Some(Instant::now());
                }
                results[rank] = Some(result);
            }
            if failed_at.is_some_and(|t| t.elapsed() > FAILURE_GRACE) {
                reset_collective::<B::InnerBackend>();
                failed_at = None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        results
            .into_iter()
            .map(|r| r.expect("every worker joined"))
            .collect()
    });
    reset_collective::<B::InnerBackend>();
    let seconds = started.elapsed().as_secs_f64();
    // The cause first: the first worker to fail, unless it only reported another's failure;
    // then a worker's own error before the others' reports of it.
    let mut results: Vec<Option<Result<WorkerOut<B>, DistributedError>>> =
        results.into_iter().map(Some).collect();
    if let Some(rank) = first_failure {
        if let Some(Err(e)) = results[rank].take() {
            if !matches!(e, DistributedError::PeerFailed { .. }) {
                return Err(e);
            }
            results[rank] = Some(Err(e));
        }
    }
    let mut outs = Vec::with_capacity(world);
    let mut reports = None;
    for r in results.into_iter().flatten() {
        match r {
            Ok(out) => outs.push(out),
            Err(e @ DistributedError::PeerFailed { .. }) => {
                reports.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(e) = reports {
        return Err(e);
    }
    let collective_share = outs
        .iter()
        .map(|o| o.collective_seconds / o.step_seconds.max(1e-9))
        .sum::<f64>()
        / outs.len().max(1) as f64;
    let shards: Vec<ShardedHead<B>> = outs.iter().filter_map(|o| o.shard.clone()).collect();
    let out = outs.into_iter().next().expect("at least one worker");
    let mut model = out.model;
    if !shards.is_empty() {
        model.head = assemble(config, classes, shards, &devices[0])?;
    }
    Ok(DataParallelSummary {
        images_per_second: out.losses.len() as f64 * batch as f64 / seconds.max(1e-9),
        losses: out.losses,
        model,
        head_state: out.head_state,
        workers: world,
        train_seconds: seconds,
        start_step: plan.start,
        interrupted: plan.end < plan.total,
        total_train_seconds: plan.state.train_seconds + seconds,
        skipped_checkpoints,
        collective_share,
    })
}

/// The full head from its shards (in rank order): weights (and bias) concatenated by rows,
/// the learned scale (replicated on every shard) taken from the first.
pub(crate) fn assemble<B: AutodiffBackend>(
    config: &TrainConfig,
    classes: usize,
    shards: Vec<ShardedHead<B>>,
    device: &B::Device,
) -> Result<Head<B>, DistributedError> {
    let dtype = <B::FloatElem as Element>::dtype();
    let weight: Tensor<B, 2> = Tensor::from_data(
        Tensor::cat(
            shards
                .iter()
                .map(|s| s.classifier.weight.val().inner().to_device(device))
                .collect(),
            0,
        )
        .into_data()
        .convert_dtype(dtype),
        (device, dtype),
    );
    let bias = shards[0].classifier.bias.is_some().then(|| {
        Tensor::<B, 1>::from_data(
            Tensor::cat(
                shards
                    .iter()
                    .filter_map(|s| s.classifier.bias.as_ref())
                    .map(|b| b.val().inner().to_device(device))
                    .collect(),
                0,
            )
            .into_data()
            .convert_dtype(dtype),
            (device, dtype),
        )
    });
    // A learned scale is replicated on every shard (the same value on each).
    let scale = shards[0].scale.as_ref().map(|s| {
        Tensor::<B, 1>::from_data(
            s.val().inner().into_data().convert_dtype(dtype),
            (device, dtype),
        )
    });
    let dim = weight.dims()[1];
    let mut head = config
        .head
        .spec
        .init_with(
            classes,
            dim,
            HeadTensors {
                weight: Some(weight),
                bias,
            },
        )
        .map_err(TrainError::from)?;
    if let Some(scale) = scale {
        head.scale = Some(Param::from_tensor(scale));
    }
    Ok(head)
}

/// With a sharded head (`[head] sharded` or `[distributed] shard_head`): a sample rate in
/// (0, 1].
fn check_sharding(config: &TrainConfig) -> Result<(), TrainError> {
    let Some(rate) = config.sharded_head() else {
        return Ok(());
    };
    if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) {
        return Err(TrainError::config(
            config.sample_rate_key(),
            format!("{rate} is not a fraction in (0, 1]"),
        ));
    }
    Ok(())
}

/// Refuses heads whose loss is not a mean of per-row terms (their gradient from parts of
/// the batch is not the gradient of the whole batch).
fn check_row_separable(config: &TrainConfig) -> Result<(), TrainError> {
    let spec = &config.head.spec;
    let coupled = match spec {
        // Sharded, the head sees the whole global batch and reduces its statistics itself.
        HeadConfig::AdaCos(a) => a.dynamic && config.sharded_head().is_none(),
        HeadConfig::DeepId2(_) => true,
        other => !other.kind().is_classifier(),
    };
    if coupled {
        return Err(TrainError::config(
            "head.kind",
            format!("`{}` couples the rows of a batch (in-batch pairs or batch statistics): data-parallel training supports the softmax-family heads (dynamic AdaCos: shard the head, or set dynamic = false)", spec.name()),
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
    /// Seconds of the steps spent in collective calls (waiting for the others included).
    collective_seconds: f64,
    /// Seconds of the steps.
    step_seconds: f64,
    model: Trainee<B>,
    shard: Option<ShardedHead<B>>,
    head_state: HeadState,
}

/// The error constructors of worker `rank`.
#[derive(Clone, Copy)]
struct Fail {
    rank: usize,
}

impl Fail {
    fn collective(self, operation: &'static str) -> impl Fn(CollectiveError) -> DistributedError {
        move |e| DistributedError::Collective {
            worker: self.rank,
            operation,
            message: format!("{e:?}"),
        }
    }

    fn train(self, source: impl Into<TrainError>) -> DistributedError {
        DistributedError::Worker {
            worker: self.rank,
            source: Box::new(source.into()),
        }
    }

    fn shard(self, source: impl Into<ShardError>) -> DistributedError {
        DistributedError::Shard {
            worker: self.rank,
            source: Box::new(source.into()),
        }
    }
}

/// What one worker starts from: its replica of the model, its shard (sharded head) and the
/// optimiser states to resume (record bytes).
struct WorkerStart<B: AutodiffBackend> {
    model: Trainee<B>,
    shard: Option<ShardStart<B>>,
    optim_backbone: Option<Vec<u8>>,
    optim_head: Option<Vec<u8>>,
}

fn worker<B: AutodiffBackend>(
    rank: usize,
    device: B::Device,
    given: WorkerStart<B>,
    plan: &Plan<'_>,
) -> Result<WorkerOut<B>, DistributedError> {
    let peer = PeerId::from(rank);
    let fail = Fail { rank };
    register::<B::InnerBackend>(
        peer,
        device.clone(),
        CollectiveConfig::default().with_num_devices(plan.world),
    )
    .map_err(fail.collective("register"))?;
    let result = run_worker::<B>(rank, peer, &device, given, plan);
    // Unregister even after an error.
    let finished =
        finish_collective::<B::InnerBackend>(peer).map_err(fail.collective("finish_collective"));
    let out = result?;
    finished?;
    Ok(out)
}

/// One step's part of the global batch on this worker, and the labels of the whole batch.
fn load_part<B: AutodiffBackend>(
    plan: &Plan<'_>,
    global: &[usize],
    rank: usize,
    epoch: u64,
    b: u64,
    device: &B::Device,
) -> Result<(ImageBatch<B>, Vec<i64>), TrainError> {
    let per = global.len() / plan.world;
    let offset = rank * per;
    let items = global[offset..offset + per]
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let sample = plan.source.get(i)?;
            // The draws item `offset + j` of the batch has in the one-device loop.
            let key = [plan.config.train.seed, 0xA06, epoch, b, (offset + j) as u64];
            Ok(augment(
                &sample,
                &plan.augment,
                &mut SplitMix64::from_parts(&key),
            ))
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    let batch = ImageBatcher.batch_channels::<B>(&items, plan.in_channels, device)?;
    let labels = global.iter().map(|&i| plan.labels[i] as i64).collect();
    Ok((batch, labels))
}

fn run_worker<B: AutodiffBackend>(
    rank: usize,
    peer: PeerId,
    device: &B::Device,
    given: WorkerStart<B>,
    plan: &Plan<'_>,
) -> Result<WorkerOut<B>, DistributedError> {
    let fail = Fail { rank };
    let config = plan.config;
    let world = plan.world;
    let WorkerStart {
        mut model,
        shard,
        optim_backbone,
        optim_head,
    } = given;
    check_identical::<B>(rank, peer, &model, device, world)?;
    let exchange = CollectiveExchange {
        rank,
        world_size: world,
    };
    let resumed = |what: &str, e: String| {
        fail.train(TrainError::Checkpoint {
            path: plan
                .run_dir
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            message: format!("{what}: {e}"),
        })
    };
    let mut opt_backbone =
        GroupOptimizer::<Backbone<B>, B>::new(&config.optim, config.optim.weight_decay());
    if let Some(bytes) = &optim_backbone {
        opt_backbone = opt_backbone
            .load_bytes(bytes, device)
            .map_err(|e| resumed("optim-backbone.bin", e))?;
    }
    let mut opt_head =
        GroupOptimizer::<Head<B>, B>::new(&config.optim, config.optim.head_weight_decay());
    if let Some(bytes) = &optim_head {
        opt_head = opt_head
            .load_bytes(bytes, device)
            .map_err(|e| resumed("optim-head.bin", e))?;
    }
    let mut opt_shard =
        GroupOptimizer::<ShardedHead<B>, B>::new(&config.optim, config.optim.head_weight_decay());
    let mut shard = match shard {
        Some((shard, Some(bytes))) => {
            opt_shard = opt_shard
                .load_bytes(&bytes, device)
                .map_err(|e| resumed(&ShardLayout::optim_file(rank), e))?;
            Some(shard)
        }
        Some((shard, None)) => Some(shard),
        None => None,
    };
    let mut head_state = plan.state.head_state.clone();
    let mut losses = Vec::with_capacity((plan.end - plan.start) as usize);
    let mut cached: Option<(u64, Vec<Vec<usize>>)> = None;
    // An error of worker 0's writing (metrics, checkpoint), told to the others at the next
    // step's status exchange.
    let mut pending: Option<TrainError> = None;
    let started = Instant::now();
    take_collective_seconds();
    // Worker 0 reports the steps.
    let mut report = StepReport::start(
        plan.progress.clone().filter(|_| rank == 0),
        rank == 0 && plan.say_steps,
        plan.start,
        plan.total,
    );
    for step in plan.start..plan.end {
        let (epoch, b) = (step / plan.batches_per_epoch, step % plan.batches_per_epoch);
        if cached.as_ref().map(|(e, _)| *e) != Some(epoch) {
            cached = Some((epoch, plan.batches(epoch).map_err(|e| fail.train(e))?));
        }
        let global = &cached.as_ref().expect("plan").1[b as usize];
        // This worker's part of the batch, then a status exchange: a worker whose part fails
        // (unreadable image, injected fault, panic) tells the others, and every worker stops
        // with an error naming it instead of waiting for it in a later all-reduce.
        let part = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(e) = pending.take() {
                return Err(e);
            }
            if plan.fault
                == Some(Fault {
                    worker: rank,
                    step,
                    panic: false,
                })
            {
                return Err(TrainError::config(
                    "distributed",
                    format!("injected fault at step {step}"),
                ));
            }
            load_part::<B>(plan, global, rank, epoch, b, device)
        }))
        .unwrap_or_else(|panic| {
            Err(TrainError::config(
                "distributed",
                format!(
                    "worker panicked while loading its batch: {}",
                    panic_message(&*panic)
                ),
            ))
        });
        let failed_workers = exchange_status::<B>(rank, peer, part.is_err(), device, world)?;
        let (batch, global_labels) = match part {
            Err(e) => return Err(fail.train(e)),
            Ok(_) if !failed_workers.is_empty() => {
                return Err(DistributedError::PeerFailed {
                    worker: rank,
                    failed: failed_workers,
                    step,
                })
            }
            Ok(part) => part,
        };
        if plan.fault
            == Some(Fault {
                worker: rank,
                step,
                panic: true,
            })
        {
            panic!("injected panic at step {step}");
        }
        let embeddings = model.backbone.forward(batch.images);
        let lr = learning_rate(&config.schedule, config.optim.lr(), step, plan.total);
        let head_lr = learning_rate(&config.schedule, config.optim.head_lr(), step, plan.total);
        let loss_value;
        let g_backbone;
        if let Some(current) = shard.take() {
            // Gather every worker's embeddings (an all-reduce of a zero-padded buffer), run
            // this worker's shard on the whole batch, then send the embeddings' gradient
            // (summed over shards) back through this worker's backbone.
            let [per, dim] = embeddings.dims();
            let n = global.len();
            let offset = rank * per;
            let dtype = <B::FloatElem as Element>::dtype();
            let padded = Tensor::<B::InnerBackend, 2>::zeros([n, dim], (device, dtype))
                .slice_assign([offset..offset + per, 0..dim], embeddings.clone().inner());
            let all = exchange
                .all_reduce(Tensor::<B, 2>::from_inner(padded), ReduceOp::Sum)
                .map_err(|e| fail.shard(e))?
                .require_grad();
            let labels = Tensor::<B, 1, Int>::from_data(
                TensorData::new(global_labels, [n]),
                (device, <B::IntElem as Element>::dtype()),
            );
            let out = current
                .forward(all.clone(), labels, &head_state, &exchange)
                .map_err(|e| fail.shard(e))?;
            if let Some(scale) = out.adacos_scale {
                head_state.adacos_scale = Some(scale);
            }
            loss_value =
                visage_io::read_back_scalar(out.loss.clone().inner()).map_err(|e| fail.train(e))?;
            check_finite(step, loss_value).map_err(|e| fail.train(e))?;
            let mut grads = out.loss.backward();
            let g_all = all.grad(&grads).ok_or_else(|| {
                fail.train(TrainError::config(
                    "distributed.shard_head",
                    "the gathered embeddings got no gradient",
                ))
            })?;
            let g_all = exchange
                .all_reduce(Tensor::<B, 2>::from_inner(g_all), ReduceOp::Sum)
                .map_err(|e| fail.shard(e))?;
            let g_mine = g_all.slice([offset..offset + per, 0..dim]).detach();
            let mut g_shard = GradientsParams::from_module(&mut grads, &current);
            // A learned scale is replicated on every shard, each holding its part of the
            // scale's gradient: summed over the workers, every replica takes the same step.
            let g_scale = current.scale.as_ref().and_then(|scale| {
                g_shard
                    .remove::<B::InnerBackend, 1>(scale.id)
                    .map(|g| (scale.id, g))
            });
            // The shard's own weights, for the global norm (summed over the shards below).
            let shard_sq = squared_grad_norm::<B, _>(&current, &g_shard);
            let mut scale_sq = 0.0;
            if let Some((id, g)) = g_scale {
                let summed = timed(|| {
                    all_reduce::<B::InnerBackend>(
                        peer,
                        g.into_primitive().tensor(),
                        ReduceOperation::Sum,
                    )
                })
                .map_err(fail.collective("all_reduce"))?;
                let summed =
                    Tensor::<B::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(summed));
                scale_sq = visage_io::read_back_scalar(summed.clone().square().sum())
                    .map_err(|e| fail.train(e))?;
                g_shard.register::<B::InnerBackend, 1>(id, summed);
            }
            let mut grads = (embeddings * g_mine).sum().backward();
            // Each worker's backbone gradient is its rows' exact part of the global loss's.
            let g = GradientsParams::from_module(&mut grads, &model.backbone);
            let mut g_bb = timed(|| g.all_reduce::<B::InnerBackend>(peer, ReduceOperation::Sum))
                .map_err(fail.collective("all_reduce"))?;
            if let Some(max) = config.train.clip_grad_norm {
                // The global norm over the backbone (the same on every worker), every shard's
                // weights (summed over the workers) and the scale (the same everywhere).
                let shards_sq =
                    all_reduce_sum_on_host::<B>(rank, peer, vec![shard_sq as f32], device)?[0];
                let norm = (squared_grad_norm::<B, _>(&model.backbone, &g_bb)
                    + shards_sq as f64
                    + scale_sq)
                    .sqrt();
                if let Some(factor) = clip_factor(norm, max) {
                    scale_grads::<B, _>(&model.backbone, &mut g_bb, factor);
                    scale_grads::<B, _>(&current, &mut g_shard, factor);
                }
            }
            g_backbone = g_bb;
            shard = Some(opt_shard.step(head_lr, current, g_shard));
        } else {
            let loss = model
                .head
                .forward(embeddings, batch.labels, &mut head_state)
                .loss;
            let local_loss = loss.clone().inner().into_primitive().tensor();
            let global_loss =
                timed(|| all_reduce::<B::InnerBackend>(peer, local_loss, ReduceOperation::Mean))
                    .map_err(fail.collective("all_reduce"))?;
            loss_value = visage_io::read_back_scalar(Tensor::<B::InnerBackend, 1>::from_primitive(
                TensorPrimitive::Float(global_loss),
            ))
            .map_err(|e| fail.train(e))?;
            check_finite(step, loss_value).map_err(|e| fail.train(e))?;
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &model.backbone);
            let mut g_bb = timed(|| g.all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean))
                .map_err(fail.collective("all_reduce"))?;
            let g = GradientsParams::from_module(&mut grads, &model.head);
            let mut g_head = timed(|| g.all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean))
                .map_err(fail.collective("all_reduce"))?;
            if let Some(max) = config.train.clip_grad_norm {
                clip_global_norm::<B, _, _>(
                    (&model.backbone, &mut g_bb),
                    (&model.head, &mut g_head),
                    max,
                );
            }
            g_backbone = g_bb;
            model.head = opt_head.step(head_lr, model.head, g_head);
        }
        model.backbone = opt_backbone.step(lr, model.backbone, g_backbone);
        head_state.advance();
        losses.push((step, loss_value));

        let done = step + 1;
        if let (0, Some(metrics)) = (rank, &plan.metrics) {
            let line = json!({"step": done, "loss": loss_value, "lr": lr, "workers": world});
            if let Err(e) = append_line(metrics, &line.to_string()) {
                pending.get_or_insert(e);
            }
        }
        if rank == 0 && (done.is_multiple_of(config.train.log_every) || done == plan.total) {
            let ips = (done - plan.start) as f64 * config.train.batch_size as f64
                / started.elapsed().as_secs_f64().max(1e-9);
            report.step(done, loss_value, lr, ips);
        }
        let every = config.train.checkpoint_every;
        let checkpoint = (every > 0 && done.is_multiple_of(every)) || done == plan.total;
        if let (true, Some(run_dir)) = (checkpoint, plan.run_dir) {
            // With a sharded head every worker leaves its shard for worker 0; the status
            // exchange after it is the barrier that makes sure all of them have.
            if let Some(current) = &shard {
                let mut deposits = plan.deposits.lock().unwrap_or_else(|p| p.into_inner());
                deposits[rank] = Some((record_bytes(current), opt_shard.to_bytes()));
                drop(deposits);
                exchange_status::<B>(rank, peer, false, device, world)?;
            }
            if rank == 0 {
                let state = CheckpointState {
                    step: done,
                    head_state: head_state.clone(),
                    train_seconds: plan.state.train_seconds + started.elapsed().as_secs_f64(),
                    ..plan.state.clone()
                };
                let shards = plan.layout.as_ref().map(|_| {
                    let mut deposits = plan.deposits.lock().unwrap_or_else(|p| p.into_inner());
                    deposits
                        .iter_mut()
                        .map(|d| d.take().unwrap_or_default())
                        .collect()
                });
                let files =
                    checkpoint_files(&model, opt_backbone.to_bytes(), opt_head.to_bytes(), shards);
                match write_checkpoint(run_dir, &state, &files) {
                    Ok(_) => prune(run_dir, config.train.keep_checkpoints, None),
                    Err(e) => {
                        pending.get_or_insert(e);
                    }
                }
            }
        }
    }
    report.finish();
    if let Some(e) = pending {
        return Err(fail.train(e));
    }
    Ok(WorkerOut {
        losses,
        collective_seconds: take_collective_seconds(),
        step_seconds: started.elapsed().as_secs_f64(),
        model,
        shard,
        head_state,
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Every worker says whether its part of this step failed (an all-reduce of a `[W]` buffer,
/// 1 in its own slot if so); returns the failed ranks.
fn exchange_status<B: AutodiffBackend>(
    rank: usize,
    peer: PeerId,
    failed: bool,
    device: &B::Device,
    world: usize,
) -> Result<Vec<usize>, DistributedError> {
    let mut flags = vec![0.0f32; world];
    flags[rank] = if failed { 1.0 } else { 0.0 };
    let all = all_reduce_sum_on_host::<B>(rank, peer, flags, device)?;
    Ok(all
        .iter()
        .enumerate()
        .filter(|(_, &f)| f != 0.0)
        .map(|(r, _)| r)
        .collect())
}

/// The element-wise sum over the workers of a small host buffer of the same length on every
/// worker (an all-reduce on the device), read back to the host.
fn all_reduce_sum_on_host<B: AutodiffBackend>(
    rank: usize,
    peer: PeerId,
    values: Vec<f32>,
    device: &B::Device,
) -> Result<Vec<f32>, DistributedError> {
    let len = values.len();
    let dtype = <B::FloatElem as Element>::dtype();
    let t = Tensor::<B::InnerBackend, 1>::from_data(
        TensorData::new(values, [len]).convert_dtype(dtype),
        (device, dtype),
    );
    let all = timed(|| {
        all_reduce::<B::InnerBackend>(peer, t.into_primitive().tensor(), ReduceOperation::Sum)
    })
    .map_err(Fail { rank }.collective("all_reduce"))?;
    let (sum, _) = visage_io::read_back::<f32, B::InnerBackend, 1>(Tensor::from_primitive(
        TensorPrimitive::Float(all),
    ))
    .map_err(|e| Fail { rank }.train(e))?;
    Ok(sum)
}

fn check_finite(step: u64, value: f64) -> Result<(), TrainError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFinite { step, value })
    }
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
fn check_identical<B: AutodiffBackend>(
    rank: usize,
    peer: PeerId,
    model: &Trainee<B>,
    device: &B::Device,
    world: usize,
) -> Result<(), DistributedError> {
    let mut fp = Fingerprint([0.0; 2]);
    model.visit(&mut fp);
    let local = [fp.0[0] as f32, fp.0[1] as f32];
    let mut buffer = vec![0.0f32; world * 2];
    buffer[rank * 2..rank * 2 + 2].copy_from_slice(&local);
    let all = all_reduce_sum_on_host::<B>(rank, peer, buffer, device)?;
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
