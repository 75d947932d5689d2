//! The whole set: the analytic figures, then every run (trained, embedded, drawn) with one
//! progress line each, then the contact sheet and `figures.json` (what was drawn, accuracies
//! and times).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use visage_data::Mnist;
use visage_train::config::DataKind;

use crate::analytic::write_analytic;
use crate::contact_sheet::{write_contact_sheet, SheetLayout};
use crate::feature_space::train_run;
use crate::preset::{figure_stem, RunSpec};
use crate::queue::{with_start, Queue, Start};
use crate::scatter::RunFigure;
use crate::style::save_figure;
use crate::FigureError;

/// Which figures to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Only {
    /// Analytic and feature figures.
    #[default]
    All,
    /// The analytic figures only (no training).
    Analytic,
    /// The feature figures (and contact sheet) only.
    Features,
}

/// What to draw and where.
#[derive(Debug, Clone)]
pub struct FiguresJob {
    /// Output folder: analytic figures in `analytic/`, run figures at the top, training runs
    /// in `runs/`.
    pub out: PathBuf,
    /// The runs.
    pub runs: Vec<RunSpec>,
    /// Which figures.
    pub only: Only,
    /// The contact sheet's layout.
    pub sheet: SheetLayout,
    /// Runs trained at the same time, each on its own thread (1: one after the other, the
    /// same numbers every time; one small LeNets++ run leaves part of a CPU idle, so on a
    /// CPU one job per core is fastest; the initialisations then depend on the threads'
    /// timing through the backend's shared random generator).
    pub jobs: usize,
}

/// One run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Name.
    pub name: String,
    /// Loss and settings.
    pub label: String,
    /// Data and training.
    pub training: String,
    /// Test accuracy (argmax of the head's inference logits).
    pub test_accuracy: Option<f64>,
    /// Test images scored.
    pub test_images: usize,
    /// Seconds of training steps.
    pub train_seconds: f64,
    /// Whether the trained run was reused from an earlier invocation.
    pub reused: bool,
    /// Seconds of the whole run, drawing included.
    pub total_seconds: f64,
    /// The figure (PNG; the SVG sits beside it).
    pub figure: PathBuf,
}

/// What [`run_figures`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct FiguresSummary {
    /// Analytic figures (PNG).
    pub analytic: Vec<PathBuf>,
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// The contact sheet.
    pub contact_sheet: Option<PathBuf>,
    /// Runs that failed: `(name, error)`; the others are still drawn.
    pub failed: Vec<(String, String)>,
    /// Wall time of everything, seconds.
    pub seconds: f64,
}

/// Checks that every MNIST-format folder the runs read has both splits, before any training.
pub fn check_data(runs: &[RunSpec]) -> Result<(), FigureError> {
    for run in runs {
        if run.config.data.kind == DataKind::Mnist {
            let dir = run.config.data.path.clone().unwrap_or_default();
            for split in ["train", "t10k"] {
                Mnist::split_files(&dir, split)?;
            }
        }
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), FigureError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    visage_io::write_atomic(path, text.as_bytes()).map_err(|e| {
        let (path, source) = e.into_path_and_io();
        FigureError::io(path, source)
    })
}

