//! Backend dispatch and the backend parity check of visage, as a library.
//!
//! - [`backend`]: a computation written once, generic over `B: AutodiffBackend`
//!   ([`BackendJob`]), run on a backend chosen at run time ([`dispatch`], [`BackendKind`]).
//! - [`check`]: one training config, identical initial weights, every backend asked for,
//!   compared number by number against the first backend listed:
//!
//! 1. **Heads** — the config's head (with `all_heads`, every head kind and the main options
//!    too) on fixed host inputs: loss, logits, gradients of the embeddings and class weights,
//!    updated centres, AdaCos's scale.
//! 2. **Backbone** — the config's backbone from the initial model on fixed images: embeddings
//!    in training and inference mode, the input gradient and every parameter gradient.
//! 3. **Training** — `steps` steps of the training loop itself from the initial model: the
//!    loss at every step and every tensor of the model after the last step.
//!
//! The initial model is drawn once, on the reference backend, and written as a Burn record
//! that every backend loads (random draws differ between backends for one seed). Backends
//! that are not compiled in, or that cannot run here (no adapter, no driver), are reported as
//! skipped with the reason. Tolerances: [`tolerance`].
//!
//! A backend's failure is caught without touching process-global state: each job runs under
//! [`std::panic::catch_unwind`] alone (the panic hook is left as the caller set it, so the
//! default hook still prints a backend's panic to stderr), and the panic's own message goes
//! into the report.
//!
//! ```no_run
//! use visage_parity::{check, BackendKind, ParityOptions};
//!
//! let mut options = ParityOptions::new("configs/synth-arcface.toml");
//! options.backends = vec![BackendKind::Ndarray, BackendKind::Flex];
//! options.steps = 2;
//! let report = check(&options, &mut |event| eprintln!("{event}"))?;
//! report.write(std::path::Path::new("runs/parity/parity.json"))?;
//! print!("{}", report.table());
//! let failures = report.failures(&options.require);
//! assert!(failures.is_empty(), "{failures:?}");
//! # Ok::<(), visage_parity::ParityError>(())
//! ```

pub mod backend;
pub mod diff;
pub mod head;
pub mod jobs;
pub mod report;
pub mod tolerance;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Instant;

use visage_data::rng::SplitMix64;
use visage_heads::heads::{AdaCosConfig, ArcFaceConfig, SoftmaxConfig, SphereFaceConfig};
use visage_heads::loss::{TripletConfig, TripletMining};
use visage_heads::{HeadConfig, HeadKind, HeadState};
use visage_io::HostTensor;
use visage_train::data::open_training;
use visage_train::TrainConfig;

pub use backend::{dispatch, BackendJob, BackendKind, DispatchError};
use diff::Diff;
pub use head::{HeadInputError, HeadJob};
use jobs::{BackboneJob, InitJob, ProbeJob, Tensors, TrainStepsJob};
pub use report::{BackendStatus, ParityReport, Row, Timing};
use tolerance::{tolerance, Quantity};

