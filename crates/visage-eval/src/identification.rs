//! 1:N identification, MegaFace Challenge 1 style, and its verification number (TAR@FAR=1e-6).
//!
//! Probe set: the probe identities with at least 2 images (a probe whose identity has a single
//! image is skipped, counted in `skipped_single_image_probes`, and used nowhere). For every
//! ordered pair `(i, j)`, `i != j`, of images of the same probe identity, the gallery is the
//! distractors plus image `j`; the pair succeeds at rank `k` iff
//! `sim(i, j) > t_i(k)`, where `t_i(k)` is the k-th largest similarity of probe `i` to the
//! distractors (`-inf` when there are fewer than `k` distractors). Ties count as failures:
//! a distractor scoring exactly `sim(i, j)` ranks before image `j`. Rank-k rate = successes /
//! ordered pairs; the CMC curve is reported for `k = 1..K`, `K` = the largest requested rank.
//!
//! TAR@FAR=1e-6: genuine scores = the unordered same-identity probe pairs, impostor scores =
//! every (kept probe, distractor) pair, `I = probes x distractors`. The ROC semantics are those
//! of [`crate::roc`]: the answer is the largest TPR among thresholds whose FPR `<= 1e-6`. With
//! `m` = the largest count such that `m / I <= 1e-6` (f64 comparison), a threshold is allowed
//! iff fewer than `m + 1` impostors reach it, i.e. iff it lies strictly above `s_(m+1)`, the
//! (m+1)-th largest impostor score; hence TAR = #{genuine scores `> s_(m+1)`} / #genuine. Only
//! the top `m + 1` impostor scores over all probes are needed, kept in one more top-K heap: for
//! 1M distractors and 3,500 probes that is 3,501 entries. Undefined (`null`) when
//! `1e-6 < 1 / I`.
//!
//! Computation: probes are split into blocks (rayon runs blocks in parallel), each block is
//! scored against distractor blocks with the f32 kernel of [`crate::score_block`] into a
//! scratch buffer of `probe_block x distractor_block` scores, and every score is offered to the
//! probe's top-(K + margin) heap and to the block's impostor heap. Memory is O(blocks), never
//! probes x distractors. The f32 scores only select candidates: afterwards every kept candidate
//! is rescored in f64 (cosine of the f64-normalised rows, as in verification) and the ranks,
//! thresholds and the TAR are decided on the f64 scores. The `margin` extra candidates (8 by
//! default) absorb f32 rounding (about 1e-7 relative) reordering candidates near the K-th place.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::score_block::cosine_block;
use crate::similarity::{dot_f64, normalize_f64};
use crate::topk::TopK;
use crate::{Embeddings, EvalError};

/// The FAR of MegaFace's verification number.
pub const IDENTIFICATION_FAR: f64 = 1e-6;

/// What the report says about how its numbers were computed.
pub const IDENTIFICATION_PROTOCOL: &str = "MegaFace Challenge 1 style: probe identities with >= 2 images \
(single-image probes skipped); every ordered same-identity probe pair (i, j) succeeds at rank k iff \
cos(i, j) > t_i(k), the k-th largest cosine of probe i to the distractors (ties fail); \
TAR@FAR=1e-6 from unordered genuine probe pairs vs every probe x distractor impostor pair, \
largest TPR with FPR <= 1e-6, null when 1e-6 < 1/impostors. Candidates selected with blocked f32 \
sgemm, all deciding scores recomputed in f64.";

/// Knobs of [`identify`].
#[derive(Debug, Clone)]
pub struct IdentificationConfig {
    /// Ranks to report (each >= 1); the CMC curve goes up to the largest.
    pub ranks: Vec<usize>,
    /// Most probes per block.
    pub probe_block: usize,
    /// Distractors per block.
    pub distractor_block: usize,
    /// Extra f32 candidates kept per heap before the f64 rescoring.
    pub margin: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for IdentificationConfig {
    fn default() -> Self {
        Self {
            ranks: vec![1, 5, 10],
            probe_block: 256,
            distractor_block: 2048,
            margin: 8,
            progress: false,
        }
    }
}

/// Rank-k identification rates, serialised as a JSON object `{"1": r1, "5": r5, ...}` in
/// increasing rank order.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRates(pub Vec<(usize, f64)>);

impl RankRates {
    /// The rate at rank `k`, if it was requested.
    pub fn get(&self, k: usize) -> Option<f64> {
        self.0.iter().find(|(r, _)| *r == k).map(|&(_, v)| v)
    }
}

impl Serialize for RankRates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&k.to_string(), v)?;
        }
        map.end()
    }
}

