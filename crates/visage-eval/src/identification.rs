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
//! Computation: the distractors are split into blocks (rayon runs blocks in parallel); each
//! block's inverse norms are computed (in f64, which also checks the values are finite), the
//! kept probes (up to `probe_block` at a time) are scored against it with the f32 GEMM of
//! [`crate::score_block`] into a per-thread scratch buffer of `probes x distractor_block` raw
//! dot products, and every score (dot times inverse norm) is offered to the probe's
//! top-(K + margin) heap and to the thread's impostor heap; a run of 16 scores none of which
//! beats the smaller heap threshold is skipped with one vectorised test. Memory is
//! O(threads x blocks), never probes x distractors. [`identify_stream`] reads the distractors
//! in chunks on a reader thread while earlier chunks are scored, and keeps only a few chunks
//! in memory: the f64 rescoring reads back just the candidate rows (the exact fallbacks below
//! read the whole matrix). The f32 scores only select candidates: afterwards every kept
//! candidate is rescored in f64 (cosine of the f64-normalised rows, as in verification) and
//! the ranks, thresholds and the TAR are decided on the f64 scores.
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

use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::score_block::dot_block;
use crate::similarity::{dot_f64, normalize_f64};
use crate::topk::TopK;
use crate::{Embeddings, EvalError};
use visage_io::{NoProgress, Progress};

/// Progress shared by the scanner's threads: each finished block advances it by one.
type Ticker<'a> = std::sync::Mutex<&'a mut dyn Progress>;

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
}

impl Default for IdentificationConfig {
    fn default() -> Self {
        Self {
            ranks: vec![1, 5, 10],
            probe_block: 1024,
            distractor_block: 1024,
            margin: 8,
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

/// A read-only row-major matrix `[rows, dim]`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    data: &'a [f32],
    rows: usize,
    dim: usize,
}

impl<'a> Rows<'a> {
    fn of(e: &'a Embeddings) -> Self {
        Self {
            data: &e.data,
            rows: e.rows,
            dim: e.dim,
        }
    }

    fn row(&self, j: usize) -> &'a [f32] {
        &self.data[j * self.dim..(j + 1) * self.dim]
    }
}

/// `1 / ||row||` in f32 from an f64 sum of squares (0 for a zero row), or `None` when the row
/// holds a non-finite value (the sum of squares of finite f32 values cannot overflow f64).
/// Eight running sums, so the loop vectorises.
#[inline]
fn inv_norm(row: &[f32]) -> Option<f32> {
    let mut acc = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    let mut sum = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>();
    sum += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    if !sum.is_finite() {
        return None;
    }
    let n = sum.sqrt();
    Some(if n > 0.0 { (1.0 / n) as f32 } else { 0.0 })
}

/// Whether any `raw[c] * inv[c]` exceeds `t` (branch-free, so it vectorises).
#[inline]
fn any_above(raw: &[f32], inv: &[f32], t: f32) -> bool {
    raw.iter()
        .zip(inv)
        .fold(false, |any, (&s, &i)| any | (s * i > t))
}

/// One worker's state: what the visit accumulates, and its scratch buffers.
struct Worker<S> {
    state: S,
    scores: Vec<f32>,
    inv: Vec<f32>,
}

/// The f32 scoring of the kept probes against distractor rows: tasks of `dist_block`
/// distractors run in parallel (rayon); each computes the distractors' inverse norms (checking
/// that they are finite), scores up to `probe_block` probes at a time with one GEMM of
/// [`crate::score_block`] into the worker's scratch buffer, and hands each probe's row of raw
/// dot products, with the inverse norms, to `visit`. Each rayon thread has its own worker state
/// (behind an uncontended lock), kept across calls, so distractors can arrive in chunks.
struct Scanner<'a> {
    probe32: &'a [f32],
    n_probes: usize,
    dim: usize,
    probe_block: usize,
    dist_block: usize,
}

/// A non-finite distractor value: (row, column, value).
type NonFinite = (usize, usize, f32);

impl<'a> Scanner<'a> {
    fn workers<S>(&self, init: impl Fn() -> S) -> Vec<std::sync::Mutex<Worker<S>>> {
        (0..rayon::current_num_threads().max(1))
            .map(|_| {
                std::sync::Mutex::new(Worker {
                    state: init(),
                    scores: Vec::new(),
                    inv: Vec::new(),
                })
            })
            .collect()
    }