/// Why the parity check could not run (a breach is not an error: it is in the report,
/// [`ParityReport::failures`]).
#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    /// The config cannot be read or validated, or its training data cannot be opened.
    #[error(transparent)]
    Config(#[from] visage_train::TrainError),
    /// The config's backbone is not valid.
    #[error(transparent)]
    Backbone(#[from] visage_backbones::BackboneError),
    /// The working folder or the report could not be written.
    #[error(transparent)]
    File(#[from] visage_io::IoError),
    /// The report could not be serialised.
    #[error("{}: cannot write the report: {reason}", path.display())]
    Report {
        /// The report's path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No backend asked for can run here.
    #[error("no backend of {0:?} can run here")]
    NoBackend(Vec<BackendKind>),
    /// The initial model could not be drawn on the reference backend.
    #[error("drawing the initial model on {backend}: {reason}")]
    InitialModel {
        /// The reference backend.
        backend: BackendKind,
        /// Its error.
        reason: String,
    },
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct ParityOptions {
    /// The training config.
    pub config_path: PathBuf,
    /// Backends, the reference first.
    pub backends: Vec<BackendKind>,
    /// Training steps to compare.
    pub steps: u64,
    /// Overrides the config's batch size (also the heads' and the backbone's batch).
    pub batch_size: Option<usize>,
    /// Every head kind, not just the config's.
    pub all_heads: bool,
    /// Skip the training steps (heads and backbone only).
    pub no_train: bool,
    /// Backends that must run here: skipping one of them is a failure.
    pub require: Vec<BackendKind>,
    /// Working directory (initial model, training runs).
    pub out: PathBuf,
    /// Seed of the host inputs.
    pub seed: u64,
    /// Multiplies every tolerance (1 in use; 0 in a test makes any difference a breach).
    pub tolerance_scale: f64,
}

impl ParityOptions {
    /// The defaults of `visage parity` for the config at `config_path`: every backend
    /// (ndarray as the reference), 5 training steps, the config's batch size, its head only,
    /// nothing required, working folder `runs/parity`, seed 0, tolerances as documented.
    pub fn new(config_path: impl Into<PathBuf>) -> Self {
        ParityOptions {
            config_path: config_path.into(),
            backends: BackendKind::ALL.to_vec(),
            steps: 5,
            batch_size: None,
            all_heads: false,
            no_train: false,
            require: Vec::new(),
            out: PathBuf::from("runs/parity"),
            seed: 0,
            tolerance_scale: 1.0,
        }
    }
}

/// Progress of [`check`], for the caller to show (its `Display` is one log line).
#[derive(Debug, Clone)]
pub enum ParityEvent {
    /// Whether a backend takes part.
    Backend(BackendStatus),
    /// A case starts on a backend.
    CaseStarted {
        /// The case (`head arcface`, `backbone`, `train`).
        case: String,
        /// The backend.
        backend: BackendKind,
    },
    /// A case ended on a backend.
    CaseFinished {
        /// The case.
        case: String,
        /// The backend.
        backend: BackendKind,
        /// Wall time.
        seconds: f64,
        /// Its error, if it failed.
        error: Option<String>,
    },
}

impl std::fmt::Display for ParityEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParityEvent::Backend(s) => write!(f, "parity: {}: {}", s.backend, s.describe()),
            ParityEvent::CaseStarted { case, backend } => {
                write!(f, "parity: {case} on {backend} ...")
            }
            ParityEvent::CaseFinished {
                case,
                backend,
                seconds,
                error: None,
            } => write!(f, "parity: {case} on {backend}: {seconds:.1} s"),
            ParityEvent::CaseFinished {
                case,
                backend,
                seconds,
                error: Some(e),
            } => write!(
                f,
                "parity: {case} on {backend} failed after {seconds:.1} s: {e}"
            ),
        }
    }
}

/// The annealing iteration the heads are compared at: L-Softmax's lambda is about 0.4 and
/// SphereFace's at its floor of 5, so the margins weigh in.
const HEAD_ITERATION: u64 = 10_000;

/// Runs `f`, turning an error or a panic (a backend without an adapter or driver, a kernel a
/// driver cannot run) into a message. `catch_unwind` alone: the panic hook is not swapped.
fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!(
                "panicked: {}",
                text.unwrap_or_else(|| "(no message)".into())
                    .replace('\n', " ")
            ))
        }
    }
}

/// Runs one job on every usable backend, timing each.
fn on_each<J: BackendJob + Clone>(
    case: &str,
    backends: &[BackendKind],
    job: &J,
    timings: &mut Vec<Timing>,
    on_event: &mut dyn FnMut(&ParityEvent),
) -> Vec<(BackendKind, Result<J::Output, String>)> {
    backends
        .iter()
        .map(|&b| {
            on_event(&ParityEvent::CaseStarted {
                case: case.to_string(),
                backend: b,
            });
            let start = Instant::now();
            let out = guarded(|| dispatch(b, job.clone()));
            let seconds = start.elapsed().as_secs_f64();
            on_event(&ParityEvent::CaseFinished {
                case: case.to_string(),
                backend: b,
                seconds,
                error: out.as_ref().err().cloned(),
            });
            timings.push(Timing {
                case: case.to_string(),
                backend: b,
                seconds,
                ok: out.is_ok(),
            });
            (b, out)
        })
        .collect()
}

