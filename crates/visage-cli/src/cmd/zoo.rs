//! `visage zoo`: train every loss on the same budget and tabulate held-out verification.
//!
//! `visage zoo [--configs 'configs/synth-*.toml'] [--preset cpu|gpu] [--steps N]
//! [--backend B] [--out runs/zoo]` trains each config in `OUT/<config stem>` (finished runs
//! of the same config are reused, interrupted ones resumed), then writes `OUT/zoo.md`,
//! `OUT/zoo.png` and `OUT/zoo.svg`. The work is `visage_train::zoo`'s.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use visage_train::zoo::{
    check_budget, describe_budget, find_configs, run_zoo, write_zoo, zoo_preamble, zoo_rows,
    ZooEntry, ZooOptions, ZooOutcome, ZooPreset, ZooRunKind,
};

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
    entries: Vec<ZooEntry>,
    out: PathBuf,
    options: ZooOptions,
}

fn percent(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{:.2} %", 100.0 * v))
}

fn progress_line(i: usize, n: usize, o: &ZooOutcome) -> String {
    let r = &o.row;
    if let Some(step) = r.diverged {
        return format!(
            "zoo: [{i}/{n}] {}: diverged (non-finite loss at step {step})",
            r.loss
        );
    }
    let how = match o.kind {
        ZooRunKind::Trained => "",
        ZooRunKind::Resumed => " (resumed; time of the resumed part)",
        ZooRunKind::Reused => " (finished run reused)",
        ZooRunKind::Diverged => unreachable!("handled above"),
    };
    format!(
        "zoo: [{i}/{n}] {}: accuracy {:.2} % +- {:.2}, TAR@FAR=1e-3 {}, EER {:.2} %, {:.0} s{how}",
        r.loss,
        100.0 * r.accuracy_mean,
        100.0 * r.accuracy_std,
        percent(r.tar_at_far_1e3),
        100.0 * r.eer,
        r.train_seconds.unwrap_or(0.0),
    )
}

impl BackendJob for ZooJob {
    type Output = Vec<ZooOutcome>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Vec<ZooOutcome>> {
        let n = self.entries.len();
        let mut i = 0;
        Ok(run_zoo::<B>(
            &self.entries,
            &self.out,
            &self.options,
            &device,
            |o| {
                i += 1;
                eprintln!("{}", progress_line(i, n, o));
            },
        )?)
    }
}

/// Runs `visage zoo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let preset = match args.preset {
        Preset::Cpu => ZooPreset::Cpu,
        Preset::Gpu => ZooPreset::Gpu,
    };
    let paths = find_configs(&args.configs)?;
    let entries = paths
        .iter()
        .map(|p| ZooEntry::load(p, preset, args.steps))
        .collect::<Result<Vec<_>, _>>()?;
    let differences = check_budget(&entries);
    for d in &differences {
        eprintln!("zoo: note: {d}");
    }
    let steps = entries[0].config.train.steps.unwrap_or(0);
    eprintln!(
        "visage zoo: {} losses, preset {}, {steps} steps each, on {} -> {}",
        entries.len(),
        preset.name(),
        args.backend,
        args.out.display()
    );
    let budget = describe_budget(&entries);
    let outcomes = dispatch(
        args.backend,
        ZooJob {
            entries,
            out: args.out.clone(),
            options: ZooOptions {
                fresh: args.fresh,
                quiet: args.quiet,
            },
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    let command: Vec<String> = std::env::args().skip(1).collect();
    let preamble = zoo_preamble(
        &command.join(" "),
        args.backend.name(),
        &budget,
        &outcomes,
        wall,
    );
    let rows = zoo_rows(&outcomes);
    let title = format!(
        "Loss zoo: held-out verification ({steps} steps, {})",
        args.backend
    );
    write_zoo(&args.out, &rows, &preamble, &differences, &title)
        .with_context(|| format!("writing the zoo report in {}", args.out.display()))?;
    println!("{}", std::fs::read_to_string(args.out.join("zoo.md"))?);
    println!(
        "zoo: {} and {} ({wall:.0} s)",
        args.out.join("zoo.md").display(),
        args.out.join("zoo.png").display()
    );
    Ok(())
}
