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
//! thresholds and the TAR are decided on the f64 scores.
//!
//! Exactness: per probe, K + max(margin, K) candidates are kept, and for the impostor tail
//! m + 1 + max(margin, (m + 1) / 4). With `eps = d * 2^-23`, a bound on the f32 error of a
//! score, the selection is certified when the smallest kept f32 score plus `eps` lies below the
//! f64 K-th score (resp. `s_(m+1)`): no dropped candidate can then reach it. An uncertified
//! probe is recomputed exactly in f64 over all distractors (`exact_recomputed_probes`); an
//! uncertified impostor tail triggers a second pass that rescores in f64 every impostor whose
//! f32 score is within `2 eps` of the cut (`impostor_second_pass`). The results are therefore
//! those of a plain f64 computation; on ordinary data neither fallback runs.

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
sgemm and certified against f32 rounding (else recomputed exactly); all deciding scores in f64.";

/// Largest rank [`identify`] reports: 10,000. The CMC curve is kept per probe up to the
/// largest requested rank (8 bytes per probe and rank), so a rank read from a flag is bounded
/// before anything is allocated; MegaFace reports ranks 1 to 10.
pub const MAX_RANK: usize = 10_000;

/// Checks a list of ranks: non-empty, each in `1..=MAX_RANK`. Returns them sorted and
/// deduplicated.
pub fn check_ranks(ranks: &[usize]) -> Result<Vec<usize>, EvalError> {
    let mut sorted = ranks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    match (sorted.first(), sorted.last()) {
        (Some(&lo), Some(&hi)) if lo >= 1 && hi <= MAX_RANK => Ok(sorted),
        _ => Err(EvalError::Protocol(format!(
            "ranks must be a non-empty list of integers from 1 to {MAX_RANK}, got {ranks:?}"
        ))),
    }
}

/// Knobs of [`identify`] (they change speed, never the result).
#[derive(Debug, Clone)]
pub struct IdentificationConfig {
    /// Ranks to report (each >= 1); the CMC curve goes up to the largest.
    pub ranks: Vec<usize>,
    /// Most probes per block.
    pub probe_block: usize,
    /// Distractors per block.
    pub distractor_block: usize,
    /// Minimum number of extra f32 candidates kept per heap before the f64 rescoring.
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
    /// Probes whose f32 candidate selection could not be certified against f32 rounding and
    /// whose distractor scores were recomputed exactly in f64 (usually 0).
    pub exact_recomputed_probes: usize,
    /// Whether the impostor tail needed a second, f64-checked pass (usually false).
    pub impostor_second_pass: bool,
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

/// The tiling of kept probes x distractors: probe blocks run in parallel (rayon), each
/// streaming every distractor block through [`cosine_block`] into one scratch buffer.
struct Tiles<'a> {
    probe32: &'a [f32],
    n_probes: usize,
    distractors: &'a [f32],
    n_dist: usize,
    dim: usize,
    inv_norms: &'a [f32],
    probe_block: usize,
    dist_block: usize,
}

impl<'a> Tiles<'a> {
    fn new(
        probe32: &'a [f32],
        n_probes: usize,
        distractors: &'a Embeddings,
        inv_norms: &'a [f32],
        config: &IdentificationConfig,
    ) -> Self {
        // Enough probe blocks to keep every thread busy, at most `config.probe_block` rows.
        let threads = rayon::current_num_threads().max(1);
        let probe_block = n_probes
            .div_ceil(2 * threads)
            .clamp(8, config.probe_block.max(8));
        Self {
            probe32,
            n_probes,
            distractors: &distractors.data,
            n_dist: distractors.rows,
            dim: distractors.dim,
            inv_norms,
            probe_block,
            dist_block: config.distractor_block.clamp(1, distractors.rows.max(1)),
        }
    }

    fn count(&self) -> usize {
        self.n_probes.div_ceil(self.probe_block) * self.n_dist.div_ceil(self.dist_block)
    }

