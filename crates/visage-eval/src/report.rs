//! The verification report (`OUT.json` of `visage verify`): 10-fold accuracy plus the pooled
//! ROC numbers, and the function that computes it from embeddings and pairs.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::pairs::Pairs;
use crate::roc::RocCurve;
use crate::similarity::{dot_f64, normalize_f64, squared_l2_f64};
use crate::verification::{ten_fold_accuracy, TenFoldAccuracy};
use crate::{Embeddings, EvalError};

/// The FAR values reported, with their JSON keys.
pub const REPORTED_FARS: [(&str, f64); 6] = [
    ("1e-1", 1e-1),
    ("1e-2", 1e-2),
    ("1e-3", 1e-3),
    ("1e-4", 1e-4),
    ("1e-5", 1e-5),
    ("1e-6", 1e-6),
];

/// What the report says about how its numbers were computed.
pub const VERIFICATION_PROTOCOL: &str = "10 contiguous folds in pair order (first n mod 10 folds one pair longer); \
distance = squared L2 of L2-normalised embeddings in f64 (zero rows stay zero); thresholds i/100 for i in 0..400, \
same iff distance < threshold; first threshold maximising the 9 training folds; mean and population std (ddof=0). \
ROC on cosine scores, every distinct score a threshold (scikit-learn roc_curve, drop_intermediate=False); \
TAR@FAR = largest TPR with FPR <= FAR, no interpolation, null when FAR < 1/impostors; \
EER by linear interpolation where FAR = 1 - TAR; AUC trapezoidal.";

/// Per-pair numbers, in pair order.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScores {
    /// Cosine similarity of each pair, in f64.
    pub cosine: Vec<f64>,
    /// Squared L2 distance of the normalised embeddings of each pair, in f64.
    pub distance: Vec<f64>,
    /// Whether each pair is genuine.
    pub same: Vec<bool>,
}

impl PairScores {
    /// Cosine scores of the genuine pairs.
    pub fn genuine_scores(&self) -> Vec<f64> {
        self.select(true)
    }

    /// Cosine scores of the impostor pairs.
    pub fn impostor_scores(&self) -> Vec<f64> {
        self.select(false)
    }

    fn select(&self, same: bool) -> Vec<f64> {
        self.cosine
            .iter()
            .zip(&self.same)
            .filter(|(_, &s)| s == same)
            .map(|(&c, _)| c)
            .collect()
    }
}

/// The JSON verification report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationReport {
    /// Mean of the 10 held-out fold accuracies.
    pub accuracy_mean: f64,
    /// Population standard deviation (ddof = 0) of the 10 fold accuracies.
    pub accuracy_std: f64,
    /// Distance threshold chosen for each fold.
    pub fold_thresholds: Vec<f64>,
    /// Held-out accuracy of each fold.
    pub fold_accuracies: Vec<f64>,
    /// TAR at FAR, keyed "1e-1" .. "1e-6"; `null` where undefined.
    pub tar_at_far: BTreeMap<String, Option<f64>>,
    /// Equal error rate.
    pub eer: f64,
    /// Area under the ROC curve.
    pub auc: f64,
    /// Number of pairs.
    pub pairs: usize,
    /// Number of genuine pairs.
    pub genuine: usize,
    /// Number of impostor pairs.
    pub impostor: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// How the numbers were computed.
    pub protocol: String,
}

/// A verification run: the report and what the plots need.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The JSON report.
    pub report: VerificationReport,
    /// The pooled ROC curve.
    pub roc: RocCurve,
    /// Per-pair scores.
    pub scores: PairScores,
    /// The 10-fold details.
    pub ten_fold: TenFoldAccuracy,
}

/// Scores every pair in f64: cosine and squared L2 of the normalised rows.
pub fn score_pairs(embeddings: &Embeddings, pairs: &Pairs) -> Result<PairScores, EvalError> {
    embeddings.check_non_empty("embeddings")?;
    embeddings.check_finite("embeddings")?;
    pairs.check_rows(embeddings)?;
    let (cosine, distance): (Vec<f64>, Vec<f64>) = pairs
        .0
        .par_iter()
        .map(|p| {
            let a = normalize_f64(embeddings.row(p.first));
            let b = normalize_f64(embeddings.row(p.second));
            (dot_f64(&a, &b), squared_l2_f64(&a, &b))
        })
        .unzip();
    Ok(PairScores {
        cosine,
        distance,
        same: pairs.0.iter().map(|p| p.same).collect(),
    })
}

/// Runs the whole verification protocol on `pairs` of rows of `embeddings`.
///
/// Errors on NaN/infinite embeddings, rows out of range, fewer than 10 pairs, or a pair set
/// without genuine or without impostor pairs.
pub fn verify_pairs(embeddings: &Embeddings, pairs: &Pairs) -> Result<Verification, EvalError> {
    if pairs.is_empty() {
        return Err(EvalError::Protocol("no verification pairs".into()));
    }
    let scores = score_pairs(embeddings, pairs)?;
    let roc = RocCurve::new(&scores.cosine, &scores.same)?;
    let ten_fold = ten_fold_accuracy(&scores.distance, &scores.same)?;
    let tar_at_far = REPORTED_FARS
        .iter()
        .map(|&(key, far)| (key.to_string(), roc.tar_at_far(far)))
        .collect();
    let report = VerificationReport {
        accuracy_mean: ten_fold.mean,
        accuracy_std: ten_fold.std,
        fold_thresholds: ten_fold.fold_thresholds.clone(),
        fold_accuracies: ten_fold.fold_accuracies.clone(),
        tar_at_far,
        eer: roc.eer(),
        auc: roc.auc(),
        pairs: pairs.len(),
        genuine: pairs.genuine(),
        impostor: pairs.impostor(),
        dim: embeddings.dim,
        protocol: VERIFICATION_PROTOCOL.to_string(),
    };
    Ok(Verification {
        report,
        roc,
        scores,
        ten_fold,
    })
}

/// Verification in the InsightFace order: pair `i` = rows `2i`, `2i + 1`, `issame[i]`.
/// Errors on an odd row count or when `rows != 2 * issame.len()`.
pub fn verify_interleaved(
    embeddings: &Embeddings,
    issame: &[bool],
) -> Result<Verification, EvalError> {
    let pairs = Pairs::interleaved_for(embeddings.rows, issame)?;
    verify_pairs(embeddings, &pairs)
}

/// Writes any report as pretty JSON, through a temporary file renamed into place.
pub fn write_report<T: Serialize>(path: impl AsRef<Path>, report: &T) -> Result<(), EvalError> {
    let path = path.as_ref();
    let mut text = serde_json::to_string_pretty(report).map_err(|source| EvalError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    crate::io::write_atomic(path, text.as_bytes())
}
