//! `cargo xtask bench heads`: forward + backward time of ArcFace, CosFace and AdaCos at
//! N = 128, d = 512, C in {1k, 10k, 100k} on ndarray (and, to choose the default CPU backend,
//! on flex), with the GFLOP/s of the head's matrix products (x W^T forward; G W and G^T x
//! backward: 6 N C d flops in all) against a bare `[N, d] x [d, C]` matmul measured in the
//! same run.
//!
//! Then a memory table: ArcFace forward + backward with the full head and with
//! `chunk_classes` (blocks of `VISAGE_BENCH_CHUNK` classes, default 65536) at
//! `VISAGE_BENCH_MEMORY_CLASSES` (default 100k and 1M; `none` skips the table), with the peak
//! heap bytes of the step beyond the weights and embeddings held before it (a counting global
//! allocator, `support/peak_alloc.rs`). The full head runs only up to
//! `VISAGE_BENCH_FULL_MAX_CLASSES` (default 100k). Mind the machine: at C = 1M, d = 512 the
//! weights alone are 2 GB, and the step holds several more weight-sized buffers.
//!
//! `VISAGE_BENCH_CLASSES=1000,10000` limits the class counts; `VISAGE_BENCH_REPS` sets repeats;
//! `VISAGE_BENCH_BACKENDS=flex,cuda` picks the backends (default: every one compiled in; wgpu
//! and cuda with the crate features of the same name, `cargo xtask bench heads --backends cuda`).

use std::time::Instant;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor};
use visage_heads::heads::ArcFaceConfig;
use visage_heads::{HeadConfig, HeadKind, HeadState, HeadTensors};

#[path = "support/peak_alloc.rs"]
mod peak_alloc;

#[global_allocator]
static ALLOCATOR: peak_alloc::Counting = peak_alloc::Counting;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// A list of class counts from the environment variable `name` (`none`: empty).
fn class_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// A number from the environment variable `name`.
fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let classes = class_list("VISAGE_BENCH_CLASSES", &[1_000, 10_000, 100_000]);
    let reps: usize = std::env::var("VISAGE_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let wanted: Option<Vec<String>> = std::env::var("VISAGE_BENCH_BACKENDS").ok().map(|s| {
        s.split(',')
            .map(|b| b.trim().to_ascii_lowercase())
            .collect()
    });
    let want = |b: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == b));
    let memory = Memory {
        classes: class_list("VISAGE_BENCH_MEMORY_CLASSES", &[100_000, 1_000_000]),
        full_max: env_number("VISAGE_BENCH_FULL_MAX_CLASSES", 100_000),
        chunk: env_number("VISAGE_BENCH_CHUNK", 65_536),
        reps: env_number("VISAGE_BENCH_MEMORY_REPS", 1),
    };
    if want("ndarray") {
        bench::<Autodiff<NdArray<f32>>>("ndarray", &classes, reps);
        bench_memory::<Autodiff<NdArray<f32>>>("ndarray", &memory);
    }
    if want("flex") {
        bench::<Autodiff<Flex>>("flex", &classes, reps);
        bench_memory::<Autodiff<Flex>>("flex", &memory);
    }
    #[cfg(feature = "wgpu")]
    if want("wgpu") {
        bench::<Autodiff<burn::backend::Wgpu>>("wgpu", &classes, reps);
    }
    #[cfg(feature = "cuda")]
    if want("cuda") {
        bench::<Autodiff<burn::backend::Cuda>>("cuda", &classes, reps);
    }
    println!(
        "ratio = head GFLOP/s (its 3 matmuls, 6NCd flops, over the whole fwd+bwd time) / bare matmul GFLOP/s"
    );
}