    /// For every probe block, `init(rows)` makes a state; `visit(state, r, probe, d0, scores)`
    /// sees the f32 scores of probe `probe` (row `r` of the block) against distractors
    /// `d0 .. d0 + scores.len()`.
    fn scan<S: Send>(
        &self,
        bar: &ProgressBar,
        init: impl Fn(usize) -> S + Sync,
        visit: impl Fn(&mut S, usize, usize, usize, &[f32]) + Sync,
    ) -> Vec<S> {
        let dim = self.dim;
        let n_pblocks = self.n_probes.div_ceil(self.probe_block);
        (0..n_pblocks)
            .into_par_iter()
            .map(|pb| {
                let p0 = pb * self.probe_block;
                let rows = self.probe_block.min(self.n_probes - p0);
                let a = &self.probe32[p0 * dim..(p0 + rows) * dim];
                let mut state = init(rows);
                let mut scratch = vec![0f32; rows * self.dist_block];
                for d0 in (0..self.n_dist).step_by(self.dist_block) {
                    let cols = self.dist_block.min(self.n_dist - d0);
                    let out = &mut scratch[..rows * cols];
                    cosine_block(
                        a,
                        rows,
                        &self.distractors[d0 * dim..(d0 + cols) * dim],
                        cols,
                        dim,
                        &self.inv_norms[d0..d0 + cols],
                        out,
                    );
                    for (r, row) in out.chunks_exact(cols).enumerate() {
                        visit(&mut state, r, p0 + r, d0, row);
                    }
                    bar.inc(1);
                }
                state
            })
            .collect()
    }
}

