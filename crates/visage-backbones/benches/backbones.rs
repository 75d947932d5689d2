//! `cargo xtask bench backbones` (= `cargo bench -p visage-backbones --bench backbones`):
//! images/s of a forward pass (inference mode) and of forward + backward (training mode) at
//! batch 32 for mobilefacenet, iresnet18 and iresnet50 on each backend compiled in, with the
//! GFLOP/s achieved against the analytically counted FLOPs (2 per multiply-accumulate of the
//! convolutions and linear layers; forward + backward counted as 3x the forward).
//!
//! Baselines measured in the same run: each backend's 1024^3 f32 matmul GFLOP/s ("% of
//! matmul"), and the first backend's images/s for the same model and pass ("x base").
//!
//! Backends: flex and ndarray always (dev-dependencies), wgpu / cuda with the crate features
//! of the same name (`cargo xtask bench backbones --backends wgpu`).
//! Environment: `VISAGE_BENCH_BATCH` (32), `VISAGE_BENCH_ITERS` (1 timed iteration),
//! `VISAGE_BENCH_WARMUP` (untimed iterations first: default 0 on the CPU backends, 1 on wgpu
//! and cuda, whose first run compiles and autotunes kernels),
//! `VISAGE_BENCH_MODELS` (e.g. `mbf,iresnet18`), `VISAGE_BENCH_BACKENDS` (e.g. `flex`),
//! `VISAGE_BENCH_NDARRAY_BACKWARD=1` to time ndarray's backward too (burn-ndarray 0.21's
//! convolution backward is 50-100x slower than flex's here: minutes per step).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use visage_backbones::{BackboneConfig, BackboneKind};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    })
}

struct Row {
    backend: &'static str,
    model: String,
    pass: &'static str,
    images_per_s: f64,
    gflops: f64,
    matmul_gflops: f64,
}

fn matmul_gflops<B: AutodiffBackend>(device: &B::Device) -> f64 {
    type I<B> = <B as AutodiffBackend>::InnerBackend;
    let n = 1024;
    let a = Tensor::<I<B>, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<I<B>, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let _ = a.clone().matmul(b.clone()).sum().into_scalar();
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = a.clone().matmul(b.clone()).sum().into_scalar();
    }
    2.0 * (n * n * n) as f64 * reps as f64 / t.elapsed().as_secs_f64() / 1e9
}

