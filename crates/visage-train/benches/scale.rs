//! `cargo xtask bench scale`: data-parallel throughput with 1, 2 and 4 local workers (flex
//! devices, threads of this process, LeNets++ on synthetic identities, ArcFace), replicated
//! and sharded head, as a ratio to one worker in the same run; the share of the workers' step
//! time spent in collective calls (all-reduces of gradients, losses, status, and the sharded
//! head's exchanges, waiting for the slowest worker included); and the class-weight memory
//! per worker of a sharded head for C = 100k and 1M (d = 512, f32: the largest shard of the
//! split the trainer uses, `shard_range`, times 2 KiB a row; computed, not allocated).
//!
//! `cargo bench` passes `--bench`: full size. Without it (`cargo test --bench scale`) it runs a
//! two-step smoke version.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use visage_heads::sharded::shard_range;
use visage_train::distributed::{train_data_parallel, DistributedConfig};
use visage_train::TrainConfig;

type B = Autodiff<Flex>;

fn config(batch: usize, steps: u64) -> TrainConfig {
    let text = format!(
        r#"
[data]
kind = "synthetic"
identities = 64
images_per_identity = 8
image_size = 28
flip = 0.5

[backbone]
kind = "lenet_pp"
in_channels = 3
embedding_dim = 64

[head]
kind = "arcface"
scale = 16.0
margin = 0.3

[optim]
lr = 0.05

[schedule]
kind = "constant"

[train]
batch_size = {batch}
steps = {steps}
seed = 1
"#
    );
    toml::from_str(&text).expect("bench config parses")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (batch, steps) = if full { (128, 12) } else { (8, 2) };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("scale: LeNets++ 28x28 + ArcFace, 64 classes, global batch {batch}, {steps} steps, {cores} cores");
    println!(
        "{:>8} {:>8} {:>12} {:>10} {:>12}",
        "workers", "head", "images/s", "vs 1", "collective"
    );
    let mut base = None;
    for workers in [1usize, 2, 4] {
        for shard in [false, true] {
            if shard && workers == 1 {
                continue;
            }
            let mut c = config(batch, steps);
            c.distributed = Some(DistributedConfig {
                devices: workers,
                shard_head: shard,
                sample_rate: 1.0,
            });
            let started = Instant::now();
            let run = match train_data_parallel::<B>(&c, &vec![Default::default(); workers]) {
                Ok(run) => run,
                Err(e) => {
                    println!(
                        "{workers:>8} {:>8} error: {e}",
                        if shard { "sharded" } else { "full" }
                    );
                    continue;
                }
            };
            let ips = run.images_per_second;
            let ratio = ips / *base.get_or_insert(ips);
            println!(
                "{workers:>8} {:>8} {ips:>12.1} {ratio:>9.2}x {:>11.1}%   ({:.1} s)",
                if shard { "sharded" } else { "full" },
                100.0 * run.collective_share,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("class weights per worker, d = 512, f32 (sharded: the largest shard, vs W = 1):");
    for classes in [100_000usize, 1_000_000] {
        let mib = |rows: usize| (rows * 512 * 4) as f64 / (1 << 20) as f64;
        let cells: Vec<String> = [1usize, 2, 4, 8]
            .iter()
            .map(|&w| {
                let rows = shard_range(classes, w, 0).len();
                format!(
                    "W={w}: {:.0} MiB ({:.3})",
                    mib(rows),
                    rows as f64 / classes as f64
                )
            })
            .collect();
        println!("  C = {classes:>9}: {}", cells.join(", "));
    }
}
