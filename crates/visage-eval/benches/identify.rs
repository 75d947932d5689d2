//! Identification throughput: `cargo xtask bench identify` (= `cargo bench -p visage-eval
//! --bench identify`).
//!
//! 1,000 probes (250 identities x 4 images) x 100,000 distractors x 512-d by default;
//! `VISAGE_BENCH_DISTRACTORS=1000000` (and `VISAGE_BENCH_PROBES`) for the MegaFace size.
//! Reports the achieved GFLOP/s (2 Np Nd d flops) of the full `identify` call against a bare
//! matmul of the same shape (`matrixmultiply::sgemm`, rows split over the rayon threads, output
//! materialised) measured in the same run, and their ratio.

use std::time::Instant;

use rayon::prelude::*;
use visage_eval::{identify, Embeddings, IdentificationConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Xorshift-based uniform values in [-1, 1): fast and reproducible.
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

fn bare_matmul(p: &[f32], np: usize, d: &[f32], nd: usize, dim: usize, out: &mut [f32]) {
    let threads = rayon::current_num_threads().max(1);
    let rows_per = np.div_ceil(threads);
    out.par_chunks_mut(rows_per * nd)
        .zip(p.par_chunks(rows_per * dim))
        .for_each(|(c, a)| {
            let rows = a.len() / dim;
            // SAFETY: a is rows x dim, d^T is dim x nd (strides 1, dim), c is rows x nd.
            unsafe {
                matrixmultiply::sgemm(
                    rows,
                    dim,
                    nd,
                    1.0,
                    a.as_ptr(),
                    dim as isize,
                    1,
                    d.as_ptr(),
                    1,
                    dim as isize,
                    0.0,
                    c.as_mut_ptr(),
                    nd as isize,
                    1,
                );
            }
        });
}

/// The same product in 256 x 2048 output tiles reused per thread (no output kept): the matmul
/// part of `identify` without its top-K bookkeeping and rescoring.
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

fn main() {
    let np = env_usize("VISAGE_BENCH_PROBES", 1000);
    let nd = env_usize("VISAGE_BENCH_DISTRACTORS", 100_000);
    let dim = env_usize("VISAGE_BENCH_DIM", 512);
    let flops = 2.0 * np as f64 * nd as f64 * dim as f64;
    println!(
        "identify bench: {np} probes x {nd} distractors x {dim}-d, {} rayon threads",
        rayon::current_num_threads()
    );
    let probes = random_matrix(np, dim, 1);
    let distractors = random_matrix(nd, dim, 2);
    let labels: Vec<i64> = (0..np as i64).map(|i| i / 4).collect();

    let mut out = vec![0f32; np * nd];
    let t = Instant::now();
    bare_matmul(&probes, np, &distractors, nd, dim, &mut out);
    let bare = t.elapsed().as_secs_f64();
    std::hint::black_box(&out);
    drop(out);
    let t = Instant::now();
    std::hint::black_box(tiled_matmul(&probes, &distractors, nd, dim));
    let tiled = t.elapsed().as_secs_f64();

    let p = Embeddings::new(np, dim, probes).expect("shape");
    let d = Embeddings::new(nd, dim, distractors).expect("shape");
    let config = IdentificationConfig {
        ..Default::default()
    };
    let t = Instant::now();
    let report = identify(&p, &labels, &d, &config).expect("identify");
    let ours = t.elapsed().as_secs_f64();
    std::hint::black_box(&report);

    println!(
        "bare sgemm (output materialised): {bare:8.3} s  {:7.1} GFLOP/s",
        flops / bare / 1e9
    );
    println!(
        "bare sgemm (256x2048 tiles, output discarded): {tiled:8.3} s  {:7.1} GFLOP/s",
        flops / tiled / 1e9
    );
    println!(
        "identify (blocked, top-K, f64 rescoring): {ours:8.3} s  {:7.1} GFLOP/s",
        flops / ours / 1e9
    );
    println!(
        "ratio identify / bare matmul throughput: {:.3} (materialised), {:.3} (tiled)",
        bare / ours,
        tiled / ours
    );
    println!(
        "rank-1 {:.4}, TAR@1e-6 {:?} (random data), exact recomputations: {} probes, impostor second pass: {}",
        report.rank.get(1).unwrap_or(f64::NAN),
        report.tar_at_far_1e_6,
        report.exact_recomputed_probes,
        report.impostor_second_pass
    );
}
