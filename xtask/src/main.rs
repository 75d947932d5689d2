//! `cargo xtask`: the project's tasks (test, train, eval, parity, zoo, figures, bench), so that the README's commands
//! stay short and CI runs exactly what a developer runs.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "visage project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// A backend as a cargo feature of `visage-cli`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Ndarray,
    Flex,
    Wgpu,
    Cuda,
    /// Burn's LibTorch backend on the CPU: libtorch needed at build and run time (README,
    /// "LibTorch backend"), so it is never in a default list nor in ALL_BACKENDS.
    Tch,
}

impl Backend {
    fn feature(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
            Backend::Tch => "tch",
        }
    }
}

/// The default CPU backend (the faster of the two in `cargo xtask bench heads|backbones`).
const DEFAULT_BACKEND: Backend = Backend::Flex;

#[derive(Subcommand, Debug)]
enum Task {
    /// The test suite (the README's test command; CI runs it).
    Test {
        /// Skip the build of `visage` with every backend (wgpu and cuda compiled in).
        #[arg(long)]
        no_gpu_build: bool,
    },
    /// Train: build `visage` in release with the backend's feature and run `visage train`.
    Train {
        /// Backend to train on.
        #[arg(long, value_enum, default_value_t = DEFAULT_BACKEND)]
        backend: Backend,
        /// Training config.
        #[arg(long, default_value = "configs/synth-arcface.toml")]
        config: PathBuf,
        /// Extra arguments for `visage train`.
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// The loss zoo: build `visage` in release with the backend's feature and run `visage zoo`
    /// (every `configs/synth-*.toml` on one budget; table and chart in `runs/zoo/`).
    Zoo {
        /// Backend to train on.
        #[arg(long, value_enum, default_value_t = DEFAULT_BACKEND)]
        backend: Backend,
        /// Budget preset: `cpu` (about an hour on 2 cores) or `gpu` (larger, for one GPU).
        #[arg(long, default_value = "cpu")]
        preset: String,
        /// Extra arguments for `visage zoo` (e.g. `--steps 300 --out runs/zoo-300`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// The papers' figures: build `visage` in release with the backend's feature and run
    /// `visage figures` (the cpu preset on CPU backends, the full one on wgpu and cuda).
    Figures {
        /// Backend to train on.
        #[arg(long, value_enum, default_value_t = DEFAULT_BACKEND)]
        backend: Backend,
        /// Extra arguments for `visage figures` (e.g. `--out figures --only analytic`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Evaluate a backbone: build `visage` in release and run `visage eval ARGS`.
    Eval {
        /// Backend to evaluate on.
        #[arg(long, value_enum, default_value_t = DEFAULT_BACKEND)]
        backend: Backend,
        /// Arguments for `visage eval` (e.g. `--config runs/synth-arcface/config.toml
        /// --weights runs/synth-arcface/backbone.bin --dataset synthetic --report out.json`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Backend parity: build `visage` with the backends' features and run `visage parity`
    /// (heads, backbone and training steps from identical weights, compared number by number
    /// against the first backend; non-zero exit on any breach).
    Parity {
        /// Training config to compare on.
        #[arg(long, default_value = "configs/synth-arcface.toml")]
        config: PathBuf,
        /// Backends, the reference first (each one's feature is compiled in). `tch` is
        /// selectable, never in the default list (it needs libtorch).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Ndarray, Backend::Flex, Backend::Wgpu, Backend::Cuda])]
        backends: Vec<Backend>,
        /// Training steps to compare.
        #[arg(long, default_value_t = 5)]
        steps: u64,
        /// The JSON report (default `runs/parity/parity.json`).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Compare every head kind, not only the config's.
        #[arg(long)]
        all_heads: bool,
        /// Build `visage` in release (default: the dev profile, whose dependencies are
        /// optimised and shared with the test build).
        #[arg(long)]
        release: bool,
        /// Extra arguments for `visage parity` (`--batch-size`, `--require wgpu`, `--no-train`,
        /// `--out`, `--seed`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Benchmarks: heads, backbones, data, identify.
    Bench {
        /// Which benchmark.
        #[arg(value_enum)]
        which: Bench,
        /// Extra backends to compile into the benchmark (where it compares backends);
        /// compare: `tch` adds a Burn LibTorch column beside flex.
        #[arg(long, value_enum, value_delimiter = ',')]
        backends: Vec<Backend>,
        /// Options of `bench compare`.
        #[command(flatten)]
        compare: CompareArgs,
    },
    /// The readers' mutation harnesses run longer, in release: generated RecordIO, .bin, IDX,
    /// LFW and image-folder inputs (visage-data's `fuzz_*` tests), npy and safetensors
    /// (visage-eval), .pth and safetensors weights (visage-backbones) and every config
    /// (visage-train), mutated; prints the cases tried per reader by outcome (ok / error /
    /// panic / hang) and fails on any panic or hang.
    Fuzz {
        /// Cases per reader (`cargo test` runs 300).
        #[arg(long, default_value_t = 20_000)]
        cases: usize,
        /// Seed of the generated inputs (a failing case is reproduced with the same seed).
        #[arg(long, default_value_t = 13)]
        seed: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bench {
    /// Forward + backward of ArcFace, CosFace, AdaCos at N = 128, d = 512, C up to 100k.
    Heads,
    /// Images/s of mobilefacenet, iresnet18 and iresnet50 on each backend compiled in.
    Backbones,
    /// Images/s decoded and augmented per core (RecordIO JPEG, synthetic identities).
    Data,
    /// 1:N identification GFLOP/s against a bare matmul of the same shape.
    Identify,
    /// Issue 14's table: training steps, ArcFace heads and 1:N search in visage (flex) beside
    /// the same work in PyTorch / FAISS, in one run; prints the table and writes it as JSON.
    Compare,
    /// Data-parallel images/s with 1, 2, 4 local workers (replicated and sharded head) and
    /// the class weights per worker for C = 100k, 1M (issue 17; a skeleton).
    Scale,
}

impl Bench {
    fn package(self) -> &'static str {
        match self {
            Bench::Heads => "visage-heads",
            Bench::Backbones => "visage-backbones",
            Bench::Data => "visage-data",
            Bench::Identify => "visage-eval",
            Bench::Compare => "visage-cli",
            Bench::Scale => "visage-train",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Bench::Heads => "heads",
            Bench::Backbones => "backbones",
            Bench::Data => "data",
            Bench::Identify => "identify",
            Bench::Compare => "compare",
            Bench::Scale => "scale",
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(mut cmd: Command) -> anyhow::Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Every backend's cargo feature: the build `cargo xtask test` checks and `cargo xtask
/// parity` runs (the same features, so the second reuses the first's build). `tch` is left
/// out: it needs libtorch, which CI machines do not have.
const ALL_BACKENDS: &str = "ndarray,flex,wgpu,cuda";

fn test(no_gpu_build: bool) -> anyhow::Result<()> {
    // One build: the workspace's tests, with the ndarray backend compiled into `visage` too.
    let mut t = cargo();
    t.args(["test", "--workspace", "--features", "visage-cli/ndarray"]);
    run(t)?;
    if !no_gpu_build {
        // The GPU backends must compile (and link) without a GPU or a CUDA toolkit; this is
        // also the `visage` that `cargo xtask parity` runs.
        let mut c = cargo();
        c.args([
            "build",
            "-p",
            "visage-cli",
            "--no-default-features",
            "--features",
            ALL_BACKENDS,
        ]);
        run(c)?;
    }
    Ok(())
}

/// `cargo run --release` of `visage SUBCOMMAND --backend B`, with only the backend's feature.
fn visage_release(backend: Backend, subcommand: &str) -> Command {
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "-p",
        "visage-cli",
        "--no-default-features",
        "--features",
        backend.feature(),
        "--",
        subcommand,
    ]);
    c.arg("--backend").arg(backend.feature());
    c
}

fn train(backend: Backend, config: PathBuf, extra: Vec<String>) -> anyhow::Result<()> {
    let mut c = visage_release(backend, "train");
    c.arg("--config").arg(config).args(extra);
    run(c)
}

fn zoo(backend: Backend, preset: String, extra: Vec<String>) -> anyhow::Result<()> {
    let mut c = visage_release(backend, "zoo");
    c.arg("--preset").arg(preset).args(extra);
    run(c)
}

fn eval(backend: Backend, args: Vec<String>) -> anyhow::Result<()> {
    let mut c = visage_release(backend, "eval");
    c.args(args);
    run(c)
}

#[allow(clippy::too_many_arguments)]
fn parity(
    config: PathBuf,
    backends: Vec<Backend>,
    steps: u64,
    report: Option<PathBuf>,
    all_heads: bool,
    release: bool,
    extra: Vec<String>,
) -> anyhow::Result<()> {
    let mut features: Vec<&str> = Vec::new();
    for b in &backends {
        if !features.contains(&b.feature()) {
            features.push(b.feature());
        }
    }
    let names = features.join(",");
    let mut c = cargo();
    c.arg("run");
    if release {
        c.arg("--release");
    }
    c.args([
        "-p",
        "visage-cli",
        "--no-default-features",
        "--features",
        &names,
    ]);
    c.args(["--", "parity", "--backends", &names, "--steps"])
        .arg(steps.to_string())
        .arg("--config")
        .arg(config);
    if let Some(r) = report {
        c.arg("--report").arg(r);
    }
    if all_heads {
        c.arg("--all-heads");
    }
    c.args(extra);
    run(c)
}

fn figures(backend: Backend, extra: Vec<String>) -> anyhow::Result<()> {
    let mut c = visage_release(backend, "figures");
    c.args(extra);
    run(c)
}

fn bench(which: Bench, backends: Vec<Backend>) -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["bench", "-p", which.package(), "--bench", which.name()]);
    if !backends.is_empty() {
        let features: Vec<&str> = backends.iter().map(|b| b.feature()).collect();
        c.arg("--features").arg(features.join(","));
    }
    run(c)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test { no_gpu_build } => test(no_gpu_build),
        Task::Train {
            backend,
            config,
            extra,
        } => train(backend, config, extra),
        Task::Zoo {
            backend,
            preset,
            extra,
        } => zoo(backend, preset, extra),
        Task::Eval { backend, args } => eval(backend, args),
        Task::Parity {
            config,
            backends,
            steps,
            report,
            all_heads,
            release,
            extra,
        } => parity(config, backends, steps, report, all_heads, release, extra),
        Task::Figures { backend, extra } => figures(backend, extra),
        Task::Bench {
            which: Bench::Compare,
            compare,
            backends,
        } => bench_compare(compare, backends),
        Task::Bench {
            which, backends, ..
        } => bench(which, backends),
        Task::Fuzz { cases, seed } => fuzz(cases, seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The readers whose mutation harness `cargo xtask fuzz` runs (test targets of visage-data).
const FUZZ_TARGETS: [&str; 5] = [
    "fuzz_recordio",
    "fuzz_bin_pack",
    "fuzz_idx",
    "fuzz_lfw",
    "fuzz_image_folder",
];

/// The mutation harnesses of the other crates: (package, test target).
const OTHER_FUZZ_TARGETS: [(&str, &str); 3] = [
    ("visage-eval", "hostile_readers"),
    ("visage-backbones", "hostile_weights"),
    ("visage-train", "fuzz_config"),
];

/// `cargo xtask fuzz`: the `fuzz_*` tests in release with `VISAGE_FUZZ_CASES=cases`, one
/// target after another (each prints its counts), then the counts of every reader again.
fn fuzz(cases: usize, seed: u64) -> anyhow::Result<()> {
    let report = std::env::temp_dir().join(format!("visage-fuzz-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report);
    let mut c = cargo();
    c.args(["test", "-p", "visage-data", "--release"]);
    for t in FUZZ_TARGETS {
        c.args(["--test", t]);
    }
    c.args(["--", "--nocapture", "--test-threads=1"]);
    c.env("VISAGE_FUZZ_CASES", cases.to_string())
        .env("VISAGE_FUZZ_SEED", seed.to_string())
        .env("VISAGE_FUZZ_REPORT", &report);
    let mut result = run(c);
    // The other crates' harnesses print their own counts (npy, safetensors, .pth, configs).
    for (package, target) in OTHER_FUZZ_TARGETS {
        let mut c = cargo();
        c.args(["test", "-p", package, "--release", "--test", target])
            .args(["--", "--nocapture", "--test-threads=1"])
            .env("VISAGE_FUZZ_CASES", cases.to_string());
        result = result.and(run(c));
    }
    eprintln!("xtask fuzz: {cases} cases per reader, seed {seed}:");
    for t in FUZZ_TARGETS {
        let reader = t.trim_start_matches("fuzz_").replace("bin_pack", "bin");
        match std::fs::read_to_string(report.join(format!("{reader}.txt"))) {
            Ok(line) => eprint!("  {line}"),
            Err(_) => eprintln!("  fuzz {reader}: no report (did not run to the end)"),
        }
    }
    let _ = std::fs::remove_dir_all(&report);
    result
}

/// Options of `cargo xtask bench compare` (ignored by the other benchmarks).
#[derive(clap::Args, Debug)]
struct CompareArgs {
    /// compare: the Python with torch, faiss-cpu and numpy for the PyTorch / FAISS side
    /// (default: $VISAGE_BENCH_PYTHON, else /var/cache/visage-bench-venv if present, else
    /// python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// compare: create a virtual environment (at --venv) and pip-install torch (CPU wheel),
    /// faiss-cpu and numpy into it first (unless they import already), then use it.
    #[arg(long)]
    setup: bool,
    /// compare: where --setup creates the environment (default: TARGET/visage-bench-venv).
    #[arg(long)]
    venv: Option<PathBuf>,
    /// compare: a smaller run that fits in a few minutes (fewer steps, 100k distractors).
    #[arg(long)]
    quick: bool,
    /// compare: only these rows (sphere4, lenetpp, iresnet18, head10k, head100k, search).
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// compare: distractors of the search row (default 1,000,000; 100,000 with --quick).
    #[arg(long)]
    distractors: Option<usize>,
    /// compare: the JSON report (default runs/bench/compare.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// compare: visage rows only (no Python is run).
    #[arg(long)]
    no_peer: bool,
}

/// The venv that the project's machines carry with torch, faiss-cpu and numpy.
const SHARED_BENCH_VENV: &str = "/var/cache/visage-bench-venv";

/// `cargo xtask bench compare`: picks (or creates) the Python of the peer side and runs the
/// `compare` bench of visage-cli (`crates/visage-cli/benches/compare.rs`), which measures
/// each row in visage and then with `bench/compare/peers.py`, prints the table and writes
/// the JSON. Not part of CI.
fn bench_compare(args: CompareArgs, backends: Vec<Backend>) -> anyhow::Result<()> {
    // flex is always built (the table's visage column); tch adds its column. The others
    // have no column in this table.
    let mut features = vec!["flex"];
    for b in backends {
        match b {
            Backend::Flex => {}
            Backend::Tch => features.push("tch"),
            other => bail!(
                "bench compare: no `{}` column (flex always, `--backends tch` adds LibTorch)",
                other.feature()
            ),
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has a parent folder")?
        .to_path_buf();
    let python: Option<PathBuf> = if args.no_peer {
        None
    } else if args.setup {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let venv = args
            .venv
            .clone()
            .unwrap_or_else(|| target.join("visage-bench-venv"));
        let venv = if venv.is_absolute() {
            venv
        } else {
            root.join(venv)
        };
        let py = venv.join("bin/python");
        if !py.exists() {
            let base = args.python.clone().unwrap_or_else(|| "python3".into());
            let mut c = Command::new(base);
            c.arg("-m").arg("venv").arg(&venv);
            run(c)?;
        }
        let ready = Command::new(&py)
            .args(["-c", "import torch, faiss, numpy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            eprintln!(
                "xtask: {} has torch, faiss and numpy already",
                venv.display()
            );
        } else {
            let mut c = Command::new(&py);
            c.args(["-m", "pip", "install", "--upgrade", "pip"]);
            run(c)?;
            // The CPU wheel of torch (the default wheel on Linux carries CUDA, gigabytes more).
            let mut c = Command::new(&py);
            c.args([
                "-m",
                "pip",
                "install",
                "torch",
                "--index-url",
                "https://download.pytorch.org/whl/cpu",
            ]);
            run(c)?;
            let mut c = Command::new(&py);
            c.args(["-m", "pip", "install", "faiss-cpu", "numpy"]);
            run(c)?;
        }
        Some(py)
    } else if let Some(p) = args.python.clone() {
        Some(p)
    } else if let Some(p) = std::env::var_os("VISAGE_BENCH_PYTHON").filter(|p| !p.is_empty()) {
        Some(PathBuf::from(p))
    } else if PathBuf::from(SHARED_BENCH_VENV).join("bin/python").exists() {
        Some(PathBuf::from(SHARED_BENCH_VENV).join("bin/python"))
    } else {
        Some(PathBuf::from("python3"))
    };
    let mut c = cargo();
    c.args([
        "bench",
        "-p",
        "visage-cli",
        "--features",
        &features.join(","),
        "--bench",
        "compare",
        "--",
    ]);
    match &python {
        Some(p) => {
            c.arg("--python").arg(p);
        }
        None => {
            c.args(["--no-peer", "--no-peer given to cargo xtask bench compare"]);
        }
    }
    if args.quick {
        c.arg("--quick");
    }
    if !args.rows.is_empty() {
        c.arg("--rows").arg(args.rows.join(","));
    }
    if let Some(n) = args.distractors {
        c.arg("--distractors").arg(n.to_string());
    }
    let out = args
        .out
        .map(|o| if o.is_absolute() { o } else { root.join(o) })
        .unwrap_or_else(|| root.join("runs/bench/compare.json"));
    c.arg("--out").arg(out);
    run(c)
}
