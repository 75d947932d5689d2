//! `cargo xtask bench compare` (= `cargo bench -p visage-cli --bench compare -- ARGS`):
//! issue 14's table, visage beside PyTorch / FAISS in one run on one machine.
//!
//! Rows (each run by visage, then by its peer, `bench/compare/peers.py`, before the next row,
//! so both sides of a row see the same machine state):
//! 1. `sphere4` + ArcFace (100 classes), batch 64 at 32x32, SGD: training images/s;
//! 2. LeNets++ 2-D + softmax (10 classes), batch 64 at 28x28 grey, AdamW: images/s;
//! 3. IResNet-18 + ArcFace (1,000 classes), batch 32 at 112x112, SGD: images/s;
//! 4. ArcFace forward + backward, N 128, d 512, C 10k: ms;
//! 5. the same at C 100k: ms;
//! 6. 1:N search, 1,000 probes x 1M distractors x 512, top 10: seconds, `visage identify` as
//!    a user runs it (its process, `.npy` files read included) against FAISS `IndexFlatIP`
//!    over the same files (read, L2-normalised, added, searched). FAISS's wheel carries
//!    OpenBLAS: where the machine sets `OPENBLAS_CORETYPE` / `OPENBLAS_L2_SIZE`, FAISS runs
//!    once without them (as every peer process) and once with them, and the faster run is the
//!    peer's figure (both in the JSON).
//!
//! The visage training rows build the model from a `TrainConfig` (TOML below) with
//! `visage_train::init_model` and run the step of `visage_train::trainer::train` on a fixed
//! random batch already in memory (no data loading): forward, head loss, loss read back to the
//! host and checked finite, backward, gradients split per group, `GroupOptimizer` steps at
//! the schedule's learning rate, `after_step`. The peer gets the same parameters as JSON
//! (backbone family and depth, input, embedding, head, scale, margin, classes, batch,
//! optimiser values in force, warm-up and timed steps, threads). Figures are medians of the
//! timed steps on both sides.
//!
//! Bare baselines kept per row (as the existing benches): train rows, the step's GFLOP/s
//! (3 x the backbone's counted forward FLOPs per image + 6 N C d for the head) against flex's
//! 1024^3 matmul; head rows, the head's 6 N C d FLOPs against a bare `[N, d] x [d, C]` flex
//! matmul; search, the command's 2 Np Nd d FLOPs against a bare tiled `matrixmultiply` sgemm
//! (256 x 2048 tiles, output discarded), as `cargo xtask bench identify`.
//!
//! Arguments: `--quick` (fewer steps, 100k distractors), `--rows sphere4,lenetpp,iresnet18,
//! head10k,head100k,search`, `--out PATH` (JSON, written to a temporary file and renamed),
//! `--python PATH` (the peer's interpreter; none: visage rows alone), `--no-peer REASON`,
//! `--work DIR` (scratch for the search files, default the system temp dir),
//! `--distractors N`, `--threads N` (the peer's threads, default all logical CPUs: what
//! rayon uses on the visage side).
//!
//! With the `tch` feature (Burn's LibTorch backend, off by default: `cargo xtask bench compare
//! --backends tch`, README "LibTorch backend"), the train and head rows also run on
//! `Autodiff<LibTorch<f32>>` (CPU), between flex and the peer, with libtorch's intra-op
//! threads set to `--threads` as the peer's; the table gains a tch column and its ratio.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use rayon::prelude::*;
use serde_json::{json, Value};
use visage_backbones::{Backbone, BackboneKind};
use visage_heads::{Head, HeadConfig, HeadKind, HeadState};
use visage_train::optim::GroupOptimizer;
use visage_train::schedule::learning_rate;
use visage_train::{init_model, TrainConfig, Trainee};

type B = Autodiff<Flex>;
type I = Flex;
#[cfg(feature = "tch")]
type T = Autodiff<burn::backend::LibTorch<f32>>;

/// `Some($f::<T>(args, device))` (Burn's LibTorch backend on the CPU) where the `tch`
/// feature is compiled in, else `None` (of type `Option<$ty>`).
macro_rules! on_tch {
    ($ty:ty; $f:ident($($arg:expr),*)) => {{
        #[cfg(feature = "tch")]
        let v: Option<$ty> =
            Some($f::<T>($($arg,)* burn::backend::libtorch::LibTorchDevice::Cpu));
        #[cfg(not(feature = "tch"))]
        let v: Option<$ty> = None;
        v
    }};
}

const ROWS: [&str; 6] = [
    "sphere4",
    "lenetpp",
    "iresnet18",
    "head10k",
    "head100k",
    "search",
];

struct Opts {
    quick: bool,
    rows: Vec<String>,
    out: PathBuf,
    python: Option<String>,
    no_peer: Option<String>,
    work: PathBuf,
    distractors: Option<usize>,
    threads: usize,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parse_args() -> Opts {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Opts {
        quick: false,
        rows: ROWS.iter().map(|s| s.to_string()).collect(),
        out: repo_root().join("runs/bench/compare.json"),
        python: None,
        no_peer: None,
        work: std::env::temp_dir(),
        distractors: None,
        threads,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--rows" => {
                o.rows = value("--rows")
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                for r in &o.rows {
                    assert!(
                        ROWS.contains(&r.as_str()),
                        "--rows: unknown row `{r}` (rows: {})",
                        ROWS.join(",")
                    );
                }
            }
            "--out" => o.out = PathBuf::from(value("--out")),
            "--python" => o.python = Some(value("--python")),
            "--no-peer" => o.no_peer = Some(value("--no-peer")),
            "--work" => o.work = PathBuf::from(value("--work")),
            "--distractors" => {
                o.distractors = Some(value("--distractors").parse().expect("--distractors N"))
            }
            "--threads" => o.threads = value("--threads").parse().expect("--threads N"),
            other => panic!("unknown argument `{other}`"),
        }
    }
    o
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

