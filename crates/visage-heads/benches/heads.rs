//! `cargo xtask bench heads`: forward + backward time of ArcFace, CosFace and AdaCos at
//! N = 128, d = 512, C in {1k, 10k, 100k} on ndarray (and, to choose the default CPU backend,
//! on flex), with the GFLOP/s of the head's matrix products (x W^T forward; G W and G^T x
//! backward: 6 N C d flops in all) against a bare `[N, d] x [d, C]` matmul measured in the
//! same run.
//!
//! `VISAGE_BENCH_CLASSES=1000,10000` limits the class counts; `VISAGE_BENCH_REPS` sets repeats;
//! `VISAGE_BENCH_BACKENDS=flex,cuda` picks the backends (default: every one compiled in; wgpu
//! and cuda with the crate features of the same name, `cargo xtask bench heads --backends cuda`).

use std::time::Instant;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor};
use visage_heads::{HeadConfig, HeadKind, HeadState, HeadTensors};

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

fn main() {
    let classes: Vec<usize> = std::env::var("VISAGE_BENCH_CLASSES")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
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
    if want("ndarray") {
        bench::<Autodiff<NdArray<f32>>>("ndarray", &classes, reps);
    }
    if want("flex") {
        bench::<Autodiff<Flex>>("flex", &classes, reps);
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
        let x_inner =
            Tensor::<B::InnerBackend, 2>::random([n, d], Distribution::Normal(0.0, 1.0), &device);
        let w_inner =
            Tensor::<B::InnerBackend, 2>::random([c, d], Distribution::Normal(0.0, 0.01), &device);
        let labels =
            Tensor::<B, 1, Int>::random([n], Distribution::Uniform(0.0, c as f64), &device);
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
