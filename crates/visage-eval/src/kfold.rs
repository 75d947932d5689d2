//! Contiguous, unshuffled k-fold splits (scikit-learn `KFold(n_splits, shuffle=False)`).
//!
//! Fold `k` holds `n / folds` items, plus one for the first `n mod folds` folds; folds are
//! consecutive in input order. For n = 25 and 10 folds: sizes 3,3,3,3,3,2,2,2,2,2.

use std::ops::Range;

/// The half-open index range of every fold, in order. Requires `folds >= 1`; folds are empty
/// when `n < folds` (callers reject that case).
pub fn fold_ranges(n: usize, folds: usize) -> Vec<Range<usize>> {
    let base = n / folds;
    let longer = n % folds;
    let mut start = 0;
    (0..folds)
        .map(|k| {
            let len = base + usize::from(k < longer);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}