// ----------------------------------------------------------------------------------------
// The machine.

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd: Vec<&str> = ["avx512f", "avx512bw", "avx512vl", "avx2", "fma"]
        .into_iter()
        .filter(|f| has(f))
        .collect();
    json!({
        "cpu_model": field("model name").unwrap_or_else(|| "unknown".into()),
        "logical_cpus": cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
        "available_parallelism": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_cores_per_socket": field("cpu cores"),
        "simd": simd,
        "memory_total": std::fs::read_to_string("/proc/meminfo").ok()
            .and_then(|m| m.lines().next().map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
    })
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (clock ticks of
/// 1/100 s); with wall time it tells how much of the machine a measurement got.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ----------------------------------------------------------------------------------------
// The peer (PyTorch / FAISS) process.

struct Peer {
    python: String,
    script: PathBuf,
    info: Value,
    torch: bool,
    faiss: bool,
}

/// The OpenBLAS settings some machines export (torch uses MKL; numpy and FAISS's wheel use
/// OpenBLAS).
const OPENBLAS_ENV: [&str; 2] = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

fn peer_command(python: &str, script: &Path) -> Command {
    let mut c = Command::new(python);
    c.arg(script);
    // The machine sets these for OpenBLAS on some CPUs; the peer runs without them (only in
    // this child process), and records which BLAS and threads torch uses.
    for k in OPENBLAS_ENV {
        c.env_remove(k);
    }
    c
}

fn run_peer_json(mut c: Command) -> Result<Value, String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start {:?}: {e}", c.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "peer failed ({}): {}",
            out.status,
            tail.join(" | ")
        ));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("peer printed no JSON ({e}): {line}"))
}