/// Draws `job` on backend `B`, calling `progress` with one line per figure written.
pub fn run_figures<B: AutodiffBackend>(
    job: &FiguresJob,
    device: &B::Device,
    mut progress: impl FnMut(&str) + Send,
) -> Result<FiguresSummary, FigureError> {
    let started = Instant::now();
    std::fs::create_dir_all(&job.out).map_err(|e| FigureError::io(&job.out, e))?;
    let mut summary = FiguresSummary {
        analytic: Vec::new(),
        runs: Vec::new(),
        contact_sheet: None,
        failed: Vec::new(),
        seconds: 0.0,
    };
    if job.only != Only::Features {
        summary.analytic = write_analytic::<B::InnerBackend>(&job.out.join("analytic"), device)?;
        progress(&format!(
            "analytic figures: {} -> {}",
            summary.analytic.len(),
            job.out.join("analytic").display()
        ));
    }
    if job.only != Only::Analytic {
        check_data(&job.runs)?;
        let runs_dir = job.out.join("runs");
        let sheet = job.out.join("contact_sheet.png");
        let n = job.runs.len();
        // Trained in priority order (one of each loss first), drawn in the runs' order; a run
        // that starts from another's backbone waits for it.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| job.runs[i].priority);
        let queue = Queue::new(&job.runs, order);
        let done: Mutex<Vec<Option<RunRecord>>> = Mutex::new(vec![None; n]);
        let shared = Mutex::new((&mut summary, &mut progress));
        let stop: Mutex<Option<FigureError>> = Mutex::new(None);
        let stopped = || stop.lock().map_or(true, |s| s.is_some());
        std::thread::scope(|scope| {
            for _ in 0..job.jobs.clamp(1, n.max(1)) {
                scope.spawn(|| loop {
                    let Some(next) = queue.take(&stopped) else {
                        break;
                    };
                    let (k, i) = (next.position, next.index);
                    let t = Instant::now();
                    let drawn = match &next.start {
                        Start::Failed(parent) => Err(FigureError::setting(
                            format!("run {}", job.runs[i].name),
                            format!("it starts from run {parent}, which failed"),
                        )),
                        start => with_start(&job.runs[i], &runs_dir, start)
                            .and_then(|run| train_run::<B>(&run, &runs_dir, device)),
                    }
                    .and_then(|features| {
                        let run = &job.runs[i];
                        let stem = figure_stem(&job.out, run);
                        let png = save_figure(&RunFigure { run: &features }, &stem)?;
                        Ok(RunRecord {
                            name: features.name.clone(),
                            label: features.label.clone(),
                            training: features.training.clone(),
                            test_accuracy: features.test_accuracy,
                            test_images: features.test_labels.len(),
                            train_seconds: features.train_seconds,
                            reused: features.reused,
                            total_seconds: t.elapsed().as_secs_f64(),
                            figure: png,
                        })
                    });
                    let run = &job.runs[i];
                    queue.finish(i, drawn.as_ref().ok().map(|r| r.reused));
                    let Ok(mut guard) = shared.lock() else { break };
                    let (summary, progress) = &mut *guard;
                    let record = match drawn {
                        Ok(record) => record,
                        // Bad input stops everything before time is spent on the others.
                        Err(e @ (FigureError::Setting { .. } | FigureError::Data(_)))
                            if !matches!(next.start, Start::Failed(_)) =>
                        {
                            if let Ok(mut s) = stop.lock() {
                                *s = Some(e);
                            }
                            queue.wake();
                            break;
                        }
                        Err(e) => {
                            progress(&format!("[{}/{n}] {}: FAILED: {e}", k + 1, run.name));
                            summary.failed.push((run.name.clone(), e.to_string()));
                            continue;
                        }
                    };
                    progress(&format!(
                        "[{}/{n}] {}: {}  test accuracy {}  {:.0} s (training {:.0} s{})  -> {}",
                        k + 1,
                        record.name,
                        record.label,
                        record
                            .test_accuracy
                            .map_or("n/a".into(), |a| format!("{:.1} %", 100.0 * a)),
                        record.total_seconds,
                        record.train_seconds,
                        if record.reused { ", reused" } else { "" },
                        record.figure.display()
                    ));
                    // The runs in their order, the sheet redrawn after every run (so an
                    // interrupted set still has one) and the summary rewritten.
                    let Ok(mut done) = done.lock() else { break };
                    done[i] = Some(record);
                    summary.runs = done.iter().flatten().cloned().collect();
                    let figures: Vec<PathBuf> =
                        summary.runs.iter().map(|r| r.figure.clone()).collect();
                    let written = write_contact_sheet(&figures, &sheet, &job.sheet).and_then(|p| {
                        summary.contact_sheet = Some(p);
                        summary.seconds = started.elapsed().as_secs_f64();
                        write_json(&job.out.join("figures.json"), &**summary)
                    });
                    if let Err(e) = written {
                        if let Ok(mut s) = stop.lock() {
                            *s = Some(e);
                        }
                        queue.wake();
                        break;
                    }
                });
            }
        });
        if let Some(e) = stop.into_inner().ok().flatten() {
            return Err(e);
        }
        if summary.contact_sheet.is_some() {
            progress(&format!("contact sheet -> {}", sheet.display()));
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    write_json(&job.out.join("figures.json"), &summary)?;
    Ok(summary)
}

/// What to draw, as a caller (or `visage figures`) says it; [`FiguresRequest::into_job`]
/// resolves the defaults and checks it into a [`FiguresJob`].
#[derive(Debug, Clone, PartialEq)]
pub struct FiguresRequest {
    /// Output folder.
    pub out: PathBuf,
    /// MNIST-format folder (IDX files, plain or .gz) the preset's runs train on.
    pub data: PathBuf,
    /// Data sizes; `None`: [`crate::preset::Preset::Full`] on a GPU, else
    /// [`crate::preset::Preset::Cpu`].
    pub preset: Option<crate::preset::Preset>,
    /// Which figures.
    pub only: Only,
    /// Draw one run of this training config (TOML, 2-D or 3-D embedding) instead of the
    /// preset's runs.
    pub config: Option<PathBuf>,
    /// Runs trained at once; `None`: 1 on a GPU, one per core otherwise.
    pub jobs: Option<usize>,
    /// Names of the preset's runs to draw (with the runs they start from); empty: all.
    pub runs: Vec<String>,
    /// Whether the backend is a GPU one (sets the defaults above).
    pub gpu: bool,
}

impl FiguresRequest {
    /// The job: the preset resolved, its runs (or the config's one run) selected, the data
    /// folder checked where runs train on it, the number of jobs resolved.
    ///
    /// # Errors
    /// A bad config or run name, a missing data folder, `jobs` of 0
    /// ([`FigureError::Setting`] naming the option).
    pub fn into_job(self) -> Result<(FiguresJob, crate::preset::Preset), FigureError> {
        use crate::preset::{config_run, preset_runs, select_runs, Preset};
        let setting = |what: &str, message: String| FigureError::Setting {
            what: what.into(),
            message,
        };
        let preset = self
            .preset
            .unwrap_or(if self.gpu { Preset::Full } else { Preset::Cpu });
        let mut runs = match &self.config {
            Some(path) => vec![config_run(path, preset)
                .map_err(|e| setting(&format!("--config {}", path.display()), e.to_string()))?],
            None => preset_runs(preset, &self.data)?,
        };
        if !self.runs.is_empty() {
            runs = select_runs(runs, &self.runs)?;
        }
        if self.only != Only::Analytic && self.config.is_none() && !self.data.is_dir() {
            return Err(setting(
                &format!("--data {}", self.data.display()),
                "no such folder (install Fashion-MNIST with `apt-get install \
                 dataset-fashion-mnist`, or point --data at an MNIST-format folder)"
                    .into(),
            ));
        }
        let jobs = self.jobs.unwrap_or_else(|| {
            if self.gpu {
                1
            } else {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            }
        });
        if jobs == 0 {
            return Err(setting("--jobs", "must be at least 1".into()));
        }
        let job = FiguresJob {
            out: self.out,
            runs,
            only: self.only,
            sheet: SheetLayout::default(),
            jobs,
        };
        Ok((job, preset))
    }
}
