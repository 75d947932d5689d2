//! `visage zoo`: train every loss on the same budget and tabulate held-out verification.
//!
//! `visage zoo [--configs 'configs/synth-*.toml'] [--preset cpu|gpu] [--steps N]
//! [--backend B] [--out runs/zoo]` trains each config in `OUT/<config stem>` (finished runs
//! of the same config are reused, interrupted ones resumed), then writes `OUT/zoo.md`,
//! `OUT/zoo.png` and `OUT/zoo.svg`. The work is `visage_train::zoo`'s.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use visage_train::zoo::{ZooOptions, ZooPlan, ZooPreset, ZooReport};

use crate::backend::{dispatch, BackendJob, BackendKind};

/// The budget preset (`visage_train::zoo::ZooPreset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The configs as they are, 500 steps: under an hour for 12 losses on 2 CPU cores.
    Cpu,
    /// 1,000 identities at 112x112, IResNet-18, batch 256, 4,000 steps: for one GPU.
    Gpu,
}

/// Arguments of `visage zoo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config files, folders (their `*.toml`) or patterns with `*` / `?` in the file name.
    #[arg(long, num_args = 1.., default_value = "configs/synth-*.toml")]
    pub configs: Vec<String>,
    /// Budget preset applied to every config.
    #[arg(long, value_enum, default_value_t = Preset::Cpu)]
    pub preset: Preset,
    /// Steps for every loss (default: the preset's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Backend to train on.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Folder of the runs and of `zoo.md`, `zoo.png`, `zoo.svg`.
    #[arg(long, default_value = "runs/zoo")]
    pub out: PathBuf,
    /// Retrain every loss even where a finished run of the same config exists.
    #[arg(long)]
    pub fresh: bool,
    /// Print only errors and one line per loss.
    #[arg(long)]
    pub quiet: bool,
}

struct ZooJob {
    plan: ZooPlan,
    out: PathBuf,
    options: ZooOptions,
    command: String,
    backend: BackendKind,
}

impl BackendJob for ZooJob {
    type Output = ZooReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<ZooReport> {
        Ok(self.plan.run::<B>(
            &self.out,
            &self.options,
            &self.command,
            self.backend.name(),
            &device,
            |i, n, o| eprintln!("{}", o.progress_line(i, n)),
        )?)
    }
}

/// Runs `visage zoo`: [`ZooPlan::prepare`], then [`ZooPlan::run`] on the chosen backend.
pub fn run(args: Args) -> anyhow::Result<()> {
    let preset = match args.preset {
        Preset::Cpu => ZooPreset::Cpu,
        Preset::Gpu => ZooPreset::Gpu,
    };
    let plan = ZooPlan::prepare(&args.configs, preset, args.steps)?;
    for d in &plan.differences {
        eprintln!("zoo: note: {d}");
    }
    eprintln!(
        "visage zoo: {} losses, preset {}, {} steps each, on {} -> {}",
        plan.entries.len(),
        preset.name(),
        plan.steps,
        args.backend,
        args.out.display()
    );
    let command: Vec<String> = std::env::args().skip(1).collect();
    let report = dispatch(
        args.backend,
        ZooJob {
            plan,
            out: args.out.clone(),
            options: ZooOptions {
                fresh: args.fresh,
                quiet: args.quiet,
            },
            command: command.join(" "),
            backend: args.backend,
        },
    )?;
    println!("{}", report.markdown()?);
    println!(
        "zoo: {} and {} ({:.0} s)",
        report.markdown_path.display(),
        report.chart_path.display(),
        report.wall_seconds
    );
    Ok(())
}