/// The JSON identification report (`OUT.json` of `visage identify`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentificationReport {
    /// Rank-k identification rate for each requested k.
    pub rank: RankRates,
    /// Rank-k rate for k = 1..K.
    pub cmc: Vec<f64>,
    /// Ordered same-identity probe pairs (the denominator of the rank rates).
    pub pairs: u64,
    /// TAR at FAR = 1e-6; `null` when undefined.
    #[serde(rename = "tar_at_far_1e-6")]
    pub tar_at_far_1e_6: Option<f64>,
    /// Number of distractors.
    pub distractors: usize,
    /// Probes used (identities with at least 2 images).
    pub probes: usize,
    /// Probe identities used.
    pub probe_identities: usize,
    /// Probes skipped because their identity has a single image.
    pub skipped_single_image_probes: usize,
    /// Unordered genuine pairs of the TAR@FAR.
    pub genuine_pairs: u64,
    /// Impostor pairs of the TAR@FAR (probes x distractors).
    pub impostor_pairs: u64,
    /// Embedding dimension.
    pub dim: usize,
    /// How the numbers were computed.
    pub protocol: String,
}

/// The largest `m` with `m / total <= far` in f64 (the impostor count FAR `far` allows).
pub fn allowed_false_accepts(far: f64, total: u64) -> u64 {
    let n = total as f64;
    let mut m = (far * n).floor().max(0.0) as u64;
    while m < total && ((m + 1) as f64 / n) <= far {
        m += 1;
    }
    while m > 0 && (m as f64 / n) > far {
        m -= 1;
    }
    m
}

/// Per probe block: the f32 candidates of each probe and of the impostor tail.
struct BlockCandidates {
    per_probe: Vec<TopK<u32>>,
    impostors: TopK<(u32, u32)>,
}