/// The quantity of a tensor name, and the row it is reported in.
fn classify(case: &str, name: &str) -> (Quantity, String) {
    match case {
        c if c.starts_with("head") => {
            let q = match name {
                "loss" | "logits" | "scale" => Quantity::HeadOutput,
                _ => Quantity::HeadGradient,
            };
            (q, name.to_string())
        }
        "backbone" => match name {
            "forward" => (Quantity::BackboneOutput, "forward (training mode)".into()),
            "forward_inference" => (Quantity::BackboneOutput, "forward (inference mode)".into()),
            "grad_input" => (Quantity::BackboneGradient, "input gradient".into()),
            _ => (Quantity::BackboneGradient, "parameter gradients".into()),
        },
        _ => match name {
            "loss" => (Quantity::TrainLoss, "loss at every step".into()),
            _ => (Quantity::TrainWeights, "weights after the last step".into()),
        },
    }
}

/// One row in the making: the worst tensor of a quantity.
struct Group {
    row: String,
    quantity: Quantity,
    worst: Option<(Diff, String)>,
    tensors: usize,
    error: Option<String>,
}

/// Compares every other backend's tensors with the reference's, one row per quantity.
fn compare(
    case: &str,
    results: &[(BackendKind, Result<Tensors, String>)],
    tolerance_scale: f64,
    rows: &mut Vec<Row>,
) {
    let Some((reference, first)) = results.first() else {
        return;
    };
    let expected = match first {
        Ok(t) => t,
        Err(e) => {
            for (other, _) in &results[1..] {
                let why = format!("the reference {reference} failed: {e}");
                rows.push(Row::error(case, "all", *reference, *other, why));
            }
            return;
        }
    };
    for (other, got) in &results[1..] {
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                rows.push(Row::error(case, "all", *reference, *other, e.clone()));
                continue;
            }
        };
        let mut groups: Vec<Group> = Vec::new();
        for (name, HostTensor::F32(want, want_shape)) in expected {
            let (quantity, row) = classify(case, name);
            let outcome = match got.get(name) {
                None => Err(format!("`{name}` is missing")),
                Some(HostTensor::F32(have, have_shape)) => {
                    Diff::between(want, want_shape, have, have_shape)
                        .map_err(|e| format!("`{name}`: {e}"))
                }
            };
            let index = match groups.iter().position(|g| g.row == row) {
                Some(i) => i,
                None => {
                    groups.push(Group {
                        row,
                        quantity,
                        worst: None,
                        tensors: 0,
                        error: None,
                    });
                    groups.len() - 1
                }
            };
            let g = &mut groups[index];
            g.tensors += 1;
            match outcome {
                Err(e) => {
                    g.error.get_or_insert(e);
                }
                Ok(d) => {
                    if g.worst.as_ref().is_none_or(|(w, _)| d.is_worse_than(w)) {
                        g.worst = Some((d, name.clone()));
                    }
                }
            }
        }
        for g in groups {
            let mut tol = tolerance(*reference, *other, g.quantity);
            tol.max_rel *= tolerance_scale;
            rows.push(match (g.error, g.worst) {
                (Some(e), _) => Row::error(case, &g.row, *reference, *other, e),
                (None, Some((d, worst))) => Row::compared(
                    case, &g.row, g.quantity, *reference, *other, d, worst, g.tensors, tol,
                ),
                (None, None) => Row::error(case, &g.row, *reference, *other, "no tensors".into()),
            });
        }
    }
}