fn open_peer(o: &Opts) -> Result<Peer, String> {
    if let Some(reason) = &o.no_peer {
        return Err(reason.clone());
    }
    let python = o
        .python
        .clone()
        .ok_or_else(|| "no Python given (--python)".to_string())?;
    let script = repo_root().join("bench/compare/peers.py");
    if !script.is_file() {
        return Err(format!("{} is missing", script.display()));
    }
    let mut c = peer_command(&python, &script);
    c.arg("info");
    let info = run_peer_json(c).map_err(|e| format!("{python}: {e}"))?;
    let missing: Vec<String> = info["missing"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let torch = info.get("torch").is_some();
    let faiss = info.get("faiss").is_some() && info.get("numpy").is_some();
    if !torch && !faiss {
        return Err(format!(
            "{python} has neither torch nor faiss: {}",
            missing.join("; ")
        ));
    }
    Ok(Peer {
        python,
        script,
        info,
        torch,
        faiss,
    })
}

impl Peer {
    fn run(&self, spec: &Value) -> Result<Value, String> {
        self.run_env(spec, false)
    }

    /// `keep_openblas_env`: run with the machine's OpenBLAS variables as they are set.
    fn run_env(&self, spec: &Value, keep_openblas_env: bool) -> Result<Value, String> {
        let kind = spec["kind"].as_str().unwrap_or("");
        if kind == "search" && !self.faiss {
            return Err("faiss or numpy is not importable in the peer's Python".into());
        }
        if kind != "search" && !self.torch {
            return Err("torch is not importable in the peer's Python".into());
        }
        let mut c = peer_command(&self.python, &self.script);
        if keep_openblas_env {
            for k in OPENBLAS_ENV {
                if let Some(v) = std::env::var_os(k) {
                    c.env(k, v);
                }
            }
        }
        c.arg("run").arg("--spec").arg(spec.to_string());
        run_peer_json(c)
    }
}

// ----------------------------------------------------------------------------------------
// Bare baselines.

/// GFLOP/s of flex's `[n, n] x [n, n]` matmul, n = 1024 (the backbones bench's baseline).
fn square_matmul_gflops<K: Backend>(device: &K::Device) -> f64 {
    let n = 1024;
    let a = Tensor::<K, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<K, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let _ = a.clone().matmul(b.clone()).sum().into_scalar();
    let reps = 5;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let _ = a.clone().matmul(b.clone()).sum().into_scalar();
        times.push(t.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / median(&times) / 1e9
}

// ----------------------------------------------------------------------------------------
// Training rows.

struct TrainRow {
    id: &'static str,
    work: &'static str,
    toml: String,
    classes: usize,
    warmup: usize,
    steps: usize,
}

fn train_rows(quick: bool) -> Vec<TrainRow> {
    // (warm-up, timed) steps, full / quick.
    let s = |full: (usize, usize), q: (usize, usize)| if quick { q } else { full };
    let common = "[data]\nkind = \"synthetic\"\nidentities = 2\nimages_per_identity = 2\n\
                  [schedule]\nkind = \"constant\"\n";
    let (w1, n1) = s((3, 20), (2, 5));
    let (w2, n2) = s((3, 20), (2, 5));
    let (w3, n3) = s((1, 3), (1, 1));
    vec![
        TrainRow {
            id: "sphere4",
            work: "train step, sphere4 + ArcFace (100 classes), batch 64 at 32x32, SGD",
            // configs/synth-arcface.toml's model and optimiser (s 16, m 0.3 for 100 classes).
            toml: format!(
                "{common}[backbone]\nkind = \"sphere4\"\ninput_size = [32, 32]\nembedding_dim = 128\n\
                 [head]\nkind = \"arcface\"\nscale = 16.0\nmargin = 0.3\n\
                 [optim]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.9\nweight_decay = 5e-4\n\
                 [train]\nsteps = {}\nbatch_size = 64\nseed = 0\n",
                w1 + n1
            ),
            classes: 100,
            warmup: w1,
            steps: n1,
        },
        TrainRow {
            id: "lenetpp",
            work: "train step, LeNets++ 2-D + softmax (10 classes), batch 64 at 28x28, AdamW",
            // AdamW with PyTorch's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, decay 1e-2).
            toml: format!(
                "{common}[backbone]\nkind = \"lenet_pp\"\nin_channels = 1\nembedding_dim = 2\n\
                 [head]\nkind = \"softmax\"\n\
                 [optim]\nkind = \"adamw\"\n\
                 [train]\nsteps = {}\nbatch_size = 64\nseed = 0\n",
                w2 + n2
            ),
            classes: 10,
            warmup: w2,
            steps: n2,
        },
        TrainRow {
            id: "iresnet18",
            work: "train step, IResNet-18 + ArcFace (1,000 classes), batch 32 at 112x112, SGD",
            // InsightFace's hyper-parameters (s 64, m 0.5; lr 0.1, momentum 0.9, decay 5e-4).
            toml: format!(
                "{common}[backbone]\nkind = \"iresnet18\"\ninput_size = [112, 112]\n\
                 [head]\nkind = \"arcface\"\nscale = 64.0\nmargin = 0.5\n\
                 [optim]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.9\nweight_decay = 5e-4\n\
                 [train]\nsteps = {}\nbatch_size = 32\nseed = 0\n",
                w3 + n3
            ),
            classes: 1000,
            warmup: w3,
            steps: n3,
        },
    ]
}

/// The peer's spec for a training row, from the config's values in force.
fn train_spec(row: &TrainRow, config: &TrainConfig, threads: usize) -> Value {
    let b = &config.backbone;
    let kind = b.backbone_kind().expect("backbone");
    let (family, depth) = match kind {
        BackboneKind::SphereNet(d) => ("sphere_net", Some(d)),
        BackboneKind::LeNetPP => ("lenet_pp", None),
        BackboneKind::IResNet(d) => ("iresnet", Some(d)),
        BackboneKind::MobileFaceNet => ("mobilefacenet", None),
    };
    let dim = b.embedding_dim().expect("embedding_dim");
    config.head.spec.validate(row.classes, dim).expect("head");
    let head = match config.head.spec.clone() {
        HeadConfig::ArcFace(c) => {
            assert!(!c.easy_margin && !c.detach_margin, "peer has th/mm only");
            json!({"kind": "arcface", "classes": row.classes, "dim": dim,
                   "scale": c.scale, "margin": c.margin})
        }
        HeadConfig::Softmax(c) => {
            assert!(!c.bias, "peer softmax has no bias");
            json!({"kind": "softmax", "classes": row.classes, "dim": dim})
        }
        other => panic!("no peer for head {other:?}"),
    };
    let o = &config.optim;
    let optim = match o.kind {
        visage_train::config::OptimKind::Sgd => json!({
            "kind": "sgd", "lr": o.lr(), "head_lr": o.head_lr(),
            "momentum": o.momentum.unwrap_or(0.9), "nesterov": o.nesterov.unwrap_or(false),
            "weight_decay": o.weight_decay(), "head_weight_decay": o.head_weight_decay(),
        }),
        visage_train::config::OptimKind::Adamw => json!({
            "kind": "adamw", "lr": o.lr(), "head_lr": o.head_lr(),
            "betas": o.betas.unwrap_or([0.9, 0.999]), "eps": o.eps.unwrap_or(1e-8),
            "weight_decay": o.weight_decay(), "head_weight_decay": o.head_weight_decay(),
        }),
    };
    json!({
        "kind": "train",
        "threads": threads,
        "batch": config.train.batch_size,
        "warmup": row.warmup,
        "steps": row.steps,
        "seed": config.train.seed,
        "backbone": {
            "family": family, "depth": depth, "embedding_dim": dim,
            "in_channels": b.in_channels().expect("in_channels"),
            "input_size": b.input_size().expect("input_size"),
            "dropout": b.dropout.unwrap_or(0.0),
        },
        "head": head,
        "optim": optim,
    })
}

/// `[name, numel, mean, std]` of every parameter at initialisation, in module order (BatchNorm
/// running statistics left out, as PyTorch keeps them as buffers).
struct InitStats {
    path: Vec<String>,
    out: Vec<(String, usize, f64, f64)>,
}

impl<K: Backend> ModuleVisitor<K> for InitStats {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<K, D>>) {
        if matches!(
            self.path.last().map(String::as_str),
            Some("running_mean") | Some("running_var")
        ) {
            return;
        }
        let v: Vec<f64> = param
            .val()
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .unwrap_or_default();
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        self.out
            .push((self.path.join("."), v.len(), mean, var.sqrt()));
    }
}

/// Compares the two sides' initialisations tensor by tensor: both lists sorted by (numel,
/// std, mean) and paired; the largest relative difference of the standard deviations of the
/// random tensors (numel >= 256) and the largest difference of the means of the constant ones.
fn compare_init(visage: &[(String, usize, f64, f64)], peer: &Value) -> Value {
    let mut a: Vec<(usize, f64, f64)> = visage.iter().map(|t| (t.1, t.3, t.2)).collect();
    let mut b: Vec<(usize, f64, f64)> = peer
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r[1].as_u64().unwrap_or(0) as usize,
                        r[3].as_f64().unwrap_or(f64::NAN),
                        r[2].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let key = |x: &(usize, f64, f64), y: &(usize, f64, f64)| {
        x.0.cmp(&y.0)
            .then(x.1.total_cmp(&y.1))
            .then(x.2.total_cmp(&y.2))
    };
    a.sort_by(key);
    b.sort_by(key);
    let same_shapes = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0);
    let mut std_diff: f64 = 0.0;
    let mut const_diff: f64 = 0.0;
    for (x, y) in a.iter().zip(&b) {
        if x.1 == 0.0 && y.1 == 0.0 {
            const_diff = const_diff.max((x.2 - y.2).abs());
        } else if x.0 >= 256 {
            std_diff = std_diff.max((x.1 - y.1).abs() / x.1.max(y.1));
        }
    }
    json!({
        "tensors_visage": a.len(),
        "tensors_peer": b.len(),
        "same_sizes": same_shapes,
        "max_rel_std_diff_random_tensors": std_diff,
        "max_mean_diff_constant_tensors": const_diff,
    })
}