/// The `k` largest f64 cosines of a normalised probe to every distractor, decreasing.
fn exact_top_scores(probe: &[f64], distractors: &Embeddings, k: usize) -> Vec<f64> {
    let top = (0..distractors.rows)
        .into_par_iter()
        .fold(
            || TopK::<(), f64>::new(k),
            |mut heap, j| {
                heap.push(dot_f64(probe, &normalize_f64(distractors.row(j))), ());
                heap
            },
        )
        .reduce(
            || TopK::new(k),
            |mut a, b| {
                a.merge(b);
                a
            },
        );
    let mut s: Vec<f64> = top.into_vec().into_iter().map(|(v, _)| v).collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s
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
    check_ranks(&config.ranks)?;
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
    let allowed = allowed_false_accepts(IDENTIFICATION_FAR, impostor_pairs) as usize;
    let margin = config.margin.max(1);
    let impostor_capacity = if tar_defined {
        (allowed + 1 + margin.max((allowed + 1) / 4)).min(impostor_pairs as usize)
    } else {
        0
    };
    let per_probe_capacity = (max_rank + margin.max(max_rank)).min(n_dist);
    // Bound on |f32 score - f64 cosine|: the f32 dot of a unit probe with a unit-scaled
    // distractor of d terms errs by at most about d * 2^-24 (plus a few ulps for the rounding
    // of the normalised probe and the scaling); d * 2^-23 is a safe margin.
    let eps = dim as f64 * f64::from(f32::EPSILON);

    let tiles = Tiles::new(&probe32, n_kept, distractors, &inv_norms, config);
    let bar = if config.progress {
        let bar = ProgressBar::new(tiles.count() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "identify {bar:40} {pos}/{len} tiles [{elapsed_precise} < {eta_precise}]",
            )
            .expect("static template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    // Pass 1: f32 candidates per probe and for the impostor tail.
    let blocks: Vec<BlockCandidates> = tiles.scan(
        &bar,
        |rows| BlockCandidates {
            per_probe: (0..rows).map(|_| TopK::new(per_probe_capacity)).collect(),
            impostors: TopK::new(impostor_capacity),
        },
        |state, r, probe, d0, row| {
            let heap = &mut state.per_probe[r];
            let impostors = &mut state.impostors;
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
                        impostors.push(s, (probe as u32, j));
                        t_imp = impostors.threshold();
                    }
                    t_min = t_row.min(t_imp);
                }
            }
        },
    );
    bar.finish_and_clear();

    let mut impostor_tail = TopK::new(impostor_capacity);
    let mut per_probe_f32: Vec<TopK<u32>> = Vec::with_capacity(n_kept);
    for b in blocks {
        impostor_tail.merge(b.impostors);
        per_probe_f32.extend(b.per_probe);
    }
    let distractor64 = |j: u32| normalize_f64(distractors.row(j as usize));

    // t[i][k-1] = k-th largest f64 distractor score of kept probe i (-inf past the end). The
    // f32 selection is certified when every dropped distractor (f32 score <= the smallest
    // kept one, so true score <= that + eps) lies below the f64 K-th score; otherwise the
    // probe is recomputed exactly over all distractors.
    let mut exact_recomputed = 0usize;
    let thresholds: Vec<Vec<f64>> = per_probe_f32
        .into_par_iter()
        .enumerate()
        .map(|(i, heap)| {
            let floor = heap.is_full().then(|| f64::from(heap.threshold()));
            let mut s: Vec<f64> = heap
                .into_vec()
                .into_iter()
                .map(|(_, j)| dot_f64(&probe64[i], &distractor64(j)))
                .collect();
            s.sort_by(|a, b| b.total_cmp(a));
            let certified = match floor {
                None => true,
                Some(f) => s.len() >= max_rank && f + eps < s[max_rank - 1],
            };
            if !certified {
                s = exact_top_scores(&probe64[i], distractors, max_rank);
            }
            s.resize(max_rank.max(s.len()), f64::NEG_INFINITY);
            s.truncate(max_rank);
            (s, !certified)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(s, recomputed)| {
            exact_recomputed += usize::from(recomputed);
            s
        })
        .collect();

    // s_(m+1), the (m+1)-th largest impostor score (-inf when every impostor is allowed),
    // certified like the per-probe thresholds; otherwise a second pass rescores in f64 every
    // impostor whose f32 score could reach it.
    let mut impostor_second_pass = false;
    let impostor_cut = if tar_defined {
        let floor = impostor_tail
            .is_full()
            .then(|| f64::from(impostor_tail.threshold()));
        let mut s: Vec<f64> = impostor_tail
            .into_vec()
            .into_par_iter()
            .map(|(_, (i, j))| dot_f64(&probe64[i as usize], &distractor64(j)))
            .collect();
        s.sort_by(|a, b| b.total_cmp(a));
        let cut = s.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
        let certified = floor.is_none_or(|f| f + eps < cut);
        if certified {
            Some(cut)
        } else {
            impostor_second_pass = true;
            // Every impostor of the true top m+1 has a true score >= cut (cut comes from a
            // subset), so an f32 score >= cut - eps: collect those, keeping the top m+1 in f64.
            let low = (cut - 2.0 * eps) as f32;
            let tails = tiles.scan(
                &ProgressBar::hidden(),
                |_| TopK::<(), f64>::new(allowed + 1),
                |heap, _, probe, d0, row| {
                    for (c, &v) in row.iter().enumerate() {
                        if v >= low {
                            let exact = dot_f64(&probe64[probe], &distractor64((d0 + c) as u32));
                            heap.push(exact, ());
                        }
                    }
                },
            );
            let mut top = TopK::<(), f64>::new(allowed + 1);
            for t in tails {
                top.merge(t);
            }
            let mut s: Vec<f64> = top.into_vec().into_iter().map(|(v, _)| v).collect();
            s.sort_by(|a, b| b.total_cmp(a));
            Some(s.get(allowed).copied().unwrap_or(f64::NEG_INFINITY))
        }
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
        exact_recomputed_probes: exact_recomputed,
        impostor_second_pass,
        protocol: IDENTIFICATION_PROTOCOL.to_string(),
    })
}
