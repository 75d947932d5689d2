//! One backbone's training step (forward in training mode, a fixed random linear loss on the
//! embeddings, backward) on `Autodiff<Flex>`, timed in CPU seconds (user + system of the
//! process, all threads) per step as well as wall seconds: on a machine shared with other
//! work the CPU time is the figure to compare between builds or `VISAGE_FAST_CPU` settings.
//!
//! `cargo run --release -p visage-backbones --example train_step -- [MODEL] [BATCH] [STEPS]`
//! (defaults `iresnet18 32 3`, 1 untimed warm-up step first; input 112x112, 32x32 for
//! sphere nets, 28x28 grey for LeNets++, as the model's config says).

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor};
use visage_backbones::{BackboneConfig, BackboneKind};

type B = Autodiff<Flex>;

/// User + system CPU seconds of this process (all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let s: f64 = f.get(12)?.parse().ok()?;
            Some((u + s) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map(String::as_str).unwrap_or("iresnet18");
    let batch: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(32);
    let steps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
    let kind: BackboneKind = model.parse().unwrap_or_else(|e| panic!("{model}: {e}"));
    let config = BackboneConfig::new(kind);
    let device = Default::default();
    let net = config.init::<B>(&device).expect("init");
    let [h, w] = config.input_size().expect("input_size");
    let c = config.in_channels().expect("in_channels");
    let x = Tensor::<B, 4>::random([batch, c, h, w], Distribution::Uniform(-1.0, 1.0), &device);
    let d = config.embedding_dim().expect("embedding_dim");
    let r = Tensor::<B, 2>::random([batch, d], Distribution::Uniform(-1.0, 1.0), &device);
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for step in 0..=steps {
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let e = net.forward(x.clone());
        let loss = (e * r.clone()).sum();
        let grads = loss.backward();
        drop(grads);
        if step > 0 {
            cpu.push(cpu_seconds() - c0);
            wall.push(t0.elapsed().as_secs_f64());
        }
    }
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{model} batch {batch}: CPU s/step min {:.2} all {:?}; wall s/step min {:.2}",
        min(&cpu),
        cpu.iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        min(&wall)
    );
}