/// Counted FLOPs of one training step: 3 x the backbone's forward (2 per MAC) per image, plus
/// 6 N C d for a class-weight head's three matmuls.
fn train_step_flops(config: &TrainConfig, classes: usize) -> f64 {
    let n = config.train.batch_size as f64;
    let macs = config.backbone.macs().unwrap_or(0) as f64;
    let d = config.backbone.embedding_dim().unwrap_or(0) as f64;
    n * 3.0 * 2.0 * macs + 6.0 * n * classes as f64 * d
}

fn visage_train<B: AutodiffBackend>(
    row: &TrainRow,
    config: &TrainConfig,
    bare_gflops: f64,
    device: B::Device,
) -> Value {
    let mut model: Trainee<B> = init_model(config, row.classes, &device).expect("init_model");
    let mut init = InitStats {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.backbone.visit(&mut init);
    model.head.visit(&mut init);
    let mut opt_backbone =
        GroupOptimizer::<Backbone<B>, B>::new(&config.optim, config.optim.weight_decay());
    let mut opt_head =
        GroupOptimizer::<Head<B>, B>::new(&config.optim, config.optim.head_weight_decay());
    let mut head_state = HeadState::default();
    let n = config.train.batch_size;
    let [h, w] = config.backbone.input_size().expect("input_size");
    let c = config.backbone.in_channels().expect("in_channels");
    let images = Tensor::<B, 4>::random([n, c, h, w], Distribution::Uniform(-1.0, 1.0), &device);
    let labels =
        Tensor::<B, 1, Int>::random([n], Distribution::Uniform(0.0, row.classes as f64), &device);
    let total = (row.warmup + row.steps) as u64;
    let mut times = Vec::new();
    let mut losses = Vec::new();
    let (mut cpu0, mut wall0) = (cpu_seconds(), Instant::now());
    for step in 0..total {
        if step as usize == row.warmup {
            (cpu0, wall0) = (cpu_seconds(), Instant::now());
        }
        let t = Instant::now();
        // The step of visage_train::trainer::train, on a batch already in memory.
        let embeddings: Tensor<B, 2> = model.backbone.forward(images.clone());
        let out = model
            .head
            .forward(embeddings.clone(), labels.clone(), &mut head_state);
        let loss = out.loss;
        let loss_value: f64 = loss
            .clone()
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .map(|v| v[0])
            .unwrap_or(f64::NAN);
        assert!(
            loss_value.is_finite(),
            "{}: non-finite loss at step {step}",
            row.id
        );
        let mut grads = loss.backward();
        let g_backbone = GradientsParams::from_module(&mut grads, &model.backbone);
        let g_head = GradientsParams::from_module(&mut grads, &model.head);
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
            .after_step(features, labels.clone());
        model = Trainee {
            backbone,
            head,
            center,
        };
        head_state.advance();
        let secs = t.elapsed().as_secs_f64();
        if step as usize >= row.warmup {
            times.push(secs);
            losses.push(loss_value);
        }
    }
    let cpu_timed = cpu_seconds() - cpu0;
    let cpu_per_wall = cpu_timed / wall0.elapsed().as_secs_f64();
    let parameters = model.backbone.num_params() + model.head.num_params();
    let med = median(&times);
    let flops = train_step_flops(config, row.classes);
    let gflops = flops / med / 1e9;
    json!({
        "value": n as f64 / med,
        "unit": "images/s",
        "step_seconds": times,
        "median_step_s": med,
        "mean_step_s": times.iter().sum::<f64>() / times.len().max(1) as f64,
        "cpu_per_wall": cpu_per_wall,
        // CPU seconds (user + system, all threads) per timed step: on a shared machine the
        // figure that A/B comparisons of builds can trust (wall time follows the load).
        "cpu_step_s": cpu_timed / times.len().max(1) as f64,
        "first_loss": losses.first(),
        "last_loss": losses.last(),
        // Burn's num_params: parameters plus BatchNorm running statistics (the peer reports
        // the two apart, `parameters` + `running_stats`: a check that the layers match).
        "parameters": parameters,
        "init_stats": init.out.iter().map(|(name, n, mean, std)| json!([name, n, mean, std])).collect::<Vec<_>>(),
        "step_gflop": flops / 1e9,
        "gflops": gflops,
        "bare": {"what": "flex matmul 1024^3", "gflops": bare_gflops, "ratio": gflops / bare_gflops},
    })
}

// ----------------------------------------------------------------------------------------
// Head rows.

fn visage_head<B: AutodiffBackend>(
    classes: usize,
    warmup: usize,
    steps: usize,
    device: B::Device,
) -> (Value, f64, f64) {
    let (n, d) = (128usize, 512usize);
    let config = HeadConfig::new(HeadKind::ArcFace);
    let (scale, margin) = match &config {
        HeadConfig::ArcFace(c) => (c.scale, c.margin),
        _ => unreachable!(),
    };
    <B as Backend>::seed(&device, 0);
    let head: Head<B> = config.init(classes, d, &device).expect("head");
    let x_inner =
        Tensor::<B::InnerBackend, 2>::random([n, d], Distribution::Normal(0.0, 1.0), &device);
    let labels =
        Tensor::<B, 1, Int>::random([n], Distribution::Uniform(0.0, classes as f64), &device);
    let weight = head.class_tensor().expect("class weights");
    let once = || {
        let x = Tensor::<B, 2>::from_inner(x_inner.clone()).require_grad();
        let out = head.forward(x.clone(), labels.clone(), &mut HeadState::default());
        let grads = out.loss.backward();
        // Both gradients, as the peer's backward computes them.
        let gx = x.grad(&grads).expect("grad of x");
        let gw = weight.grad(&grads).expect("grad of W");
        std::hint::black_box((gx.into_data(), gw.into_data()));
    };
    for _ in 0..warmup {
        once();
    }
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let times: Vec<f64> = (0..steps)
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let cpu_per_wall = (cpu_seconds() - cpu0) / wall0.elapsed().as_secs_f64();
    // Bare baseline: one [N, d] x [d, C] matmul (2 N C d flops), as the heads bench.
    let wt = weight.inner().transpose();
    let mut mm = Vec::new();
    for i in 0..steps.max(2) + 1 {
        let t = Instant::now();
        std::hint::black_box(x_inner.clone().matmul(wt.clone()).into_data());
        if i > 0 {
            mm.push(t.elapsed().as_secs_f64());
        }
    }
    let (med, mm) = (median(&times), median(&mm));
    let flops = (n * classes * d) as f64;
    let (gflops, mm_gflops) = (6.0 * flops / med / 1e9, 2.0 * flops / mm / 1e9);
    (
        json!({
            "value": med * 1e3,
            "unit": "ms",
            "times_s": times,
            "median_s": med,
            "cpu_per_wall": cpu_per_wall,
            "gflops": gflops,
            "bare": {"what": "the backend's matmul [N, d] x [d, C]", "seconds": mm, "gflops": mm_gflops,
                     "ratio": gflops / mm_gflops},
        }),
        scale,
        margin,
    )
}

// ----------------------------------------------------------------------------------------
// Search row.

/// Xorshift-based uniform values in [-1, 1), as the identify bench.
fn random_matrix(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut data = vec![0f32; rows * dim];
    data.par_chunks_mut(dim * 1024)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut s = seed ^ ((c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for v in chunk {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *v = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            }
        });
    data
}

/// The bare tiled sgemm of the identify bench: 256 x 2048 output tiles reused per thread.
fn tiled_matmul(p: &[f32], d: &[f32], nd: usize, dim: usize) -> f32 {
    const PB: usize = 256;
    const DB: usize = 2048;
    p.par_chunks(PB * dim)
        .map(|a| {
            let rows = a.len() / dim;
            let mut c = vec![0f32; rows * DB];
            let mut acc = 0f32;
            for d0 in (0..nd).step_by(DB) {
                let cols = DB.min(nd - d0);
                // SAFETY: a is rows x dim, the block of d^T is dim x cols, c holds rows x cols.
                unsafe {
                    matrixmultiply::sgemm(
                        rows,
                        dim,
                        cols,
                        1.0,
                        a.as_ptr(),
                        dim as isize,
                        1,
                        d[d0 * dim..].as_ptr(),
                        1,
                        dim as isize,
                        0.0,
                        c.as_mut_ptr(),
                        cols as isize,
                        1,
                    );
                }
                acc += c[0];
            }
            acc
        })
        .sum::<f32>()
}

/// Writes a C-order `.npy` (format 1.0) of `shape` with `descr`, streaming `data`.
fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(data)?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern is a valid u8; the slice covers
    // exactly the vector's memory (little-endian on every target this bench runs on).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

struct SearchFiles {
    dir: PathBuf,
    probes: PathBuf,
    labels: PathBuf,
    distractors: PathBuf,
}

impl Drop for SearchFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the search row's files; returns them with the bare tiled sgemm's seconds.
fn search_files(work: &Path, np: usize, nd: usize, dim: usize) -> (SearchFiles, f64) {
    let dir = work.join(format!("visage-bench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("work dir");
    let files = SearchFiles {
        probes: dir.join("probes.npy"),
        labels: dir.join("probe_labels.npy"),
        distractors: dir.join("distractors.npy"),
        dir,
    };
    let probes = random_matrix(np, dim, 1);
    let distractors = random_matrix(nd, dim, 2);
    // 250 identities x 4 images, as the identify bench.
    let labels: Vec<i64> = (0..np as i64).map(|i| i / 4).collect();
    let t = Instant::now();
    std::hint::black_box(tiled_matmul(&probes, &distractors, nd, dim));
    let bare = t.elapsed().as_secs_f64();
    write_npy(&files.probes, "<f4", &[np, dim], f32_bytes(&probes)).expect("write probes");
    let label_bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    write_npy(&files.labels, "<i8", &[np], &label_bytes).expect("write labels");
    write_npy(
        &files.distractors,
        "<f4",
        &[nd, dim],
        f32_bytes(&distractors),
    )
    .expect("write distractors");
    (files, bare)
}

fn visage_search(files: &SearchFiles, flops: f64, bare: f64) -> Value {
    let report = files.dir.join("report.json");
    let mut c = Command::new(env!("CARGO_BIN_EXE_visage"));
    c.arg("identify")
        .arg("--probes")
        .arg(&files.probes)
        .arg("--probe-labels")
        .arg(&files.labels)
        .arg("--distractors")
        .arg(&files.distractors)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null());
    let t = Instant::now();
    let out = c.output();
    let secs = t.elapsed().as_secs_f64();
    match &out {
        Ok(o) if o.status.success() => {}
        // The row reports the failure; the other rows' figures are kept.
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return json!({"value": null, "error": format!("visage identify failed ({}): {tail}", o.status)});
        }
        Err(e) => return json!({"value": null, "error": format!("could not start visage: {e}")}),
    }
    let rank1 = std::fs::read_to_string(&report)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .map(|r| r["rank"]["1"].clone());
    let gflops = flops / secs / 1e9;
    let bare_gflops = flops / bare / 1e9;
    json!({
        "value": secs,
        "unit": "s",
        "command": "visage identify --probes P --probe-labels L --distractors D --report R (process wall time, .npy read included)",
        "rank1": rank1,
        "gflops": gflops,
        "bare": {"what": "matrixmultiply sgemm, 256x2048 tiles, output discarded (in memory)",
                 "seconds": bare, "gflops": bare_gflops, "ratio": gflops / bare_gflops},
    })
}

// ----------------------------------------------------------------------------------------
// The table.

struct Row {
    id: String,
    work: String,
    unit: &'static str,
    higher_is_better: bool,
    visage: Value,
    /// The same work on Burn's LibTorch backend (`tch` feature; train and head rows).
    tch: Option<Value>,
    peer: Result<Value, String>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.ratio_of(&self.visage)
    }

    fn tch_ratio(&self) -> Option<f64> {
        self.ratio_of(self.tch.as_ref()?)
    }

    /// `side`'s speed over the peer's.
    fn ratio_of(&self, side: &Value) -> Option<f64> {
        let v = side["value"].as_f64()?;
        let p = self.peer.as_ref().ok()?["value"].as_f64()?;
        Some(if self.higher_is_better { v / p } else { p / v })
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "work": self.work,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "visage": self.visage,
            "peer": match &self.peer { Ok(v) => v.clone(), Err(_) => Value::Null },
            "peer_error": self.peer.as_ref().err(),
            "ratio_visage_speed_over_peer": self.ratio(),
            "visage_tch": self.tch,
            "ratio_visage_tch_speed_over_peer": self.tch_ratio(),
            "bare_ratio": self.visage["bare"]["ratio"],
        })
    }
}