#[allow(clippy::too_many_arguments)]
fn bench_backend<B: AutodiffBackend>(
    name: &'static str,
    device: B::Device,
    models: &[BackboneKind],
    batch: usize,
    iters: usize,
    warmup: usize,
    backward: bool,
    rows: &mut Vec<Row>,
) {
    let mm = matmul_gflops::<B>(&device);
    eprintln!("[{name}] matmul 1024^3: {mm:.1} GFLOP/s");
    for &kind in models {
        let cfg = BackboneConfig::new(kind);
        let flops_fwd = cfg.macs().expect("known backbone") as f64 * 2.0;
        let shape = [batch, 3, 112, 112];
        let train_model = cfg.init::<B>(&device).expect("valid config");

        // inference-mode forward
        let model = train_model.valid();
        let x =
            Tensor::<B::InnerBackend, 4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
        for _ in 0..warmup {
            let _ = model.forward(x.clone()).sum().into_scalar();
        }
        let t = Instant::now();
        for _ in 0..iters {
            let _ = model.forward(x.clone()).sum().into_scalar();
        }
        let ips = (batch * iters) as f64 / t.elapsed().as_secs_f64();
        eprintln!("[{name}] {kind} forward: {ips:.1} images/s");
        rows.push(Row {
            backend: name,
            model: kind.to_string(),
            pass: "forward",
            images_per_s: ips,
            gflops: ips * flops_fwd / 1e9,
            matmul_gflops: mm,
        });
        drop(model);

        if !backward {
            eprintln!("[{name}] {kind} forward+backward: skipped");
            continue;
        }
        let x = Tensor::<B, 4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
        let step = || {
            let out = train_model.forward(x.clone());
            let grads = out.sum().backward();
            let g = match &train_model {
                visage_backbones::Backbone::IResNet(m) => m.conv1.weight.val().grad(&grads),
                visage_backbones::Backbone::MobileFaceNet(m) => {
                    m.stem.conv.weight.val().grad(&grads)
                }
                _ => None,
            };
            if let Some(g) = g {
                let _ = g.sum().into_scalar();
            }
        };
        for _ in 0..warmup {
            step();
        }
        let t = Instant::now();
        for _ in 0..iters {
            step();
        }
        let ips = (batch * iters) as f64 / t.elapsed().as_secs_f64();
        eprintln!("[{name}] {kind} forward+backward: {ips:.1} images/s");
        rows.push(Row {
            backend: name,
            model: kind.to_string(),
            pass: "forward+backward",
            images_per_s: ips,
            gflops: ips * 3.0 * flops_fwd / 1e9,
            matmul_gflops: mm,
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let batch = env_usize("VISAGE_BENCH_BATCH", 32);
    let iters = env_usize("VISAGE_BENCH_ITERS", 1).max(1);
    let cpu_warmup = env_usize("VISAGE_BENCH_WARMUP", 0);
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let gpu_warmup = env_usize("VISAGE_BENCH_WARMUP", 1);
    let all_models = [
        BackboneKind::MobileFaceNet,
        BackboneKind::IResNet(18),
        BackboneKind::IResNet(50),
    ];
    let models: Vec<BackboneKind> = match env_list("VISAGE_BENCH_MODELS") {
        Some(names) => names
            .iter()
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|e| panic!("VISAGE_BENCH_MODELS: {e}"))
            })
            .collect(),
        None => all_models.to_vec(),
    };
    let wanted = env_list("VISAGE_BENCH_BACKENDS");
    let want = |b: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == b));
    let ndarray_backward = std::env::var("VISAGE_BENCH_NDARRAY_BACKWARD").is_ok_and(|v| v == "1");
    println!("backbones bench: batch {batch}, {iters} timed iteration(s), 112x112 RGB");
    for &kind in &models {
        let macs = BackboneConfig::new(kind).macs().unwrap_or(0);
        println!(
            "  {kind}: {:.3} GMAC / image forward (counted)",
            macs as f64 / 1e9
        );
    }
    let mut rows = Vec::new();
    if want("flex") {
        bench_backend::<burn::backend::Autodiff<burn::backend::Flex>>(
            "flex",
            Default::default(),
            &models,
            batch,
            iters,
            cpu_warmup,
            true,
            &mut rows,
        );
    }
    if want("ndarray") {
        bench_backend::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(
            "ndarray",
            Default::default(),
            &models,
            batch,
            iters,
            cpu_warmup,
            ndarray_backward,
            &mut rows,
        );
    }
    #[cfg(feature = "wgpu")]
    if want("wgpu") {
        bench_backend::<burn::backend::Autodiff<burn::backend::Wgpu>>(
            "wgpu",
            Default::default(),
            &models,
            batch,
            iters,
            gpu_warmup,
            true,
            &mut rows,
        );
    }
    #[cfg(feature = "cuda")]
    if want("cuda") {
        bench_backend::<burn::backend::Autodiff<burn::backend::Cuda>>(
            "cuda",
            Default::default(),
            &models,
            batch,
            iters,
            gpu_warmup,
            true,
            &mut rows,
        );
    }

    println!(
        "\n{:<8} {:<14} {:<17} {:>10} {:>9} {:>10} {:>8}",
        "backend", "model", "pass", "images/s", "GFLOP/s", "% matmul", "x base"
    );
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| b.model == r.model && b.pass == r.pass)
            .map(|b| r.images_per_s / b.images_per_s)
            .unwrap_or(1.0);
        println!(
            "{:<8} {:<14} {:<17} {:>10.1} {:>9.1} {:>9.1}% {:>8.2}",
            r.backend,
            r.model,
            r.pass,
            r.images_per_s,
            r.gflops,
            100.0 * r.gflops / r.matmul_gflops,
            base
        );
    }
    if let Some(first) = rows.first() {
        println!(
            "(x base: images/s relative to {} for the same model and pass)",
            first.backend
        );
    }
}
