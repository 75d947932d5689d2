//! ROC curve of similarity scores, TAR@FAR, EER and AUC.
//!
//! The ROC points are built as scikit-learn's `roc_curve(y, score, drop_intermediate=False)`:
//! scores sorted in decreasing order, every distinct score is a threshold `t`, and the point of
//! `t` is `(FPR, TPR) = (#impostors >= t / I, #genuine >= t / G)`; a first point `(0, 0)`
//! (threshold `+inf`) is prepended. We keep every point (no `drop_intermediate`, scikit-learn's
//! default): dropping collinear points leaves the EER and the AUC unchanged but can lower
//! TAR@FAR when genuine and impostor scores tie, and the protocol says "every distinct score a
//! threshold".
//!
//! - TAR@FAR=x: the largest TPR among points with `FPR <= x` (f64 comparison of `fp / I` with
//!   `x`), no interpolation; undefined (`None`) when `x < 1 / I`.
//! - EER: the ROC is the polyline through its points; the EER is the FAR where that polyline
//!   meets the line `FAR = 1 - TAR` (linear interpolation between the last point with
//!   `FPR < 1 - TPR` and the next one).
//! - AUC: trapezoidal rule over all points.

use crate::EvalError;

/// An ROC curve with integer counts kept beside the rates.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// Score thresholds, decreasing; the first is `+inf`.
    pub thresholds: Vec<f64>,
    /// Impostor pairs with score `>=` threshold.
    pub false_positives: Vec<u64>,
    /// Genuine pairs with score `>=` threshold.
    pub true_positives: Vec<u64>,
    /// False-accept rate at each threshold.
    pub fpr: Vec<f64>,
    /// True-accept rate at each threshold.
    pub tpr: Vec<f64>,
    /// Number of genuine pairs.
    pub genuine: u64,
    /// Number of impostor pairs.
    pub impostor: u64,
}

impl RocCurve {
    /// Builds the curve from scores (higher = more similar) and genuine flags. Errors on a
    /// length mismatch, a NaN score, or when there is no genuine or no impostor pair.
    pub fn new(scores: &[f64], genuine: &[bool]) -> Result<Self, EvalError> {
        if scores.len() != genuine.len() {
            return Err(EvalError::Shape(format!(
                "{} scores but {} genuine flags",
                scores.len(),
                genuine.len()
            )));
        }
        if let Some(k) = scores.iter().position(|s| s.is_nan()) {
            return Err(EvalError::Protocol(format!("score of pair {k} is NaN")));
        }
        let g = genuine.iter().filter(|&&s| s).count() as u64;
        let i = genuine.len() as u64 - g;
        if g == 0 || i == 0 {
            return Err(EvalError::Protocol(format!(
                "an ROC curve needs genuine and impostor pairs; got {g} genuine and {i} impostor"
            )));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

        let mut thresholds = vec![f64::INFINITY];
        let mut false_positives = vec![0u64];
        let mut true_positives = vec![0u64];
        let (mut tp, mut fp) = (0u64, 0u64);
        for (k, &idx) in order.iter().enumerate() {
            if genuine[idx] {
                tp += 1;
            } else {
                fp += 1;
            }
            let last_of_group = order
                .get(k + 1)
                .is_none_or(|&next| scores[next] != scores[idx]);
            if last_of_group {
                thresholds.push(scores[idx]);
                true_positives.push(tp);
                false_positives.push(fp);
            }
        }
        let fpr = false_positives
            .iter()
            .map(|&f| f as f64 / i as f64)
            .collect();
        let tpr = true_positives
            .iter()
            .map(|&t| t as f64 / g as f64)
            .collect();
        Ok(Self {
            thresholds,
            false_positives,
            true_positives,
            fpr,
            tpr,
            genuine: g,
            impostor: i,
        })
    }

    /// TAR at FAR = `far`: the largest TPR among points with FPR `<= far`, or `None` when
    /// `far < 1 / impostors` (too few impostor pairs to measure it).
    pub fn tar_at_far(&self, far: f64) -> Option<f64> {
        if far < 1.0 / self.impostor as f64 {
            return None;
        }
        self.fpr
            .iter()
            .zip(&self.tpr)
            .filter(|(&f, _)| f <= far)
            .map(|(_, &t)| t)
            .fold(None, |best: Option<f64>, t| {
                Some(best.map_or(t, |b| b.max(t)))
            })
    }

    /// Equal error rate: where the ROC polyline crosses `FAR = 1 - TAR`.
    pub fn eer(&self) -> f64 {
        // h = FPR - FNR = FPR + TPR - 1 rises from -1 at (0, 0) to 1 at (1, 1).
        let h = |k: usize| self.fpr[k] + self.tpr[k] - 1.0;
        let k = (1..self.fpr.len())
            .find(|&k| h(k) >= 0.0)
            .unwrap_or(self.fpr.len() - 1);
        let (h0, h1) = (h(k - 1), h(k));
        if h1 == h0 {
            return self.fpr[k];
        }
        let s = -h0 / (h1 - h0);
        self.fpr[k - 1] + s * (self.fpr[k] - self.fpr[k - 1])
    }

    /// Area under the curve by the trapezoidal rule.
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(f, t)| (f[1] - f[0]) * (t[1] + t[0]) / 2.0)
            .sum()
    }
}