fn bench<B: AutodiffBackend>(backend: &str, classes: &[usize], reps: usize) {
    let (n, d) = (128usize, 512usize);
    let device = B::Device::default();
    println!("heads benchmark on {backend} (f32), N = {n}, d = {d}, median of {reps} runs");
    println!(
        "{:<8} {:>7} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "head", "C", "fwd+bwd ms", "matmul ms", "head GFLOP/s", "mm GFLOP/s", "ratio"
    );
    for &c in classes {
        let (x_inner, w_inner, labels) = inputs::<B>(n, d, c, &device);
        // Baseline: one bare matmul of the forward's shape, 2 N C d flops.
        let wt = w_inner.clone().transpose();
        let mm = time(reps, || {
            let y = x_inner.clone().matmul(wt.clone());
            std::hint::black_box(y.into_data());
        });
        let mm_gflops = 2.0 * (n * c * d) as f64 / mm / 1e9;
        for kind in [HeadKind::ArcFace, HeadKind::CosFace, HeadKind::AdaCos] {
            let head = HeadConfig::new(kind)
                .init_with::<B>(
                    c,
                    d,
                    HeadTensors {
                        weight: Some(Tensor::from_inner(w_inner.clone())),
                        bias: None,
                    },
                )
                .expect("head");
            let secs = time(reps, || {
                let x = Tensor::<B, 2>::from_inner(x_inner.clone()).require_grad();
                let out = head.forward(x.clone(), labels.clone(), &mut HeadState::default());
                let grads = out.loss.backward();
                std::hint::black_box(x.grad(&grads).map(|g| g.into_data()));
            });
            let gflops = 6.0 * (n * c * d) as f64 / secs / 1e9;
            println!(
                "{:<8} {:>7} {:>10.2} {:>10.2} {:>12.1} {:>12.1} {:>8.2}",
                kind.name(),
                c,
                secs * 1e3,
                mm * 1e3,
                gflops,
                mm_gflops,
                gflops / mm_gflops
            );
        }
    }
}

/// Random embeddings `[n, d]` and class weights `[c, d]` (without gradient) and labels `[n]`.
#[allow(clippy::type_complexity)]
fn inputs<B: AutodiffBackend>(
    n: usize,
    d: usize,
    c: usize,
    device: &B::Device,
) -> (
    Tensor<B::InnerBackend, 2>,
    Tensor<B::InnerBackend, 2>,
    Tensor<B, 1, Int>,
) {
    (
        Tensor::random([n, d], Distribution::Normal(0.0, 1.0), device),
        Tensor::random([c, d], Distribution::Normal(0.0, 0.01), device),
        Tensor::random([n], Distribution::Uniform(0.0, c as f64), device),
    )
}

/// The memory table's settings.
struct Memory {
    /// Class counts.
    classes: Vec<usize>,
    /// Largest C the full head runs at.
    full_max: usize,
    /// Classes per block of the chunked head.
    chunk: usize,
    /// Timed repeats (after one warm-up).
    reps: usize,
}

/// ArcFace forward + backward, full and chunked: median time and the peak heap bytes of the
/// step beyond those live before it (weights, embeddings, labels). Heap counts only: a GPU
/// backend's memory is not seen, so this runs on the CPU backends.
fn bench_memory<B: AutodiffBackend>(backend: &str, memory: &Memory) {
    if memory.classes.is_empty() {
        return;
    }
    let (n, d) = (128usize, 512usize);
    let device = B::Device::default();
    let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
    println!(
        "arcface memory on {backend} (f32), N = {n}, d = {d}, chunk_classes = {}, median of {} runs",
        memory.chunk, memory.reps
    );
    println!(
        "{:<16} {:>9} {:>12} {:>12} {:>15}",
        "head", "C", "fwd+bwd ms", "weights MiB", "step peak MiB"
    );
    for &c in &memory.classes {
        let (x_inner, w_inner, labels) = inputs::<B>(n, d, c, &device);
        let mut rows = Vec::new();
        if c <= memory.full_max {
            rows.push(("arcface", None));
        }
        rows.push(("arcface chunked", Some(memory.chunk)));
        for (name, chunk) in rows {
            let config = HeadConfig::ArcFace(ArcFaceConfig {
                chunk_classes: chunk,
                ..Default::default()
            });
            let head = config
                .init_with::<B>(
                    c,
                    d,
                    HeadTensors {
                        weight: Some(Tensor::from_inner(w_inner.clone())),
                        bias: None,
                    },
                )
                .expect("head");
            let before = peak_alloc::live();
            peak_alloc::reset_peak();
            let secs = time(memory.reps, || {
                let x = Tensor::<B, 2>::from_inner(x_inner.clone()).require_grad();
                let out = head.forward(x.clone(), labels.clone(), &mut HeadState::default());
                let grads = out.loss.backward();
                let weight = head.classifier.as_ref().expect("classifier").weight.val();
                std::hint::black_box(x.grad(&grads).map(|g| g.into_data()));
                std::hint::black_box(weight.grad(&grads).map(|g| g.into_data()));
            });
            let step_peak = peak_alloc::peak().saturating_sub(before);
            println!(
                "{:<16} {:>9} {:>12.1} {:>12.1} {:>15.1}",
                name,
                c,
                secs * 1e3,
                mib(c * d * 4),
                mib(step_peak)
            );
        }
    }
}
