//! The training loop, generic over `B: AutodiffBackend`: dataset -> batch -> backbone ->
//! head (+ auxiliary losses) -> optimiser, with per-step schedules, global gradient clipping,
//! held-out verification, checkpoints and exact resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde_json::json;
use visage_backbones::Backbone;
use visage_data::loader::load_augmented;
use visage_data::sampler::{pk_batches, shuffled_batches};
use visage_data::{AugmentConfig, ImageBatcher, SampleSource, VerificationSet};
use visage_eval::{verify_interleaved, VerificationReport};
use visage_heads::loss::{CenterLoss, CenterLossConfig, Contrastive, ContrastiveConfig};
use visage_heads::{Head, HeadKind, HeadState};

use crate::backbone_record::load_backbone;
use crate::checkpoint::{checkpoint_dir, newest_intact, prune, write_checkpoint, CheckpointState};
use crate::config::{CenterAux, SamplerKind, TrainConfig};
use crate::data::{open_eval, open_training};
use crate::durable::{append_line, write_file};
use crate::extract::embed_samples;
use crate::optim::{clip_global_norm, GroupOptimizer};
use crate::run_dir::{open_run_dir, truncate_metrics};
use crate::schedule::learning_rate;
use crate::step_report::StepReport;
use crate::TrainError;