/// Runs MegaFace-style identification of `probes` (labelled by `labels`) against
/// `distractors`. Errors on shape mismatches, non-finite values, empty inputs, bad ranks, or
/// when no probe identity has two images.
pub fn identify(
    probes: &Embeddings,
    labels: &[i64],
    distractors: &Embeddings,
    config: &IdentificationConfig,
) -> Result<IdentificationReport, EvalError> {
    probes.check_non_empty("probes")?;
    distractors.check_non_empty("distractors")?;
    if probes.dim != distractors.dim {
        return Err(EvalError::Shape(format!(
            "probes are {}-d but distractors are {}-d",
            probes.dim, distractors.dim
        )));
    }
    if labels.len() != probes.rows {
        return Err(EvalError::Shape(format!(
            "{} probes but {} probe labels",
            probes.rows,
            labels.len()
        )));
    }
    let mut ranks = config.ranks.clone();
    ranks.sort_unstable();
    ranks.dedup();
    if ranks.is_empty() || ranks[0] == 0 {
        return Err(EvalError::Protocol(format!(
            "ranks must be a non-empty list of integers >= 1, got {:?}",
            config.ranks
        )));
    }
    if distractors.rows > u32::MAX as usize || probes.rows > u32::MAX as usize {
        return Err(EvalError::Shape("more than 2^32 - 1 rows".into()));
    }
    probes.check_finite("probes")?;
    distractors.check_finite("distractors")?;
    let max_rank = *ranks.last().expect("non-empty");
    let dim = probes.dim;

    // Probe identities with at least two images.
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        groups.entry(l).or_default().push(i);
    }
    let skipped: usize = groups.values().filter(|g| g.len() < 2).map(Vec::len).sum();
    groups.retain(|_, g| g.len() >= 2);
    if groups.is_empty() {
        return Err(EvalError::Protocol(format!(
            "no probe identity has at least 2 images ({} probes, all of distinct identities)",
            probes.rows
        )));
    }
    // Kept probes, renumbered 0..n_kept in label order; `groups` now holds kept indices.
    let mut kept: Vec<usize> = Vec::new();
    let groups: Vec<Vec<usize>> = groups
        .into_values()
        .map(|g| {
            g.into_iter()
                .map(|i| {
                    kept.push(i);
                    kept.len() - 1
                })
                .collect()
        })
        .collect();
    let n_kept = kept.len();
    let probe64: Vec<Vec<f64>> = kept
        .par_iter()
        .map(|&i| normalize_f64(probes.row(i)))
        .collect();
    let probe32: Vec<f32> = probe64
        .iter()
        .flat_map(|r| r.iter().map(|&v| v as f32))
        .collect();
    let inv_norms: Vec<f32> = distractors
        .data
        .par_chunks(dim)
        .map(|row| {
            let n = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            if n > 0.0 {
                (1.0 / n) as f32
            } else {
                0.0
            }
        })
        .collect();

    let n_dist = distractors.rows;
    let impostor_pairs = n_kept as u64 * n_dist as u64;
    let tar_defined = IDENTIFICATION_FAR >= 1.0 / impostor_pairs as f64;
    let allowed = allowed_false_accepts(IDENTIFICATION_FAR, impostor_pairs);
    let impostor_capacity = if tar_defined {
        (allowed as usize + 1 + config.margin).min(impostor_pairs as usize)
    } else {
        0
    };
    let per_probe_capacity = (max_rank + config.margin).min(n_dist);

    // Blocks: enough of them to keep every thread busy.
    let threads = rayon::current_num_threads().max(1);
    let probe_block = n_kept
        .div_ceil(2 * threads)
        .clamp(8, config.probe_block.max(8));
    let dist_block = config.distractor_block.max(1);
    let n_pblocks = n_kept.div_ceil(probe_block);
    let n_dblocks = n_dist.div_ceil(dist_block);
    let bar = if config.progress {
        let bar = ProgressBar::new((n_pblocks * n_dblocks) as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "identify {bar:40} {pos}/{len} blocks [{elapsed_precise} < {eta_precise}]",
            )
            .expect("static template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let blocks: Vec<BlockCandidates> = (0..n_pblocks)
        .into_par_iter()
        .map(|pb| {
            let p0 = pb * probe_block;
            let rows = probe_block.min(n_kept - p0);
            let a = &probe32[p0 * dim..(p0 + rows) * dim];
            let mut per_probe: Vec<TopK<u32>> =
                (0..rows).map(|_| TopK::new(per_probe_capacity)).collect();
            let mut impostors = TopK::new(impostor_capacity);
            let mut scratch = vec![0f32; rows * dist_block];
            for db in 0..n_dblocks {
                let d0 = db * dist_block;
                let cols = dist_block.min(n_dist - d0);
                let out = &mut scratch[..rows * cols];
                cosine_block(
                    a,
                    rows,
                    &distractors.data[d0 * dim..(d0 + cols) * dim],
                    cols,
                    dim,
                    &inv_norms[d0..d0 + cols],
                    out,
                );
                for (r, (row, heap)) in out.chunks_exact(cols).zip(&mut per_probe).enumerate() {
                    let probe = (p0 + r) as u32;
                    let mut t_row = heap.threshold();
                    let mut t_imp = impostors.threshold();
                    let mut t_min = t_row.min(t_imp);
                    for (c, &s) in row.iter().enumerate() {
                        if s > t_min {
                            let j = (d0 + c) as u32;
                            if s > t_row {
                                heap.push(s, j);
                                t_row = heap.threshold();
                            }
                            if s > t_imp {
                                impostors.push(s, (probe, j));
                                t_imp = impostors.threshold();
                            }
                            t_min = t_row.min(t_imp);
                        }
                    }
                }
                bar.inc(1);
            }
            BlockCandidates {
                per_probe,
                impostors,
            }
        })
        .collect();
    bar.finish_and_clear();

    // Rescore candidates in f64.
    let mut impostor_tail = TopK::new(impostor_capacity);
    let mut per_probe_f32: Vec<TopK<u32>> = Vec::with_capacity(n_kept);
    for b in blocks {
        impostor_tail.merge(b.impostors);
        per_probe_f32.extend(b.per_probe);
    }
    let distractor64 = |j: u32| normalize_f64(distractors.row(j as usize));
    // t[i][k-1] = k-th largest f64 distractor score of kept probe i (-inf past the end).
    let thresholds: Vec<Vec<f64>> = per_probe_f32
        .into_par_iter()
        .enumerate()
        .map(|(i, heap)| {
            let mut s: Vec<f64> = heap
                .into_vec()
                .into_iter()
                .map(|(_, j)| dot_f64(&probe64[i], &distractor64(j)))
                .collect();
            s.sort_by(|a, b| b.total_cmp(a));
            s.resize(max_rank.max(s.len()), f64::NEG_INFINITY);
            s.truncate(max_rank);
            s
        })
        .collect();
    let impostor_cut = if tar_defined {
        let mut s: Vec<f64> = impostor_tail
            .into_vec()
            .into_par_iter()
            .map(|(_, (i, j))| dot_f64(&probe64[i as usize], &distractor64(j)))
            .collect();
        s.sort_by(|a, b| b.total_cmp(a));
        // s_(m+1), or -inf when every impostor is allowed.
        Some(
            s.get(allowed as usize)
                .copied()
                .unwrap_or(f64::NEG_INFINITY),
        )
    } else {
        None
    };

    // Genuine pairs.
    let mut successes = vec![0u64; max_rank];
    let mut ordered_pairs = 0u64;
    let mut genuine_pairs = 0u64;
    let mut genuine_accepted = 0u64;
    for group in &groups {
        for (a, &i) in group.iter().enumerate() {
            for (b, &j) in group.iter().enumerate() {
                if a == b {
                    continue;
                }
                let sim = dot_f64(&probe64[i], &probe64[j]);
                ordered_pairs += 1;
                for (k, t) in thresholds[i].iter().enumerate() {
                    if sim > *t {
                        successes[k] += 1;
                    }
                }
                if a < b {
                    genuine_pairs += 1;
                    if impostor_cut.is_some_and(|cut| sim > cut) {
                        genuine_accepted += 1;
                    }
                }
            }
        }
    }
    let cmc: Vec<f64> = successes
        .iter()
        .map(|&s| s as f64 / ordered_pairs as f64)
        .collect();
    let rank = RankRates(ranks.iter().map(|&k| (k, cmc[k - 1])).collect());
    Ok(IdentificationReport {
        rank,
        cmc,
        pairs: ordered_pairs,
        tar_at_far_1e_6: impostor_cut.map(|_| genuine_accepted as f64 / genuine_pairs as f64),
        distractors: n_dist,
        probes: n_kept,
        probe_identities: groups.len(),
        skipped_single_image_probes: skipped,
        genuine_pairs,
        impostor_pairs,
        dim,
        protocol: IDENTIFICATION_PROTOCOL.to_string(),
    })
}
