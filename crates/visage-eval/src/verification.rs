//! 1:1 verification accuracy with the InsightFace 10-fold protocol.
//!
//! Distances are squared L2 between L2-normalised embeddings, in f64 (`2 - 2 cos`, in
//! `[0, 4]`). The 400 thresholds are `t_i = i / 100` for `i = 0..400`, computed as
//! `i as f64 / 100.0` (numpy's `np.arange(0, 4, 0.01)`, used by InsightFace, differs from
//! these by at most a few ulps). A pair is predicted "same" iff `distance < t` (strict).
//!
//! Pairs are split into 10 contiguous folds in file order (see [`crate::kfold`]). For each
//! fold, every threshold's accuracy is computed on the other 9 folds and the FIRST threshold
//! reaching the maximum is kept; the held-out fold's accuracy at that threshold is the fold's
//! score. Accuracies are compared as integer counts of correct pairs (the training set size is
//! the same for every threshold, so this is the same argmax as comparing ratios, without
//! rounding). The result is the mean and the population standard deviation (ddof = 0).

use serde::Serialize;

use crate::kfold::fold_ranges;
use crate::EvalError;

/// Number of folds of the protocol.
pub const FOLDS: usize = 10;
/// Number of distance thresholds `0.00, 0.01, ..., 3.99`.
pub const THRESHOLD_COUNT: usize = 400;

/// Threshold `i` of the protocol: `i / 100`.
pub fn threshold(i: usize) -> f64 {
    i as f64 / 100.0
}

/// The result of the 10-fold protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenFoldAccuracy {
    /// Accuracy of each held-out fold at its chosen threshold.
    pub fold_accuracies: Vec<f64>,
    /// The distance threshold chosen on the other 9 folds, for each fold.
    pub fold_thresholds: Vec<f64>,
    /// Mean of the 10 fold accuracies.
    pub mean: f64,
    /// Population standard deviation (ddof = 0) of the 10 fold accuracies.
    pub std: f64,
}

/// Runs the 10-fold protocol on per-pair distances and same/different flags (file order).
/// Errors when the lengths differ, when there are fewer than 10 pairs, or on a NaN distance.
pub fn ten_fold_accuracy(distances: &[f64], issame: &[bool]) -> Result<TenFoldAccuracy, EvalError> {
    let n = distances.len();
    if issame.len() != n {
        return Err(EvalError::Shape(format!(
            "{n} distances but {} same/different flags",
            issame.len()
        )));
    }
    if n < FOLDS {
        return Err(EvalError::Protocol(format!(
            "the 10-fold protocol needs at least 10 pairs, got {n}"
        )));
    }
    if let Some(k) = distances.iter().position(|d| d.is_nan()) {
        return Err(EvalError::Protocol(format!("distance of pair {k} is NaN")));
    }
    let thresholds: Vec<f64> = (0..THRESHOLD_COUNT).map(threshold).collect();
    let folds = fold_ranges(n, FOLDS);

    // correct[k][i]: pairs of fold k classified correctly at threshold i.
    let mut correct = vec![[0u64; THRESHOLD_COUNT]; FOLDS];
    for (k, range) in folds.iter().enumerate() {
        for p in range.clone() {
            let d = distances[p];
            let same = issame[p];
            for (i, &t) in thresholds.iter().enumerate() {
                if (d < t) == same {
                    correct[k][i] += 1;
                }
            }
        }
    }
    let mut total = [0u64; THRESHOLD_COUNT];
    for row in &correct {
        for (t, c) in total.iter_mut().zip(row) {
            *t += c;
        }
    }

    let mut fold_accuracies = Vec::with_capacity(FOLDS);
    let mut fold_thresholds = Vec::with_capacity(FOLDS);
    for (k, range) in folds.iter().enumerate() {
        let mut best = 0;
        let mut best_count = 0;
        for i in 0..THRESHOLD_COUNT {
            let train = total[i] - correct[k][i];
            if train > best_count {
                best_count = train;
                best = i;
            }
        }
        fold_thresholds.push(thresholds[best]);
        fold_accuracies.push(correct[k][best] as f64 / range.len() as f64);
    }
    let mean = fold_accuracies.iter().sum::<f64>() / FOLDS as f64;
    let var = fold_accuracies
        .iter()
        .map(|a| (a - mean) * (a - mean))
        .sum::<f64>()
        / FOLDS as f64;
    Ok(TenFoldAccuracy {
        fold_accuracies,
        fold_thresholds,
        mean,
        std: var.sqrt(),
    })
}