/// The head specs to compare: the config's, then (with `all`) every kind at its defaults
/// and the options that change the computation.
fn head_specs(config: &HeadConfig, all: bool) -> Vec<(String, HeadConfig)> {
    let mut specs = vec![(format!("{} (config)", config.kind()), config.clone())];
    if all {
        for kind in HeadKind::ALL {
            specs.push((kind.name().to_string(), HeadConfig::new(kind)));
        }
        let arcface = ArcFaceConfig::default();
        let triplet = TripletConfig::default();
        for (label, spec) in [
            (
                "arcface easy_margin",
                HeadConfig::ArcFace(ArcFaceConfig {
                    easy_margin: true,
                    ..arcface
                }),
            ),
            (
                "arcface detach_margin",
                HeadConfig::ArcFace(ArcFaceConfig {
                    detach_margin: true,
                    ..arcface
                }),
            ),
            (
                "adacos dynamic",
                HeadConfig::AdaCos(AdaCosConfig { dynamic: true }),
            ),
            (
                "softmax bias",
                HeadConfig::Softmax(SoftmaxConfig { bias: true }),
            ),
            (
                "triplet semi_hard",
                HeadConfig::Triplet(triplet.with_mining(TripletMining::SemiHard)),
            ),
            (
                "triplet hard",
                HeadConfig::Triplet(triplet.with_mining(TripletMining::Hard)),
            ),
            (
                "sphereface m=2",
                HeadConfig::SphereFace(SphereFaceConfig {
                    margin_int: 2,
                    ..Default::default()
                }),
            ),
        ] {
            specs.push((label.to_string(), spec));
        }
    }
    let mut seen: Vec<HeadConfig> = Vec::new();
    specs.retain(|(_, s)| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
    specs
}

/// Host inputs of the heads: embeddings `[n, d]` ~ N(0, 1), `n / 4` classes spread over
/// `[0, classes)` with about 4 images each (so pair and triplet losses have positives),
/// class weights `[classes * k, d]` ~ N(0, 0.1^2) (k sub-centres, 1 but for sub-center
/// ArcFace), biases ~ N(0, 0.1^2).
fn head_job(spec: HeadConfig, n: usize, d: usize, classes: usize, rng: &mut SplitMix64) -> HeadJob {
    let embeddings: Vec<f32> = (0..n * d).map(|_| rng.normal()).collect();
    let groups = (n / 4).clamp(1, classes);
    let mut labels: Vec<i64> = (0..n)
        .map(|i| ((i % groups) * classes / groups) as i64)
        .collect();
    rng.shuffle(&mut labels);
    let rows = classes * spec.classifier(classes, d).map_or(1, |c| c.sub_centers);
    let weight = spec.kind().has_class_tensor().then(|| {
        (
            (0..rows * d).map(|_| 0.1 * rng.normal()).collect(),
            [rows, d],
        )
    });
    let has_bias = match &spec {
        HeadConfig::Softmax(c) => c.bias,
        HeadConfig::DeepId2(c) => c.bias,
        _ => false,
    };
    let bias = has_bias.then(|| (0..classes).map(|_| 0.1 * rng.normal()).collect());
    HeadJob {
        spec,
        embeddings: (embeddings, [n, d]),
        labels,
        weight,
        bias,
        state: HeadState {
            iteration: HEAD_ITERATION,
            adacos_scale: None,
        },
    }
}

/// Runs the parity check of `options` (see the crate docs), reporting progress to
/// `on_event`. Returns the report, breaches and failed backends included
/// ([`ParityReport::failures`] lists them); an error only when nothing can be compared.
pub fn check(
    options: &ParityOptions,
    on_event: &mut dyn FnMut(&ParityEvent),
) -> Result<ParityReport, ParityError> {
    let mut config = TrainConfig::from_file(&options.config_path)?;
    if let Some(b) = options.batch_size {
        config.train.batch_size = b;
    }
    config.eval = None;
    config.train.steps = Some(options.steps.max(1));
    config.train.epochs = None;
    config.train.eval_every = 0;
    config.train.checkpoint_every = 0;
    config.train.keep_checkpoints = 1;
    config.train.log_every = 1;
    config.validate_static()?;
    let source = open_training(&config.data)?;
    let classes = source.num_classes();
    let n = config.train.batch_size;
    let d = config.backbone.embedding_dim()?;
    let [h, w] = config.backbone.input_size()?;
    let c = config.backbone.in_channels()?;
    std::fs::create_dir_all(&options.out)
        .map_err(|e| visage_io::IoError::io("creating", &options.out, e))?;
    compare_all(options, &config, classes, n, d, [c, h, w], on_event)
}

fn compare_all(
    options: &ParityOptions,
    config: &TrainConfig,
    classes: usize,
    n: usize,
    d: usize,
    [c, h, w]: [usize; 3],
    on_event: &mut dyn FnMut(&ParityEvent),
) -> Result<ParityReport, ParityError> {
    let mut statuses = Vec::new();
    let mut ready = Vec::new();
    for &b in &options.backends {
        if ready.contains(&b) || statuses.iter().any(|s: &BackendStatus| s.backend == b) {
            continue;
        }
        let status = if !b.compiled() {
            BackendStatus::skipped(
                b,
                format!("not compiled into this visage (build with `--features {b}`)"),
            )
        } else {
            match guarded(|| dispatch(b, ProbeJob)) {
                Ok(()) => {
                    ready.push(b);
                    BackendStatus::ready(b)
                }
                Err(e) => BackendStatus::skipped(b, format!("cannot run here: {e}")),
            }
        };
        on_event(&ParityEvent::Backend(status.clone()));
        statuses.push(status);
    }
    let mut rows = Vec::new();
    let mut timings = Vec::new();
    let Some(&reference) = ready.first() else {
        return Err(ParityError::NoBackend(options.backends.clone()));
    };

    // 1. Heads.
    let mut rng = SplitMix64::new(options.seed);
    for (label, spec) in head_specs(&config.head.spec, options.all_heads) {
        let job = head_job(spec, n, d, classes, &mut rng);
        let case = format!("head {label}");
        let results = on_each(&case, &ready, &job, &mut timings, on_event);
        compare(&case, &results, options.tolerance_scale, &mut rows);
    }

    // The initial model, drawn once on the reference backend.
    let model = guarded(|| {
        dispatch(
            reference,
            InitJob {
                config: config.clone(),
                classes,
                path: options.out.join("initial-model.bin"),
            },
        )
    })
    .map_err(|reason| ParityError::InitialModel {
        backend: reference,
        reason,
    })?;

    // 2. Backbone.
    let images: Vec<f32> = (0..n * c * h * w).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let cotangent: Vec<f32> = (0..n * d).map(|_| rng.normal()).collect();
    let job = BackboneJob {
        config: config.clone(),
        classes,
        model: model.clone(),
        images: (images, [n, c, h, w]),
        cotangent,
    };
    let results = on_each("backbone", &ready, &job, &mut timings, on_event);
    compare("backbone", &results, options.tolerance_scale, &mut rows);

    // 3. Training steps.
    if !options.no_train {
        let results: Vec<_> = ready
            .iter()
            .map(|&b| {
                let job = TrainStepsJob {
                    config: config.clone(),
                    classes,
                    model: model.clone(),
                    run_dir: options.out.join(format!("train-{b}")),
                };
                on_each("train", &[b], &job, &mut timings, on_event).remove(0)
            })
            .collect();
        compare("train", &results, options.tolerance_scale, &mut rows);
    }

    Ok(ParityReport {
        config: options.config_path.display().to_string(),
        reference,
        batch_size: n,
        steps: if options.no_train {
            0
        } else {
            options.steps.max(1)
        },
        backends: statuses,
        rows,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> HostTensor {
        HostTensor::F32(v.to_vec(), vec![v.len()])
    }

    fn tensors(items: &[(&str, &[f32])]) -> Tensors {
        items.iter().map(|(n, v)| (n.to_string(), t(v))).collect()
    }

    /// A job that panics inside the backend, as a missing driver does.
    #[derive(Clone)]
    struct Panics;

    impl BackendJob for Panics {
        type Output = ();
        fn run<B: burn::tensor::backend::AutodiffBackend>(
            self,
            _device: B::Device,
        ) -> anyhow::Result<()> {
            panic!("no adapter\nfound")
        }
    }

    #[test]
    fn a_panic_or_an_error_becomes_a_message_and_the_callers_hook_still_runs() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {
            HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        }));
        let backend = BackendKind::default_compiled();
        let panicked = guarded(|| dispatch(backend, Panics));
        let failed = guarded(|| Err::<(), _>(anyhow::anyhow!("outer").context("context")));
        let calls = HOOK_CALLS.load(Ordering::SeqCst);
        std::panic::set_hook(previous);
        assert_eq!(panicked.unwrap_err(), "panicked: no adapter found");
        assert_eq!(failed.unwrap_err(), "context: outer");
        // The hook the caller set saw the panic: guarded did not swap it.
        assert!(calls >= 1, "{calls}");
    }

    #[test]
    fn the_probe_reads_a_hand_checked_product_back_and_missing_backends_are_named() {
        let backend = BackendKind::default_compiled();
        guarded(|| dispatch(backend, ProbeJob)).unwrap();
        for kind in BackendKind::ALL.into_iter().filter(|k| !k.compiled()) {
            let e = dispatch(kind, ProbeJob).unwrap_err();
            assert!(matches!(e, DispatchError::NotCompiled(k) if k == kind));
            assert!(e.to_string().contains(&format!("--features {kind}")), "{e}");
        }
        assert_eq!("WGPU".parse::<BackendKind>().unwrap(), BackendKind::Wgpu);
        assert!("tpu".parse::<BackendKind>().is_err());
    }

    #[test]
    fn parameter_tensors_form_one_row_that_reports_the_worst() {
        use BackendKind::*;
        let reference = tensors(&[
            ("forward", &[1.0, 2.0]),
            ("grad.a.weight", &[10.0, -10.0]),
            ("grad.b.weight", &[1.0, 1.0]),
        ]);
        // grad.a: 1e-6 / 10 = 1e-7 relative; grad.b: 3e-4 / 1 = 3e-4 relative (the worst,
        // above the CPU budget of 1e-4, below wgpu's 1e-3).
        let other = tensors(&[
            ("forward", &[1.0, 2.0]),
            ("grad.a.weight", &[10.000001, -10.0]),
            ("grad.b.weight", &[1.0003, 1.0]),
        ]);
        for (backend, pass) in [(Flex, false), (Wgpu, true)] {
            let mut rows = Vec::new();
            let results = vec![
                (Ndarray, Ok(reference.clone())),
                (backend, Ok(other.clone())),
            ];
            compare("backbone", &results, 1.0, &mut rows);
            assert_eq!(rows.len(), 2, "{rows:?}");
            let params = rows
                .iter()
                .find(|r| r.quantity == "parameter gradients")
                .expect("row");
            assert_eq!(params.tensors, 2);
            assert_eq!(params.worst.as_deref(), Some("grad.b.weight"));
            let rel = params.max_rel_diff.unwrap();
            assert!((rel - 3e-4).abs() < 1e-5, "{rel}");
            assert_eq!(params.pass, pass, "{backend}");
            let forward = rows
                .iter()
                .find(|r| r.quantity.starts_with("forward"))
                .unwrap();
            assert_eq!(forward.max_abs_diff, Some(0.0));
            assert!(forward.pass);
        }
    }

    #[test]
    fn a_missing_tensor_or_a_failed_backend_is_an_error_row() {
        use BackendKind::*;
        let reference = tensors(&[("loss", &[1.0]), ("logits", &[1.0, 2.0])]);
        let other = tensors(&[("loss", &[1.0])]);
        let mut rows = Vec::new();
        let results = vec![
            (Ndarray, Ok(reference)),
            (Flex, Ok(other)),
            (Wgpu, Err("no adapter".to_string())),
        ];
        compare("head arcface", &results, 1.0, &mut rows);
        let logits = rows.iter().find(|r| r.quantity == "logits").unwrap();
        assert!(!logits.pass);
        assert!(logits.error.as_deref().unwrap().contains("missing"));
        let wgpu = rows.iter().find(|r| r.other == Wgpu).unwrap();
        assert_eq!(wgpu.error.as_deref(), Some("no adapter"));
        assert!(rows.iter().any(|r| r.quantity == "loss" && r.pass));
    }

    #[test]
    fn all_heads_covers_every_kind_once() {
        let specs = head_specs(&HeadConfig::new(HeadKind::ArcFace), true);
        for kind in HeadKind::ALL {
            assert!(specs.iter().any(|(_, s)| s.kind() == kind), "{kind}");
        }
        // The config's arcface equals the default arcface: it is listed once.
        let plain: Vec<_> = specs
            .iter()
            .filter(|(_, s)| *s == HeadConfig::new(HeadKind::ArcFace))
            .collect();
        assert_eq!(plain.len(), 1);
        assert_eq!(
            head_specs(&HeadConfig::new(HeadKind::CosFace), false).len(),
            1
        );
    }

    #[test]
    fn head_inputs_give_pair_losses_positives() {
        let mut rng = SplitMix64::new(1);
        let job = head_job(HeadConfig::new(HeadKind::Triplet), 16, 8, 100, &mut rng);
        let mut counts = std::collections::BTreeMap::new();
        for l in &job.labels {
            assert!((0..100).contains(l));
            *counts.entry(*l).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&c| c == 4));
        assert!(job.weight.is_none());
        let job = head_job(HeadConfig::new(HeadKind::Softmax), 16, 8, 3, &mut rng);
        assert_eq!(job.weight.as_ref().unwrap().1, [3, 8]);
    }
}
