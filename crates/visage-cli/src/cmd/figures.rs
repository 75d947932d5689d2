//! `visage figures`: the pictures of the face-loss papers for your own settings.
//!
//! `visage figures [--backend B] [--out DIR] [--data MNIST_DIR] [--preset cpu|full]
//! [--only analytic|features] [--config RUN.toml]` draws the analytic figures (target logits,
//! two-class decision margins, AdaCos's P(theta)) and trains LeNets++ under each loss to draw
//! its 2-D (and one 3-D) feature space, then a contact sheet of the runs. `--config` draws one
//! run of your own instead of the preset's runs.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use visage_figures::pipeline::{run_figures, FiguresJob, FiguresRequest, FiguresSummary, Only};
use visage_figures::preset::Preset;

use crate::backend::{dispatch, BackendJob, BackendKind};

/// The data sizes of a run set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    /// 2 CPU cores in under an hour: 10,000 training images, 200 steps of 64 per run (the
    /// 8-identity toy: 150 images per identity, 150 steps); 3,000 test images scored.
    Cpu,
    /// Every training and test image, 9,400 steps of 128 per run (for a GPU).
    Full,
}

/// Which figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnlyArg {
    /// The analytic figures (no training).
    Analytic,
    /// The feature-space figures and the contact sheet.
    Features,
}

/// Arguments of `visage figures`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Backend to train on.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Output folder.
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// MNIST-format folder (IDX files, plain or .gz): Fashion-MNIST by default, as Debian's
    /// `dataset-fashion-mnist` installs it; classic MNIST works the same.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// Data sizes: `cpu` (a subset, short runs) or `full` (all images; default on GPUs).
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// Draw only these figures.
    #[arg(long, value_enum)]
    pub only: Option<OnlyArg>,
    /// Draw one run of this training config (TOML, 2-D or 3-D embedding) instead of the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Runs trained at once, one thread each (default: one per core on CPU backends, where one
    /// LeNets++ run keeps only about 1.3 of 2 cores busy; 1 on GPUs). `--jobs 1` gives the
    /// same numbers every time.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Runs of the preset to draw (comma-separated names, e.g. `softmax,arcface`; default all),
    /// with the runs they start from (`arcface` starts from `softmax`).
    #[arg(long, value_delimiter = ',')]
    pub runs: Vec<String>,
}

struct FiguresWork(FiguresJob);

impl BackendJob for FiguresWork {
    type Output = FiguresSummary;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<FiguresSummary> {
        Ok(run_figures::<B>(&self.0, &device, |line| {
            eprintln!("{line}")
        })?)
    }
}

/// Runs `visage figures`: [`FiguresRequest::into_job`], then [`run_figures`] on the backend.
pub fn run(args: Args) -> anyhow::Result<()> {
    let gpu = matches!(args.backend, BackendKind::Cuda | BackendKind::Wgpu);
    let request = FiguresRequest {
        out: args.out.clone(),
        data: args.data,
        preset: args.preset.map(|p| match p {
            PresetArg::Cpu => Preset::Cpu,
            PresetArg::Full => Preset::Full,
        }),
        only: match args.only {
            None => Only::All,
            Some(OnlyArg::Analytic) => Only::Analytic,
            Some(OnlyArg::Features) => Only::Features,
        },
        config: args.config,
        jobs: args.jobs,
        runs: args.runs,
        gpu,
    };
    let only = request.only;
    let (job, preset) = request.into_job()?;
    let jobs = job.jobs;
    let runs = if only == Only::Analytic {
        0
    } else {
        job.runs.len()
    };
    eprintln!(
        "visage figures: {runs} runs ({preset:?} preset, {jobs} at a time) on {} -> {}",
        args.backend,
        args.out.display()
    );
    let summary = dispatch(args.backend, FiguresWork(job))
        .with_context(|| format!("drawing figures into {}", args.out.display()))?;
    println!(
        "{} analytic figures, {} run figures in {:.0} s; summary: {}",
        summary.analytic.len(),
        summary.runs.len(),
        summary.seconds,
        args.out.join("figures.json").display()
    );
    if let Some(sheet) = &summary.contact_sheet {
        println!("contact sheet: {}", sheet.display());
    }
    if !summary.failed.is_empty() {
        let names: Vec<&str> = summary.failed.iter().map(|f| f.0.as_str()).collect();
        anyhow::bail!(
            "{} runs failed: {} (see above)",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}