    fn tasks(&self, rows: usize) -> usize {
        rows.div_ceil(self.dist_block)
    }

    /// Scores the distractors `first .. first + chunk.len() / dim` (the rows of `chunk`).
    /// `visit(state, probe, d0, raw, inv)` sees the raw f32 dot products of probe `probe` with
    /// distractors `d0 .. d0 + raw.len()` and their inverse norms (the f32 cosine of column `c`
    /// is `raw[c] * inv[c]`). Returns the first non-finite distractor value, if any (then the
    /// visits of the chunk are incomplete).
    fn scan<S: Send>(
        &self,
        chunk: &[f32],
        first: usize,
        workers: &[std::sync::Mutex<Worker<S>>],
        bar: Option<&Ticker<'_>>,
        visit: &(impl Fn(&mut S, usize, usize, &[f32], &[f32]) + Sync),
    ) -> Option<NonFinite> {
        let dim = self.dim;
        let rows = chunk.len() / dim;
        let bad = std::sync::Mutex::new(None::<NonFinite>);
        (0..self.tasks(rows)).into_par_iter().for_each(|t| {
            let c0 = t * self.dist_block;
            let cols = self.dist_block.min(rows - c0);
            let block = &chunk[c0 * dim..(c0 + cols) * dim];
            let d0 = first + c0;
            let slot = rayon::current_thread_index().unwrap_or(0) % workers.len();
            let mut guard = workers[slot].lock().unwrap_or_else(|e| e.into_inner());
            let Worker { state, scores, inv } = &mut *guard;
            inv.clear();
            for (c, row) in block.chunks_exact(dim).enumerate() {
                match inv_norm(row) {
                    Some(v) => inv.push(v),
                    None => {
                        let col = row.iter().position(|v| !v.is_finite()).unwrap_or(0);
                        let mut bad = bad.lock().unwrap_or_else(|e| e.into_inner());
                        if bad.is_none_or(|(r, _, _)| d0 + c < r) {
                            *bad = Some((d0 + c, col, row[col]));
                        }
                        return;
                    }
                }
            }
            scores.resize(self.probe_block.min(self.n_probes) * cols, 0.0);
            for p0 in (0..self.n_probes).step_by(self.probe_block) {
                let prow = self.probe_block.min(self.n_probes - p0);
                let out = &mut scores[..prow * cols];
                dot_block(
                    &self.probe32[p0 * dim..(p0 + prow) * dim],
                    prow,
                    block,
                    cols,
                    dim,
                    out,
                );
                for (r, raw) in out.chunks_exact(cols).enumerate() {
                    visit(state, p0 + r, d0, raw, inv);
                }
            }
            if let Some(bar) = bar {
                bar.lock().unwrap_or_else(|e| e.into_inner()).advance(1);
            }
        });
        bad.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// The f32 candidates of one worker: per probe, and of the impostor tail.
struct Candidates {
    per_probe: Vec<TopK<u32>>,
    impostors: TopK<(u32, u32)>,
}

/// Pass 1's visit: offers every f32 cosine to the probe's heap and to the impostor heap. A run
/// of 16 scores none of which beats the smaller of the two thresholds is skipped at once.
fn offer_candidates(state: &mut Candidates, probe: usize, d0: usize, raw: &[f32], inv: &[f32]) {
    let heap = &mut state.per_probe[probe];
    let impostors = &mut state.impostors;
    let mut t_row = heap.threshold();
    let mut t_imp = impostors.threshold();
    let mut t_min = t_row.min(t_imp);
    for (k, (rs, is)) in raw.chunks(16).zip(inv.chunks(16)).enumerate() {
        if !any_above(rs, is, t_min) {
            continue;
        }
        for (c, (&s, &i)) in rs.iter().zip(is).enumerate() {
            let s = s * i;
            if s > t_min {
                let j = (d0 + 16 * k + c) as u32;
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
    }
}

/// The `k` largest f64 cosines of a normalised probe to every distractor, decreasing.
fn exact_top_scores(probe: &[f64], distractors: Rows<'_>, k: usize) -> Vec<f64> {
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

/// Everything decided before the distractors are scored: the kept probes, their identity
/// groups, the heap capacities and the f32 error bound.
struct Plan {
    ranks: Vec<usize>,
    max_rank: usize,
    dim: usize,
    skipped: usize,
    groups: Vec<Vec<usize>>,
    n_kept: usize,
    probe64: Vec<Vec<f64>>,
    probe32: Vec<f32>,
    n_dist: usize,
    impostor_pairs: u64,
    tar_defined: bool,
    allowed: usize,
    impostor_capacity: usize,
    per_probe_capacity: usize,
    eps: f64,
    probe_block: usize,
    dist_block: usize,
}

/// Checks the inputs (all but the distractors' values) and plans the computation.
fn plan(
    probes: &Embeddings,
    labels: &[i64],
    n_dist: usize,
    dist_dim: usize,
    config: &IdentificationConfig,
    check_distractors: impl FnOnce() -> Result<(), EvalError>,
) -> Result<Plan, EvalError> {
    probes.check_non_empty("probes")?;
    if n_dist == 0 || dist_dim == 0 {
        return Err(EvalError::Shape(format!(
            "distractors is [{n_dist}, {dist_dim}]: expected at least one row and a positive dimension"
        )));
    }
    if probes.dim != dist_dim {
        return Err(EvalError::Shape(format!(
            "probes are {}-d but distractors are {}-d",
            probes.dim, dist_dim
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
    if n_dist > u32::MAX as usize || probes.rows > u32::MAX as usize {
        return Err(EvalError::Shape("more than 2^32 - 1 rows".into()));
    }
    probes.check_finite("probes")?;
    check_distractors()?;
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
    Ok(Plan {
        ranks,
        max_rank,
        dim,
        skipped,
        groups,
        n_kept,
        probe64,
        probe32,
        n_dist,
        impostor_pairs,
        tar_defined,
        allowed,
        impostor_capacity,
        per_probe_capacity,
        eps,
        probe_block: config.probe_block.max(1),
        dist_block: config.distractor_block.clamp(1, n_dist.max(1)),
    })
}

impl Plan {
    fn scanner(&self) -> Scanner<'_> {
        Scanner {
            probe32: &self.probe32,
            n_probes: self.n_kept,
            dim: self.dim,
            probe_block: self.probe_block,
            dist_block: self.dist_block,
        }
    }

    fn candidate_workers(&self) -> Vec<std::sync::Mutex<Worker<Candidates>>> {
        self.scanner().workers(|| Candidates {
            per_probe: (0..self.n_kept)
                .map(|_| TopK::new(self.per_probe_capacity))
                .collect(),
            impostors: TopK::new(self.impostor_capacity),
        })
    }
}

fn non_finite_error((row, column, value): NonFinite) -> EvalError {
    EvalError::NonFinite {
        what: "distractors".to_string(),
        row,
        column,
        value,
    }
}

/// Runs MegaFace-style identification of `probes` (labelled by `labels`) against
/// `distractors`. Errors on shape mismatches, non-finite values, empty inputs, bad ranks, or
/// when no probe identity has two images. [`identify_with_progress`] reports its progress.
pub fn identify(
    probes: &Embeddings,
    labels: &[i64],
    distractors: &Embeddings,
    config: &IdentificationConfig,
) -> Result<IdentificationReport, EvalError> {
    identify_with_progress(probes, labels, distractors, config, &mut NoProgress)
}

/// [`identify`], reporting to `progress` one stage `"identify"` whose steps are the blocks of
/// distractors scored (the numbers do not depend on it).
pub fn identify_with_progress(
    probes: &Embeddings,
    labels: &[i64],
    distractors: &Embeddings,
    config: &IdentificationConfig,
    progress: &mut dyn Progress,
) -> Result<IdentificationReport, EvalError> {
    let plan = plan(
        probes,
        labels,
        distractors.rows,
        distractors.dim,
        config,
        || distractors.check_finite("distractors"),
    )?;
    let scanner = plan.scanner();
    progress.start("identify", scanner.tasks(plan.n_dist) as u64);
    let workers = plan.candidate_workers();
    let bar = std::sync::Mutex::new(progress);
    let scanned = scanner.scan(
        &distractors.data,
        0,
        &workers,
        Some(&bar),
        &offer_candidates,
    );
    let progress = bar.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.finish();
    if let Some(bad) = scanned {
        return Err(non_finite_error(bad));
    }
    finish(&plan, workers, Access::Memory(Rows::of(distractors)))
}

/// Distractor rows per chunk read by [`identify_stream`]'s reader thread (64 MiB at 512-d).
const STREAM_CHUNK_ROWS: usize = 32_768;

/// Chunk buffers in flight in [`identify_stream`] (the memory it holds for distractors).
const STREAM_BUFFERS: usize = 3;

/// [`identify`] with the distractors read by `distractors` while they are scored: a reader
/// thread reads them in chunks of rows into a few reused buffers, and each chunk is scored as
/// soon as it is read, so reading overlaps compute and the distractors are never all in
/// memory (a few chunks of 32,768 rows are). The f64 rescoring then reads back only the
/// candidate rows; the exact fallbacks, when they run (rarely), read the whole matrix. The
/// result is that of [`identify`] on the whole matrix; a non-finite distractor value is
/// reported when its chunk is scored (as the same [`EvalError::NonFinite`]).
/// [`identify_stream_with_progress`] reports its progress.
pub fn identify_stream(
    probes: &Embeddings,
    labels: &[i64],
    distractors: crate::io::EmbeddingReader,
    config: &IdentificationConfig,
) -> Result<IdentificationReport, EvalError> {
    identify_stream_with_progress(probes, labels, distractors, config, &mut NoProgress)
}

/// [`identify_stream`], reporting to `progress` one stage `"identify"` whose steps are the
/// blocks of distractors scored (the numbers do not depend on it).
pub fn identify_stream_with_progress(
    probes: &Embeddings,
    labels: &[i64],
    mut distractors: crate::io::EmbeddingReader,
    config: &IdentificationConfig,
    progress: &mut dyn Progress,
) -> Result<IdentificationReport, EvalError> {
    if distractors.in_memory().is_some() {
        let all = distractors.read_all()?;
        return identify_with_progress(probes, labels, &all, config, progress);
    }
    let (n_dist, dim) = (distractors.rows(), distractors.dim());
    let plan = plan(probes, labels, n_dist, dim, config, || Ok(()))?;
    let scanner = plan.scanner();
    // Chunks of whole scanner tasks.
    let chunk_rows = STREAM_CHUNK_ROWS.div_ceil(plan.dist_block) * plan.dist_block;
    let tasks: usize = (0..n_dist)
        .step_by(chunk_rows)
        .map(|c0| scanner.tasks(chunk_rows.min(n_dist - c0)))
        .sum();
    progress.start("identify", tasks as u64);
    let workers = plan.candidate_workers();
    let bar = std::sync::Mutex::new(progress);
    let distractors = std::thread::scope(|scope| -> Result<_, EvalError> {
        type Chunk = Result<(Vec<f32>, usize), EvalError>;
        let (full_tx, full_rx) = std::sync::mpsc::channel::<Chunk>();
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<f32>>();
        for _ in 0..STREAM_BUFFERS {
            free_tx.send(Vec::new()).expect("receiver alive");
        }
        let reader = scope.spawn(move || {
            let mut first = 0;
            while first < n_dist {
                let Ok(mut buf) = free_rx.recv() else { break };
                let rows = chunk_rows.min(n_dist - first);
                buf.resize(rows * dim, 0.0);
                let read = distractors.read_rows(&mut buf);
                let failed = read.is_err();
                if full_tx.send(read.map(|()| (buf, first))).is_err() || failed {
                    break;
                }
                first += rows;
            }
            distractors
        });
        for msg in full_rx {
            let (chunk, first) = msg?;
            if let Some(bad) = scanner.scan(&chunk, first, &workers, Some(&bar), &offer_candidates)
            {
                return Err(non_finite_error(bad));
            }
            // the reader may have finished: then the buffer is simply dropped
            let _ = free_tx.send(chunk);
        }
        Ok(reader.join().expect("the reader thread does not panic"))
    });
    bar.into_inner().unwrap_or_else(|e| e.into_inner()).finish();
    let distractors = distractors?;
    finish(&plan, workers, Access::stream(distractors))
}

/// How the f64 rescoring reaches distractor rows.
enum Access<'a> {
    /// The whole matrix, in memory.
    Memory(Rows<'a>),
    /// Streamed: the reader, then the candidate rows read back (`ids` increasing), and the
    /// whole matrix once a fallback needed it.
    Stream {
        reader: crate::io::EmbeddingReader,
        ids: Vec<u32>,
        rows: Vec<f32>,
        full: Option<Embeddings>,
    },
}

impl Access<'_> {
    fn stream(reader: crate::io::EmbeddingReader) -> Self {
        Access::Stream {
            reader,
            ids: Vec::new(),
            rows: Vec::new(),
            full: None,
        }
    }

    /// Reads back the rows `ids` (sorted, deduplicated here) of a streamed matrix.
    fn gather(&mut self, mut wanted: Vec<u32>) -> Result<(), EvalError> {
        if let Access::Stream {
            reader, ids, rows, ..
        } = self
        {
            wanted.sort_unstable();
            wanted.dedup();
            *rows = reader.read_rows_at(&wanted)?;
            *ids = wanted;
        }
        Ok(())
    }

    /// Row `j`, which must be in memory or gathered.
    fn row(&self, j: u32) -> &[f32] {
        match self {
            Access::Memory(m) => m.row(j as usize),
            Access::Stream {
                full: Some(full), ..
            } => full.row(j as usize),
            Access::Stream {
                reader, ids, rows, ..
            } => {
                let k = ids.binary_search(&j).expect("candidate rows are gathered");
                let dim = reader.dim();
                &rows[k * dim..(k + 1) * dim]
            }
        }
    }

    /// The whole matrix (read once, for the exact fallbacks).
    fn full(&mut self) -> Result<Rows<'_>, EvalError> {
        match self {
            Access::Memory(m) => Ok(*m),
            Access::Stream { reader, full, .. } => {
                if full.is_none() {
                    reader.rewind()?;
                    let mut data =
                        crate::io::stream::zeroed_f32(reader.path(), reader.rows() * reader.dim())?;
                    reader.read_rows(&mut data)?;
                    *full = Some(Embeddings::new(reader.rows(), reader.dim(), data)?);
                }
                Ok(Rows::of(full.as_ref().expect("just read")))
            }
        }
    }
}

/// The f64 rescoring, certification and fallbacks, then the report.
fn finish(
    plan: &Plan,
    workers: Vec<std::sync::Mutex<Worker<Candidates>>>,
    mut access: Access<'_>,
) -> Result<IdentificationReport, EvalError> {
    let Plan {
        max_rank,
        eps,
        allowed,
        tar_defined,
        ..
    } = *plan;
    let probe64 = &plan.probe64;
    let mut impostor_tail = TopK::new(plan.impostor_capacity);
    let mut per_probe_f32: Vec<TopK<u32>> = Vec::new();
    for w in workers {
        let Candidates {
            per_probe,
            impostors,
        } = w.into_inner().unwrap_or_else(|e| e.into_inner()).state;
        impostor_tail.merge(impostors);
        if per_probe_f32.is_empty() {
            per_probe_f32 = per_probe;
        } else {
            for (acc, heap) in per_probe_f32.iter_mut().zip(per_probe) {
                acc.merge(heap);
            }
        }
    }
    access.gather(
        per_probe_f32
            .iter()
            .flat_map(|h| h.iter().map(|&(_, j)| j))
            .chain(impostor_tail.iter().map(|&(_, (_, j))| j))
            .collect(),
    )?;

    // t[i][k-1] = k-th largest f64 distractor score of kept probe i (-inf past the end). The
    // f32 selection is certified when every dropped distractor (f32 score <= the smallest
    // kept one, so true score <= that + eps) lies below the f64 K-th score; otherwise the
    // probe is recomputed exactly over all distractors.
    let rescored: Vec<(Vec<f64>, bool)> = {
        let access = &access;
        per_probe_f32
            .into_par_iter()
            .enumerate()
            .map(|(i, heap)| {
                let floor = heap.is_full().then(|| f64::from(heap.threshold()));
                let mut s: Vec<f64> = heap
                    .into_vec()
                    .into_iter()
                    .map(|(_, j)| dot_f64(&probe64[i], &normalize_f64(access.row(j))))
                    .collect();
                s.sort_by(|a, b| b.total_cmp(a));
                let certified = match floor {
                    None => true,
                    Some(f) => s.len() >= max_rank && f + eps < s[max_rank - 1],
                };
                (s, certified)
            })
            .collect()
    };
    let uncertified: Vec<usize> = (0..rescored.len()).filter(|&i| !rescored[i].1).collect();
    let exact_recomputed = uncertified.len();
    let mut rescored: Vec<Vec<f64>> = rescored.into_iter().map(|(s, _)| s).collect();
    if !uncertified.is_empty() {
        let all = access.full()?;
        for i in uncertified {
            rescored[i] = exact_top_scores(&probe64[i], all, max_rank);
        }
    }
    let thresholds: Vec<Vec<f64>> = rescored
        .into_iter()
        .map(|mut s| {
            s.resize(max_rank.max(s.len()), f64::NEG_INFINITY);
            s.truncate(max_rank);
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
        let mut s: Vec<f64> = {
            let access = &access;
            impostor_tail
                .into_vec()
                .into_par_iter()
                .map(|(_, (i, j))| dot_f64(&probe64[i as usize], &normalize_f64(access.row(j))))
                .collect()
        };
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
            let distractors = access.full()?;
            let scanner = plan.scanner();
            let workers = scanner.workers(|| TopK::<(), f64>::new(allowed + 1));
            let visit =
                |heap: &mut TopK<(), f64>, probe: usize, d0: usize, raw: &[f32], inv: &[f32]| {
                    for (c, (&v, &i)) in raw.iter().zip(inv).enumerate() {
                        if v * i >= low {
                            let exact =
                                dot_f64(&probe64[probe], &normalize_f64(distractors.row(d0 + c)));
                            heap.push(exact, ());
                        }
                    }
                };
            // The values were checked finite by pass 1.
            let _ = scanner.scan(distractors.data, 0, &workers, None, &visit);
            let mut top = TopK::<(), f64>::new(allowed + 1);
            for w in workers {
                top.merge(w.into_inner().unwrap_or_else(|e| e.into_inner()).state);
            }
            let mut s: Vec<f64> = top.into_vec().into_iter().map(|(v, _)| v).collect();
            s.sort_by(|a, b| b.total_cmp(a));
            Some(s.get(allowed).copied().unwrap_or(f64::NEG_INFINITY))
        }
    } else {
        None
    };

    // Genuine pairs.
    let groups = &plan.groups;
    let mut successes = vec![0u64; max_rank];
    let mut ordered_pairs = 0u64;
    let mut genuine_pairs = 0u64;
    let mut genuine_accepted = 0u64;
    for group in groups {
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
    let rank = RankRates(plan.ranks.iter().map(|&k| (k, cmc[k - 1])).collect());
    Ok(IdentificationReport {
        rank,
        cmc,
        pairs: ordered_pairs,
        tar_at_far_1e_6: impostor_cut.map(|_| genuine_accepted as f64 / genuine_pairs as f64),
        distractors: plan.n_dist,
        probes: plan.n_kept,
        probe_identities: groups.len(),
        skipped_single_image_probes: plan.skipped,
        genuine_pairs,
        impostor_pairs: plan.impostor_pairs,
        dim: plan.dim,
        exact_recomputed_probes: exact_recomputed,
        impostor_second_pass,
        protocol: IDENTIFICATION_PROTOCOL.to_string(),
    })
}

/// A 1:N identification run on files (what `visage identify` does).
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    /// Probe embeddings f32 `[Np, d]` (`.npy` or `.safetensors` key `embeddings`).
    pub probes: std::path::PathBuf,
    /// Probe identity labels, integers `[Np]` (`.npy` or `.safetensors` key `labels`).
    pub probe_labels: std::path::PathBuf,
    /// Distractor embeddings f32 `[Nd, d]`; `.npy` rows are scored while they are read.
    pub distractors: std::path::PathBuf,
    /// Ranks and block sizes.
    pub config: IdentificationConfig,
    /// Output JSON report.
    pub report: std::path::PathBuf,
}

/// Runs `request`: checks the ranks before any file is read, reads the probes and labels,
/// streams the distractors ([`identify_stream_with_progress`]) and writes the report.
pub fn identify_files(
    request: &IdentifyRequest,
    progress: &mut dyn Progress,
) -> Result<IdentificationReport, EvalError> {
    check_ranks(&request.config.ranks)?;
    let probes = crate::io::read_embeddings(&request.probes)?;
    let labels = crate::io::read_labels(&request.probe_labels)?;
    // header only (.npy): the rows are read while they are scored
    let distractors = crate::io::EmbeddingReader::open(&request.distractors)?;
    let report =
        identify_stream_with_progress(&probes, &labels, distractors, &request.config, progress)?;
    crate::write_report(&request.report, &report)?;
    Ok(report)
}