/// The trained modules.
#[derive(Module, Debug)]
pub struct Trainee<B: burn::tensor::backend::Backend> {
    /// The backbone.
    pub backbone: Backbone<B>,
    /// The head.
    pub head: Head<B>,
    /// Auxiliary center loss (its centres move by the alpha rule, not the optimiser).
    pub center: Option<CenterLoss<B>>,
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest intact checkpoint in the run directory.
    pub resume: bool,
    /// Start a new run in a run directory that holds files: remove the files a run writes
    /// there first (see [`crate::run_dir::claim_run_dir`]). Without it (and without `resume`)
    /// a folder that is not empty is an error.
    pub overwrite: bool,
    /// Stop (as if killed) after this many steps, without the final evaluation and checkpoint.
    pub stop_after: Option<u64>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Start from this model record (a checkpoint's `model.bin`, or one written by
    /// [`save_model`]) instead of the seeded random initialisation: the same initial weights
    /// on every backend (`visage parity`), or fine-tuning. Ignored with `resume`.
    pub initial_model: Option<PathBuf>,
    /// Where the loop reports its steps (stage `"train"`, one step per optimiser step, a
    /// status line at every `log_every`): the `visage` command draws a bar with it. Without
    /// one (and without `quiet`) the status lines go to stderr as `step i/n  loss ...`.
    pub progress: Option<visage_io::SharedProgress>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// `(step, loss)` of every step run in this invocation.
    pub losses: Vec<(u64, f64)>,
    /// Held-out verification of the untrained model.
    pub baseline: Option<VerificationReport>,
    /// Held-out verification at the end.
    pub report: Option<VerificationReport>,
    /// Wall time of the training steps, seconds.
    pub train_seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// Whether the run stopped early (`stop_after`).
    pub interrupted: bool,
    /// Whether a resumed run had finished already (its report written): nothing was done.
    pub already_finished: bool,
    /// Checkpoints that failed verification on resume and were skipped, with the reason.
    pub skipped_checkpoints: Vec<String>,
}

/// A stable fingerprint of everything that determines the sequence of steps.
pub fn config_fingerprint(config: &TrainConfig) -> String {
    let mut c = config.clone();
    c.output = Default::default();
    c.train.eval_every = 0;
    c.train.checkpoint_every = 0;
    c.train.keep_checkpoints = 0;
    c.train.log_every = 1;
    // The number of workers does not change the sequence of steps (the global batch is
    // `batch_size` on any number): a run may resume on another number of devices.
    if let Some(d) = c.distributed.as_mut() {
        d.devices = 1;
    }
    if c.distributed == Some(Default::default()) {
        c.distributed = None;
    }
    let text = serde_json::to_string(&c).expect("config serialises");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn plan(
    config: &TrainConfig,
    source: &dyn SampleSource,
    labels: &[usize],
    epoch: u64,
) -> Result<Vec<Vec<usize>>, TrainError> {
    let t = &config.train;
    Ok(match t.sampler {
        SamplerKind::Shuffled => shuffled_batches(source.len(), t.batch_size, true, t.seed, epoch)?,
        SamplerKind::Pk => {
            let k = t.k.unwrap_or(2);
            pk_batches(labels, t.batch_size / k, k, t.seed, epoch)?
        }
    })
}

struct Evaluator {
    set: VerificationSet,
    flip: bool,
    in_channels: usize,
}

impl Evaluator {
    fn run<B: AutodiffBackend>(
        &self,
        backbone: &Backbone<B>,
        device: &B::Device,
    ) -> Result<VerificationReport, TrainError> {
        let inference = backbone.valid();
        let e = embed_samples::<B::InnerBackend>(
            &inference,
            &self.set.samples,
            self.in_channels,
            self.flip,
            64,
            device,
        )?;
        Ok(verify_interleaved(&e, &self.set.issame)?.report)
    }
}

fn append_metrics(path: &Path, value: serde_json::Value) -> Result<(), TrainError> {
    append_line(path, &value.to_string())
}

/// `module` as the bytes of a Burn `.bin` record (full precision): what `BinFileRecorder`
/// writes and reads.
pub(crate) fn record_bytes<B: Backend, M: Module<B>>(module: &M) -> Vec<u8> {
    Recorder::<B>::record(
        &BinBytesRecorder::<FullPrecisionSettings>::default(),
        module.clone().into_record(),
        (),
    )
    .expect("a module record encodes")
}

fn tar(report: &VerificationReport, key: &str) -> Option<f64> {
    report.tar_at_far.get(key).copied().flatten()
}

fn center_config(c: CenterAux, classes: usize, dim: usize) -> CenterLossConfig {
    CenterLossConfig::new(classes, dim).with_alpha(c.alpha.unwrap_or(0.5))
}

/// Draws every lazily initialised parameter of a module now.
struct Materialise;

impl<B: Backend> ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// The model a run of `config` on `classes` classes starts from: the backbone, head and
/// auxiliary centres, randomly initialised after seeding `B` with `train.seed` (what
/// [`train`] does). Every parameter is drawn here, in module order: Burn's parameters are
/// lazy, and a clone of an undrawn one draws on its own later, from wherever the global RNG
/// has got to, so an undrawn model could be saved with other values than it later computes
/// with. Random draws differ between backends for one seed: to give several backends the
/// same weights, build the model once, [`save_model`] it and pass the file as
/// [`TrainOptions::initial_model`].
pub fn init_model<B: Backend>(
    config: &TrainConfig,
    classes: usize,
    device: &B::Device,
) -> Result<Trainee<B>, TrainError> {
    let dim = config.backbone.embedding_dim()?;
    let head_config = &config.head.spec;
    head_config.validate(classes, dim)?;
    B::seed(device, config.train.seed);
    let model = Trainee {
        backbone: config.backbone.init(device)?,
        head: head_config.init(classes, dim, device)?,
        center: match config.head.center {
            Some(c) => Some(center_config(c, classes, dim).init(device)?),
            None => None,
        },
    };
    model.visit(&mut Materialise);
    Ok(model)
}

/// Writes `model` as a Burn record (full precision) at `path` (`.bin` added if missing),
/// through a temporary file renamed into place.
pub fn save_model<B: Backend>(model: &Trainee<B>, path: &Path) -> Result<PathBuf, TrainError> {
    let path = path.with_extension("bin");
    write_file(&path, &record_bytes(model))?;
    Ok(path)
}

/// Loads a model record written by [`save_model`] (or a checkpoint's `model.bin`) into
/// `model`, which must have the same structure (backbone, head and centres of one config).
pub fn load_model<B: Backend>(
    model: Trainee<B>,
    path: &Path,
    device: &B::Device,
) -> Result<Trainee<B>, TrainError> {
    if !path.exists() {
        return Err(TrainError::Checkpoint {
            path: path.display().to_string(),
            message: "no such model record".into(),
        });
    }
    let record = crate::record_file::read_record::<B, _>(path, device).map_err(|e| match e {
        TrainError::Checkpoint { path, message } => TrainError::Checkpoint {
            path,
            message: format!("not a model record of this config: {message}"),
        },
        other => other,
    })?;
    Ok(model.load_record(record))
}

/// Most class-weight elements (classes x embedding size) a run may ask for: 2^32 f32 values,
/// 16 GiB, before the optimiser's copies. A class count read from the data's metadata is
/// checked against it before the head is built (an allocation that cannot succeed aborts the
/// process instead of failing).
pub const MAX_CLASS_WEIGHTS: u64 = 1 << 32;

/// `classes` is the number of weight rows (classes times sub-centres).
fn check_class_weights(classes: usize, dim: usize) -> Result<(), TrainError> {
    match (classes as u64).checked_mul(dim as u64) {
        Some(n) if n <= MAX_CLASS_WEIGHTS => Ok(()),
        _ => Err(TrainError::config(
            "data",
            format!(
                "{classes} classes x {dim}-d embeddings is more than the {MAX_CLASS_WEIGHTS} class-weight values one device can hold here (check the class count of the data, e.g. its property file)"
            ),
        )),
    }
}

/// Trains `config` in `run_dir` on backend `B`.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    run_dir: &Path,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary, TrainError> {
    config.validate_static()?;
    let say = |s: String| {
        if !options.quiet {
            eprintln!("{s}");
        }
    };
    // The run directory first: refuse a folder that holds another run before any work.
    let resuming = open_run_dir(run_dir, config, options.resume, options.overwrite, &say)?;
    let fingerprint = config_fingerprint(config);

    // Data.
    let source = open_training(&config.data)?;
    let classes = source.num_classes();
    let labels: Vec<usize> = (0..source.len())
        .map(|i| source.label(i))
        .collect::<Result<_, _>>()?;
    let [h, w] = config.backbone.input_size()?;
    let in_channels = config.backbone.in_channels()?;
    let first = source.get(0)?;
    if first.height != h || first.width != w {
        return Err(TrainError::config(
            "backbone.input_size",
            format!(
                "[{h}, {w}] but the training images are {}x{} (set data.image_size or input_size)",
                first.height, first.width
            ),
        ));
    }
    let (rows, dim) = config.class_weight_rows(classes)?;
    check_class_weights(rows, dim)?;
    config.head.spec.validate(classes, dim)?;
    if config.head.spec.kind() == HeadKind::Center {
        return Err(TrainError::config(
            "head.kind",
            "center loss alone collapses: use it as [head.center] beside a classification head",
        ));
    }
    let batches_per_epoch = plan(config, source.as_ref(), &labels, 0)?.len() as u64;
    if batches_per_epoch == 0 {
        return Err(TrainError::config(
            "train.batch_size",
            format!("{} is larger than what one epoch of the data can fill ({} images, {classes} classes)", config.train.batch_size, source.len()),
        ));
    }
    let total = config
        .train
        .steps
        .unwrap_or_else(|| config.train.epochs.unwrap_or(1) * batches_per_epoch);
    let augment = AugmentConfig {
        flip_p: config.data.flip.unwrap_or(0.5),
        jitter: config.data.jitter.unwrap_or(0.0),
        grey_p: config.data.grey.unwrap_or(0.0),
        ..AugmentConfig::default()
    };
    let evaluator = match &config.eval {
        Some(e) => {
            let (set, about) = open_eval(e, &config.data)?;
            if let Some(s) = set.samples.first() {
                if s.height != h || s.width != w {
                    return Err(TrainError::config(
                        "eval",
                        format!(
                            "its images are {}x{}; the backbone takes [{h}, {w}]",
                            s.height, s.width
                        ),
                    ));
                }
            }
            if !resuming {
                write_file(
                    &run_dir.join("eval-set.json"),
                    serde_json::to_string_pretty(&about)
                        .unwrap_or_default()
                        .as_bytes(),
                )?;
            }
            Some(Evaluator {
                set,
                flip: e.flip.unwrap_or(true),
                in_channels,
            })
        }
        None => None,
    };

    // Model and optimisers.
    let center_aux = config
        .head
        .center
        .map(|c| (c.weight, center_config(c, classes, dim)));
    let mut model = init_model::<B>(config, classes, device)?;
    if let (false, Some(path)) = (resuming, &options.initial_model) {
        model = load_model(model, path, device)?;
    } else if let (false, Some(path)) = (resuming, &config.train.init_backbone) {
        model.backbone = load_backbone(model.backbone, path, device)?;
    }
    let contrastive_aux: Option<(f64, Contrastive)> = match config.head.contrastive {
        Some(c) => Some((
            c.weight,
            ContrastiveConfig::new()
                .with_margin(c.margin.unwrap_or(1.0))
                .with_normalize(c.normalize.unwrap_or(false))
                .init()?,
        )),
        None => None,
    };
    let mut opt_backbone =
        GroupOptimizer::<Backbone<B>, B>::new(&config.optim, config.optim.weight_decay());
    let mut opt_head =
        GroupOptimizer::<Head<B>, B>::new(&config.optim, config.optim.head_weight_decay());
    let metrics = run_dir.join("metrics.jsonl");

    // Fresh start or resume.
    let mut state = CheckpointState {
        step: 0,
        head_state: HeadState::default(),
        config_fingerprint: fingerprint.clone(),
        baseline_accuracy: None,
        best: None,
        train_seconds: 0.0,
        shards: None,
    };
    let mut baseline = None;
    let mut skipped_checkpoints = Vec::new();
    if resuming {
        let found = newest_intact(run_dir, &fingerprint, Some(total), |e| {
            // Always said, quiet or not: the run goes on from an older checkpoint.
            eprintln!("skipping {e}");
            skipped_checkpoints.push(e.to_string());
        })?;
        let dir = found.dir;
        state = found.state;
        if state.shards.is_some() {
            return Err(TrainError::Checkpoint {
                path: dir.display().to_string(),
                message: "written by a data-parallel run with a sharded head: resume it with \
                          `visage train --resume RUN --devices N` (distributed::train_on_devices)"
                    .into(),
            });
        }
        if state.step == total && run_dir.join("report.json").is_file() {
            say(format!(
                "{} finished already ({} steps): nothing to do",
                run_dir.display(),
                state.step
            ));
            return Ok(TrainSummary {
                run_dir: run_dir.to_path_buf(),
                losses: Vec::new(),
                baseline: None,
                report: None,
                train_seconds: state.train_seconds,
                images_per_second: 0.0,
                interrupted: false,
                already_finished: true,
                skipped_checkpoints,
            });
        }
        let dropped = truncate_metrics(&metrics, state.step)?;
        if dropped > 0 {
            say(format!(
                "metrics.jsonl: dropped {dropped} line(s) past step {}",
                state.step
            ));
        }
        model = load_model(model, &dir.join("model.bin"), device)?;
        opt_backbone = opt_backbone.load(&dir.join("optim-backbone"), device)?;
        opt_head = opt_head.load(&dir.join("optim-head"), device)?;
        say(format!(
            "resuming {} at step {} of {total}",
            run_dir.display(),
            state.step
        ));
    } else {
        if let Some(ev) = &evaluator {
            let report = ev.run(&model.backbone, device)?;
            say(format!(
                "untrained {}: held-out accuracy {:.2}% +- {:.2}, TAR@FAR=1e-3 {}",
                config.backbone.kind,
                100.0 * report.accuracy_mean,
                100.0 * report.accuracy_std,
                tar(&report, "1e-3").map_or("undefined".into(), |v| format!("{:.2}%", 100.0 * v))
            ));
            append_metrics(
                &metrics,
                json!({"step": 0, "eval": report, "untrained": true}),
            )?;
            state.baseline_accuracy = Some(report.accuracy_mean);
            baseline = Some(report);
        }
    }

    let save = |model: &Trainee<B>,
                ob: &GroupOptimizer<Backbone<B>, B>,
                oh: &GroupOptimizer<Head<B>, B>,
                st: &CheckpointState| {
        let (m, b, h) = (record_bytes(model), ob.to_bytes(), oh.to_bytes());
        let files: [(&str, &[u8]); 3] = [
            ("model.bin", &m),
            ("optim-backbone.bin", &b),
            ("optim-head.bin", &h),
        ];
        let dir = write_checkpoint(run_dir, st, &files)?;
        prune(run_dir, config.train.keep_checkpoints, st.best.map(|b| b.0));
        Ok::<PathBuf, TrainError>(dir)
    };

    // The loop.
    let mut report = StepReport::start(options.progress.clone(), !options.quiet, state.step, total);
    let mut losses = Vec::new();
    let started = Instant::now();
    let start_step = state.step;
    let seconds_before = state.train_seconds;
    let mut cached_plan: Option<(u64, Vec<Vec<usize>>)> = None;
    let mut interrupted = false;
    while state.step < total {
        let step = state.step;
        let (epoch, b) = (
            step / batches_per_epoch,
            (step % batches_per_epoch) as usize,
        );
        if cached_plan.as_ref().map(|(e, _)| *e) != Some(epoch) {
            cached_plan = Some((epoch, plan(config, source.as_ref(), &labels, epoch)?));
        }
        let indices = &cached_plan.as_ref().expect("plan").1[b];
        let items = load_augmented(
            source.as_ref(),
            indices,
            &augment,
            config.train.seed,
            epoch,
            b as u64,
        )?;
        // one channel rule for training, evaluation and embedding (visage_data::channels)
        let batch = ImageBatcher.batch_channels::<B>(&items, in_channels, device)?;
        let images = batch.images;

        let embeddings: Tensor<B, 2> = model.backbone.forward(images);
        let out = model.head.forward(
            embeddings.clone(),
            batch.labels.clone(),
            &mut state.head_state,
        );
        let mut loss = out.loss;
        if let (Some((weight, _)), Some(center)) = (&center_aux, &model.center) {
            loss = loss
                + center
                    .loss(embeddings.clone(), batch.labels.clone())
                    .mul_scalar(*weight);
        }
        if let Some((weight, c)) = &contrastive_aux {
            loss = loss
                + c.loss(embeddings.clone(), batch.labels.clone())
                    .mul_scalar(*weight);
        }
        let loss_value: f64 = visage_io::read_back_scalar(loss.clone())?;
        if !loss_value.is_finite() {
            return Err(TrainError::NonFinite {
                step,
                value: loss_value,
            });
        }
        let mut grads = loss.backward();
        let mut g_backbone = GradientsParams::from_module(&mut grads, &model.backbone);
        let mut g_head = GradientsParams::from_module(&mut grads, &model.head);
        let grad_norm = config.train.clip_grad_norm.map(|max| {
            clip_global_norm::<B, _, _>(
                (&model.backbone, &mut g_backbone),
                (&model.head, &mut g_head),
                max,
            )
        });
        let lr = learning_rate(&config.schedule, config.optim.lr(), step, total);
        let head_lr = learning_rate(&config.schedule, config.optim.head_lr(), step, total);
        let Trainee {
            backbone,
            head,
            center,
        } = model;
        let features = embeddings.detach();
        let backbone = opt_backbone.step(lr, backbone, g_backbone);
        let head = opt_head
            .step(head_lr, head, g_head)
            .after_step(features.clone(), batch.labels.clone());
        let center = center.map(|c| c.update(features, batch.labels));
        model = Trainee {
            backbone,
            head,
            center,
        };
        state.head_state.advance();
        state.step += 1;
        state.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        losses.push((step, loss_value));

        let done = state.step;
        if done.is_multiple_of(config.train.log_every) || done == total {
            let secs = started.elapsed().as_secs_f64();
            let ips = (done - start_step) as f64 * config.train.batch_size as f64 / secs.max(1e-9);
            append_metrics(
                &metrics,
                json!({"step": done, "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                "images_per_s": ips, "elapsed_s": secs, "adacos_scale": state.head_state.adacos_scale}),
            )?;
            report.step(done, loss_value, lr, ips);
        }
        let eval_now = config.train.eval_every > 0
            && done.is_multiple_of(config.train.eval_every)
            && done < total;
        if let (true, Some(ev)) = (eval_now, &evaluator) {
            let report = ev.run(&model.backbone, device)?;
            say(format!(
                "step {done}: held-out accuracy {:.2}%",
                100.0 * report.accuracy_mean
            ));
            if state.best.is_none_or(|(_, a)| report.accuracy_mean > a) {
                state.best = Some((done, report.accuracy_mean));
            }
            append_metrics(&metrics, json!({"step": done, "eval": report}))?;
        }
        if config.train.checkpoint_every > 0
            && done.is_multiple_of(config.train.checkpoint_every)
            && done < total
        {
            save(&model, &opt_backbone, &opt_head, &state)?;
        }
        if options.stop_after == Some(done) && done < total {
            interrupted = true;
            break;
        }
    }
    report.finish();
    let train_seconds = started.elapsed().as_secs_f64();
    let images_per_second =
        (state.step - start_step) as f64 * config.train.batch_size as f64 / train_seconds.max(1e-9);
    if interrupted {
        return Ok(TrainSummary {
            run_dir: run_dir.to_path_buf(),
            losses,
            baseline,
            report: None,
            train_seconds,
            images_per_second,
            interrupted,
            already_finished: false,
            skipped_checkpoints,
        });
    }

    // The end: evaluate, checkpoint, export the backbone, write the report.
    let report = match &evaluator {
        Some(ev) => {
            let r = ev.run(&model.backbone, device)?;
            append_metrics(
                &metrics,
                json!({"step": state.step, "eval": r, "final": true}),
            )?;
            if state.best.is_none_or(|(_, a)| r.accuracy_mean > a) {
                state.best = Some((state.step, r.accuracy_mean));
            }
            Some(r)
        }
        None => None,
    };
    // A run resumed from its final checkpoint (killed before its report) has that checkpoint
    // intact already (it was just verified): it is not written again.
    if !(resuming && start_step == total && checkpoint_dir(run_dir, total).is_dir()) {
        save(&model, &opt_backbone, &opt_head, &state)?;
    }
    write_file(
        &run_dir.join("backbone.bin"),
        &record_bytes(&model.backbone),
    )?;
    visage_backbones::save_safetensors(&model.backbone, run_dir.join("backbone.safetensors"))?;
    let final_json = json!({
        "config": config,
        "steps": state.step,
        "train_seconds": state.train_seconds,
        "images_per_second": state.step as f64 * config.train.batch_size as f64
            / state.train_seconds.max(1e-9),
        "untrained": baseline,
        "untrained_accuracy": state.baseline_accuracy,
        "verification": report,
        "best": state.best,
    });
    write_file(
        &run_dir.join("report.json"),
        serde_json::to_string_pretty(&final_json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(TrainSummary {
        run_dir: run_dir.to_path_buf(),
        losses,
        baseline,
        report,
        train_seconds,
        images_per_second,
        interrupted,
        already_finished: false,
        skipped_checkpoints,
    })
}