fn fmt_value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(x) => match unit {
            "images/s" if x >= 100.0 => format!("{x:.0} img/s"),
            "images/s" => format!("{x:.1} img/s"),
            "ms" => format!("{x:.1} ms"),
            "s" => format!("{x:.2} s"),
            _ => format!("{x:.3} {unit}"),
        },
    }
}

fn print_row(r: &Row, peer_available: bool, tch: bool) {
    let v = r.visage["value"].as_f64();
    let p = r.peer.as_ref().ok().and_then(|p| p["value"].as_f64());
    let visage_cell = match r.visage["error"].as_str() {
        Some(e) => format!("- ({e})"),
        None => fmt_value(v, r.unit),
    };
    let bare = r.visage["bare"]["ratio"]
        .as_f64()
        .map_or("-".into(), |b| format!("{b:.2}"));
    let tch_cells = if tch {
        format!(
            " {} | {} |",
            fmt_value(r.tch.as_ref().and_then(|t| t["value"].as_f64()), r.unit),
            r.tch_ratio().map_or("-".into(), |x| format!("{x:.2}"))
        )
    } else {
        String::new()
    };
    println!(
        "| {} | {} | {} | {} |{} {} |",
        r.work,
        match &r.peer {
            Ok(_) => fmt_value(p, r.unit),
            // The reason is printed once under the table when there is no peer at all.
            Err(_) if !peer_available => "-".into(),
            Err(e) => format!("- ({e})"),
        },
        visage_cell,
        r.ratio().map_or("-".into(), |x| format!("{x:.2}")),
        tch_cells,
        bare
    );
}

fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The `visage` binary's allocator (see `src/main.rs`), so the bench measures what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let o = parse_args();
    let started = Instant::now();
    let machine = machine();
    let load_start = loadavg();
    let peer = open_peer(&o);
    let peer_note = match &peer {
        Ok(p) => format!(
            "PyTorch {} / FAISS {} ({}), {} threads",
            p.info["torch"]["version"].as_str().unwrap_or("-"),
            p.info["faiss"]["version"].as_str().unwrap_or("-"),
            p.python,
            o.threads
        ),
        Err(e) => format!("no peer: {e}"),
    };
    let rayon_threads = rayon::current_num_threads();
    // libtorch's intra-op threads, as the peer's `torch.set_num_threads`.
    #[cfg(feature = "tch")]
    tch::set_num_threads(o.threads as i32);
    #[cfg(feature = "tch")]
    let tch_threads: Option<i32> = Some(tch::get_num_threads());
    #[cfg(not(feature = "tch"))]
    let tch_threads: Option<i32> = None;
    if let Some(t) = tch_threads {
        eprintln!("visage tch: Autodiff<LibTorch<f32>> on the CPU, {t} intra-op threads");
    }
    eprintln!(
        "bench compare ({}) on {} ({} logical CPUs); visage: flex + autodiff, release, {} rayon threads; {}",
        if o.quick { "quick" } else { "full" },
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["logical_cpus"],
        rayon_threads,
        peer_note
    );
    let device = Default::default();
    let want = |id: &str| o.rows.iter().any(|r| r == id);
    let mut rows: Vec<Row> = Vec::new();
    let mut bare_square: Option<f64> = None;

    for row in train_rows(o.quick) {
        if !want(row.id) {
            continue;
        }
        let bare = *bare_square.get_or_insert_with(|| square_matmul_gflops::<I>(&device));
        let config: TrainConfig = toml::from_str(&row.toml).expect("row config");
        config.validate_static().expect("row config");
        eprintln!(
            "[{}] visage: {} warm-up + {} timed steps",
            row.id, row.warmup, row.steps
        );
        let visage = visage_train::<B>(&row, &config, bare, device.clone());
        eprintln!(
            "[{}] visage {} (CPU time / wall time {:.2}, CPU s/step {:.3})",
            row.id,
            fmt_value(visage["value"].as_f64(), "images/s"),
            visage["cpu_per_wall"].as_f64().unwrap_or(f64::NAN),
            visage["cpu_step_s"].as_f64().unwrap_or(f64::NAN)
        );
        // tch's bare ratio is also against flex's 1024^3 matmul (one baseline per row).
        let tch = on_tch!(Value; visage_train(&row, &config, bare));
        if let Some(t) = &tch {
            eprintln!(
                "[{}] visage tch {} (CPU time / wall time {:.2})",
                row.id,
                fmt_value(t["value"].as_f64(), "images/s"),
                t["cpu_per_wall"].as_f64().unwrap_or(f64::NAN)
            );
        }
        let spec = train_spec(&row, &config, o.threads);
        let peer_result = match &peer {
            Ok(p) => p.run(&spec).map(|mut v| {
                if let Some(med) = v["median_step_s"].as_f64() {
                    let flops = train_step_flops(&config, row.classes);
                    v["gflops"] = json!(flops / med / 1e9);
                }
                v["spec"] = spec.clone();
                v
            }),
            Err(e) => Err(e.clone()),
        };
        let mut visage = visage;
        if let Ok(p) = &peer_result {
            let v_stats: Vec<(String, usize, f64, f64)> = visage["init_stats"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            (
                                r[0].as_str().unwrap_or("").to_string(),
                                r[1].as_u64().unwrap_or(0) as usize,
                                r[2].as_f64().unwrap_or(f64::NAN),
                                r[3].as_f64().unwrap_or(f64::NAN),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let check = compare_init(&v_stats, &p["init_stats"]);
            eprintln!("[{}] initialisation, visage vs peer: {check}", row.id);
            visage["init_check"] = check;
            eprintln!(
                "[{}] peer {} (CPU time / wall time {:.2}, CPU s/step {:.3})",
                row.id,
                fmt_value(p["value"].as_f64(), "images/s"),
                p["cpu_per_wall"].as_f64().unwrap_or(f64::NAN),
                p["cpu_step_s"].as_f64().unwrap_or(f64::NAN)
            );
        }
        visage["config_toml"] = json!(row.toml);
        rows.push(Row {
            id: row.id.into(),
            work: row.work.into(),
            unit: "images/s",
            higher_is_better: true,
            visage,
            tch,
            peer: peer_result,
        });
    }

    for (id, classes) in [("head10k", 10_000usize), ("head100k", 100_000)] {
        if !want(id) {
            continue;
        }
        let (warmup, steps) = match (o.quick, classes) {
            (false, 10_000) => (2, 10),
            (false, _) => (1, 5),
            (true, 10_000) => (1, 3),
            (true, _) => (1, 2),
        };
        eprintln!("[{id}] visage: {warmup} warm-up + {steps} timed");
        let (visage, scale, margin) = visage_head::<B>(classes, warmup, steps, device.clone());
        eprintln!(
            "[{id}] visage {}",
            fmt_value(visage["value"].as_f64(), "ms")
        );
        let tch =
            on_tch!((Value, f64, f64); visage_head(classes, warmup, steps)).map(|(t, _, _)| t);
        if let Some(t) = &tch {
            eprintln!("[{id}] visage tch {}", fmt_value(t["value"].as_f64(), "ms"));
        }
        let spec = json!({"kind": "head", "threads": o.threads, "n": 128, "dim": 512,
                          "classes": classes, "scale": scale, "margin": margin,
                          "warmup": warmup, "steps": steps, "seed": 0});
        let peer_result = match &peer {
            Ok(p) => p.run(&spec).map(|mut v| {
                if let Some(s) = v["median_s"].as_f64() {
                    v["gflops"] = json!(6.0 * (128 * classes * 512) as f64 / s / 1e9);
                }
                v["spec"] = spec.clone();
                v
            }),
            Err(e) => Err(e.clone()),
        };
        if let Ok(p) = &peer_result {
            eprintln!("[{id}] peer {}", fmt_value(p["value"].as_f64(), "ms"));
        }
        rows.push(Row {
            id: id.into(),
            work: format!(
                "ArcFace head forward + backward, N 128, d 512, C {}k",
                classes / 1000
            ),
            unit: "ms",
            higher_is_better: false,
            visage,
            tch,
            peer: peer_result,
        });
    }

    if want("search") {
        let (np, dim, k) = (1000usize, 512usize, 10usize);
        let nd = o
            .distractors
            .unwrap_or(if o.quick { 100_000 } else { 1_000_000 });
        eprintln!("[search] writing {np} probes + {nd} distractors x {dim} (.npy)");
        let (files, bare) = search_files(&o.work, np, nd, dim);
        let flops = 2.0 * np as f64 * nd as f64 * dim as f64;
        let visage = visage_search(&files, flops, bare);
        eprintln!(
            "[search] visage {}",
            fmt_value(visage["value"].as_f64(), "s")
        );
        let spec = json!({"kind": "search", "threads": o.threads, "k": k,
                          "probes": files.probes, "distractors": files.distractors});
        // FAISS's wheel carries OpenBLAS, whose speed here depends on the OpenBLAS variables
        // the machine sets: where it sets any, the peer also runs with them, and the faster
        // of the two runs is its figure (both are in the JSON).
        let machine_env: Vec<(&str, String)> = OPENBLAS_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v)))
            .collect();
        let peer_result = match &peer {
            Ok(p) => {
                let unset = p.run(&spec);
                let kept = (!machine_env.is_empty()).then(|| p.run_env(&spec, true));
                let secs = |r: &Result<Value, String>| {
                    r.as_ref()
                        .ok()
                        .and_then(|v| v["value"].as_f64())
                        .unwrap_or(f64::INFINITY)
                };
                let kept_faster = kept.as_ref().is_some_and(|k| secs(k) < secs(&unset));
                let (best, env) = if kept_faster {
                    (kept.clone().expect("kept"), "as the machine sets them")
                } else {
                    (unset.clone(), "unset")
                };
                best.map(|mut v| {
                    v["spec"] = spec.clone();
                    v["what"] = json!("faiss IndexFlatIP over the L2-normalised distractors, top-10 of the normalised probes; np.load of the same .npy files included");
                    v["openblas_env"] = json!(env);
                    v["runs"] = json!({
                        "openblas_env_unset": unset.as_ref().map_or_else(|e| json!({"error": e}), |r| r.clone()),
                        "openblas_env_kept": match &kept {
                            None => Value::Null,
                            Some(k) => k.as_ref().map_or_else(|e| json!({"error": e}), |r| r.clone()),
                        },
                        "machine_env": machine_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                    });
                    v
                })
            }
            Err(e) => Err(e.clone()),
        };
        if let Ok(p) = &peer_result {
            eprintln!(
                "[search] peer {} (OpenBLAS variables {}; unset: {}, kept: {})",
                fmt_value(p["value"].as_f64(), "s"),
                p["openblas_env"].as_str().unwrap_or("?"),
                fmt_value(p["runs"]["openblas_env_unset"]["value"].as_f64(), "s"),
                fmt_value(p["runs"]["openblas_env_kept"]["value"].as_f64(), "s"),
            );
        }
        drop(files);
        rows.push(Row {
            id: "search".into(),
            work: format!(
                "1:N search, {np} probes x {} x {dim}, top {k}",
                if nd >= 1_000_000 && nd.is_multiple_of(1_000_000) {
                    format!("{}M", nd / 1_000_000)
                } else if nd.is_multiple_of(1000) {
                    format!("{}k", nd / 1000)
                } else {
                    nd.to_string()
                }
            ),
            unit: "s",
            higher_is_better: false,
            visage,
            tch: None,
            peer: peer_result,
        });
    }

    let load_end = loadavg();
    let peer_name = match &peer {
        Ok(p) => format!(
            "PyTorch {} ({} threads) / FAISS {}",
            p.info["torch"]["version"].as_str().unwrap_or("-"),
            o.threads,
            p.info["faiss"]["version"].as_str().unwrap_or("-")
        ),
        Err(_) => "PyTorch / FAISS".into(),
    };
    println!();
    println!(
        "visage bench compare ({}), {}, {} logical CPUs [{}], load average {} -> {}",
        if o.quick { "--quick" } else { "full size" },
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["logical_cpus"],
        machine["simd"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" "))
            .unwrap_or_default(),
        load_start,
        load_end
    );
    println!();
    let (tch_head, tch_rule) = match tch_threads {
        Some(t) => (
            format!(" visage (tch, LibTorch CPU, {t} threads) | tch speed / peer |"),
            "---|---|",
        ),
        None => (String::new(), ""),
    };
    println!(
        "| work | {peer_name} | visage (flex, release, {rayon_threads} threads) | visage speed / peer |{tch_head} visage / bare GEMM |"
    );
    println!("|---|---|---|---|{tch_rule}---|");
    for r in &rows {
        print_row(r, peer.is_ok(), tch_threads.is_some());
    }
    println!();
    println!("visage speed / peer: images/s over images/s, or the peer's time over visage's (> 1: visage is faster).");
    if tch_threads.is_some() {
        println!("tch: the same visage code on burn-tch (Autodiff<LibTorch<f32>>, CPU); its speed / peer likewise. The bare-GEMM column is flex's.");
    }
    println!("visage / bare GEMM: the row's counted FLOP/s over a bare GEMM's in the same run (train: flex 1024^3 matmul; head: flex [N,d]x[d,C] matmul; search: tiled matrixmultiply sgemm).");
    if let Err(e) = &peer {
        println!("peer rows missing: {e}");
    }
    let report = json!({
        "what": "visage bench compare (issue 14): visage (burn flex, release) beside PyTorch / FAISS on one machine, in one run",
        "mode": if o.quick { "quick" } else { "full" },
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "machine": machine,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "visage": {
            "backend": "burn flex (Autodiff<Flex>), burn 0.21",
            "tch": tch_threads.map(|t| json!({"backend": "burn-tch (Autodiff<LibTorch<f32>>, LibTorchDevice::Cpu), burn 0.21, tch 0.22", "intra_op_threads": t})),
            "profile": "bench (release)",
            "rayon_threads": rayon_threads,
            "git_commit": Command::new("git").args(["rev-parse", "HEAD"]).current_dir(repo_root()).output().ok()
                .filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
        },
        "peer": match &peer {
            Ok(p) => json!({"python": p.python, "threads": o.threads, "info": p.info,
                            "unset_env": ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]}),
            Err(e) => json!({"unavailable": e}),
        },
        "timing": "train rows: median of the timed steps after warm-up, batch / median step time; head rows: median forward + backward (both gradients); search: one run of the whole command / search with its file reads",
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    match write_json(&o.out, &report) {
        Ok(()) => println!("JSON: {}", o.out.display()),
        Err(e) => {
            eprintln!("could not write {}: {e}", o.out.display());
            std::process::exit(1);
        }
    }
}
