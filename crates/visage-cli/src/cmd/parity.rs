//! `visage parity`: one config, identical initial weights, every backend asked for, compared
//! number by number against the first (see [`visage_parity`] for what is compared and
//! [`visage_parity::tolerance`] for the tolerances and their reasons).
//!
//! `visage parity --config C --backends ndarray,flex,wgpu,cuda [--steps N] [--report OUT.json]
//! [--all-heads] [--batch-size B] [--require B,..]` prints a table (quantity, backend pair, max abs diff, max
//! rel diff, tolerance, pass), writes it as JSON and exits non-zero on any breach.

use std::path::PathBuf;

use visage_parity::{check, BackendKind, ParityOptions};

/// Arguments of `visage parity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Training config whose head, backbone and training steps are compared.
    #[arg(long, default_value = "configs/synth-arcface.toml")]
    pub config: PathBuf,
    /// Backends to compare, the reference first.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu, BackendKind::Cuda])]
    pub backends: Vec<BackendKind>,
    /// Training steps to compare.
    #[arg(long, default_value_t = 5)]
    pub steps: u64,
    /// Batch size of every case (default: the config's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Compare every head kind (and its main options), not only the config's.
    #[arg(long)]
    pub all_heads: bool,
    /// Compare heads and backbone only, no training steps.
    #[arg(long)]
    pub no_train: bool,
    /// Backends that must run here: one that cannot is a failure instead of a skip (CI
    /// requires wgpu on lavapipe).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub require: Vec<BackendKind>,
    /// Working directory: the initial model and one training run per backend.
    #[arg(long, default_value = "runs/parity")]
    pub out: PathBuf,
    /// The JSON report (default: `OUT/parity.json`).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Seed of the host inputs (embeddings, labels, class weights, images).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Multiplies every tolerance (for tests: 0 turns any difference into a breach).
    #[arg(long, default_value_t = 1.0, hide = true)]
    pub tolerance_scale: f64,
}

/// Runs `visage parity`: the check, the JSON report, the table, and an error listing every
/// failure.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report_path = args.report.unwrap_or_else(|| args.out.join("parity.json"));
    let options = ParityOptions {
        config_path: args.config,
        backends: args.backends,
        steps: args.steps,
        batch_size: args.batch_size,
        all_heads: args.all_heads,
        no_train: args.no_train,
        require: args.require,
        out: args.out,
        seed: args.seed,
        tolerance_scale: args.tolerance_scale,
    };
    let report = check(&options, &mut |event| eprintln!("{event}"))?;
    report.write(&report_path)?;
    print!("{}", report.table());
    let failures = report.failures(&options.require);
    let passed = report.rows.iter().filter(|r| r.pass).count();
    println!("report: {}", report_path.display());
    println!("parity: {passed} passed, {} failed", failures.len());
    if !failures.is_empty() {
        anyhow::bail!(
            "parity failed ({} problem(s)): {}; report: {}",
            failures.len(),
            failures.join("; "),
            report_path.display()
        );
    }
    Ok(())
}
