//! `visage train`: train any head x backbone x dataset from a TOML config, on any backend.
//!
//! `visage train --config C [--backend B] [--out RUN_DIR]` starts a run;
//! `visage train --resume RUN_DIR [--backend B]` continues it from its last checkpoint (the
//! run's own `config.toml`), so that the loss sequence equals the uninterrupted run's.

use std::io::IsTerminal;
use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use visage_train::run_dir::RunStart;
use visage_train::{TrainConfig, TrainOptions, TrainSummary};

use crate::backend::{dispatch, BackendJob, BackendKind};

/// Arguments of `visage train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Training config (TOML).
    #[arg(long, required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Run directory (default: `[output] dir`, else `runs/<config name>`). A folder that is
    /// not empty is refused unless `--overwrite` (or `--resume` it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start a new run even where the run directory holds one: its files (config, metrics,
    /// checkpoints, report, backbone) are removed first; other files are kept.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Backend to train on.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Stop after this many steps as if killed (no final evaluation or checkpoint); for tests.
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Print only errors and the final result.
    #[arg(long)]
    pub quiet: bool,
    /// Start from this model record (a checkpoint's `model.bin` of the same config) instead
    /// of the seeded random initialisation.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Data-parallel workers, one per device (overrides `[distributed] devices`; default 1).
    #[arg(long)]
    pub devices: Option<usize>,
}

struct TrainJob {
    config: TrainConfig,
    run_dir: PathBuf,
    options: TrainOptions,
    devices: usize,
}

impl BackendJob for TrainJob {
    type Output = TrainSummary;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<TrainSummary> {
        Ok(visage_train::distributed::train_on_devices::<B>(
            &self.config,
            &self.run_dir,
            &self.options,
            &device,
            self.devices,
        )?)
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{:.2}%", 100.0 * v))
}

/// Runs `visage train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let RunStart {
        config,
        run_dir,
        resume,
    } = match (&args.config, &args.resume) {
        (_, Some(dir)) => RunStart::resume(dir)?,
        (Some(path), None) => RunStart::new_run(path, args.out.clone())?,
        (None, None) => anyhow::bail!("give --config or --resume"),
    };
    eprintln!(
        "visage train: {} on {} -> {}",
        config.head.spec.kind(),
        args.backend,
        run_dir.display()
    );
    let options = TrainOptions {
        resume,
        overwrite: args.overwrite,
        stop_after: args.stop_after,
        quiet: args.quiet,
        initial_model: args.init_from.clone(),
        // The bar on a terminal; plain `step i/n` lines on stderr otherwise.
        progress: (!args.quiet && std::io::stderr().is_terminal())
            .then(|| visage_io::SharedProgress::new(crate::progress::Bar::default())),
    };
    let devices = args
        .devices
        .or(config.distributed.map(|d| d.devices))
        .unwrap_or(1);
    let summary = dispatch(
        args.backend,
        TrainJob {
            config,
            run_dir,
            options,
            devices,
        },
    )?;
    if summary.already_finished {
        println!(
            "{} finished already ({:.1} s of training): nothing to do; its results are in report.json",
            summary.run_dir.display(),
            summary.train_seconds
        );
        return Ok(());
    }
    if summary.interrupted {
        println!(
            "stopped after step {}",
            summary.losses.last().map_or(0, |l| l.0 + 1)
        );
        return Ok(());
    }
    println!(
        "trained {} steps in {:.1} s ({:.1} images/s)",
        summary.losses.len(),
        summary.train_seconds,
        summary.images_per_second
    );
    if let Some(b) = &summary.baseline {
        println!(
            "untrained backbone: held-out accuracy {:.2}% +- {:.2}, TAR@FAR=1e-3 {}",
            100.0 * b.accuracy_mean,
            100.0 * b.accuracy_std,
            percent(b.tar_at_far.get("1e-3").copied().flatten())
        );
    }
    if let Some(r) = &summary.report {
        println!(
            "trained:            held-out accuracy {:.2}% +- {:.2}, TAR@FAR=1e-3 {}, EER {:.2}%, AUC {:.4}",
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            percent(r.tar_at_far.get("1e-3").copied().flatten()),
            100.0 * r.eer,
            r.auc
        );
    }
    let report = summary.run_dir.join("report.json");
    if report.exists() {
        println!("report: {}", report.display());
    }
    Ok(())
}
