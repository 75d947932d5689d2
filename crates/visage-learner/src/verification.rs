//! [`VerificationMetric`]: held-out face verification as a burn-train metric.

use std::sync::Arc;

use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use visage_eval::{verify_interleaved, Embeddings};

use crate::output::VerificationInput;
use crate::LearnerError;

/// Which number of the verification protocol a [`VerificationMetric`] reports, in percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationStat {
    /// Mean held-out accuracy of the 10-fold protocol (threshold chosen on the other 9 folds).
    Accuracy,
    /// True accept rate at a false accept rate, keyed as `visage-eval` reports it (`"1e-1"` to
    /// `"1e-6"`).
    TarAtFar(String),
}

/// Held-out verification (`visage_eval::verify_interleaved`: 10-fold accuracy and pooled ROC)
/// on a pair set whose `2N` images the validation loader feeds in pair order (images `2i`,
/// `2i + 1` form pair `i`; build the loader without `shuffle`).
///
/// The metric collects the embeddings of every batch of an epoch; at the batch that completes
/// the set it runs the protocol and logs the number with weight 1, earlier batches with weight
/// 0, so the epoch's aggregate is exactly the protocol's number. A set that cannot be scored
/// (more rows than `2N`, non-finite embeddings, an undefined TAR at that FAR) logs weight 0
/// with the reason in the formatted text, never a NaN.
#[derive(Debug, Clone)]
pub struct VerificationMetric {
    name: MetricName,
    stat: VerificationStat,
    issame: Arc<Vec<bool>>,
    rows: Vec<f32>,
    count: usize,
    dim: usize,
    last: Option<f64>,
}

impl VerificationMetric {
    /// The metric `stat` over pairs with same-identity flags `issame` (pair `i` = loader rows
    /// `2i`, `2i + 1`). Errors when the set has fewer than 10 pairs, lacks genuine or impostor
    /// pairs, or `stat` names a FAR the protocol does not report.
    pub fn new(stat: VerificationStat, issame: Vec<bool>) -> Result<Self, LearnerError> {
        if issame.len() < 10 {
            return Err(LearnerError::PairSet(format!(
                "{} pairs; the 10-fold protocol needs at least 10",
                issame.len()
            )));
        }
        if issame.iter().all(|&s| s) || issame.iter().all(|&s| !s) {
            return Err(LearnerError::PairSet(
                "needs both genuine and impostor pairs".into(),
            ));
        }
        let name = match &stat {
            VerificationStat::Accuracy => "Verification accuracy".to_string(),
            VerificationStat::TarAtFar(far) => {
                if !(1..=6).any(|k| far == &format!("1e-{k}")) {
                    return Err(LearnerError::PairSet(format!(
                        "TAR@FAR key {far:?}: expected one of 1e-1 .. 1e-6"
                    )));
                }
                format!("TAR@FAR={far}")
            }
        };
        Ok(Self {
            name: Arc::new(name),
            stat,
            issame: Arc::new(issame),
            rows: Vec::new(),
            count: 0,
            dim: 0,
            last: None,
        })
    }

    /// 10-fold accuracy over `issame`.
    pub fn accuracy(issame: Vec<bool>) -> Result<Self, LearnerError> {
        Self::new(VerificationStat::Accuracy, issame)
    }

    /// TAR at FAR `far` (`"1e-3"`) over `issame`.
    pub fn tar_at_far(issame: Vec<bool>, far: &str) -> Result<Self, LearnerError> {
        Self::new(VerificationStat::TarAtFar(far.to_string()), issame)
    }

    /// The last complete result, in percent.
    pub fn last(&self) -> Option<f64> {
        self.last
    }

    fn entry(&self, value: Option<f64>, note: &str) -> SerializedEntry {
        let serialized = NumericEntry::Aggregated {
            aggregated_value: value.unwrap_or(0.0),
            count: usize::from(value.is_some()),
        }
        .serialize();
        let formatted = match value {
            Some(v) => format!("{v:.2} %"),
            None => note.to_string(),
        };
        SerializedEntry::new(formatted, serialized)
    }

    fn reset_rows(&mut self) {
        self.rows.clear();
        self.count = 0;
        self.dim = 0;
    }

    /// Runs the protocol on the collected rows.
    fn score(&self) -> Result<Option<f64>, String> {
        let e =
            Embeddings::new(self.count, self.dim, self.rows.clone()).map_err(|e| e.to_string())?;
        let v = verify_interleaved(&e, &self.issame).map_err(|e| e.to_string())?;
        Ok(match &self.stat {
            VerificationStat::Accuracy => Some(100.0 * v.report.accuracy_mean),
            VerificationStat::TarAtFar(far) => v
                .report
                .tar_at_far
                .get(far)
                .copied()
                .flatten()
                .map(|t| 100.0 * t),
        })
    }
}

impl Metric for VerificationMetric {
    type Input = VerificationInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "held-out verification, {} pairs (visage-eval's 10-fold protocol)",
            self.issame.len()
        ))
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".into()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(&mut self, item: &VerificationInput, _metadata: &MetricMetadata) -> SerializedEntry {
        let (values, dim) = match &item.rows {
            Ok(rows) => rows,
            Err(e) => {
                self.reset_rows();
                return self.entry(None, &format!("cannot read embeddings: {e}"));
            }
        };
        if *dim == 0 || values.len() % dim != 0 || (self.count > 0 && *dim != self.dim) {
            let msg = format!(
                "batch of {} values with width {dim}, earlier batches width {}",
                values.len(),
                self.dim
            );
            self.reset_rows();
            return self.entry(None, &msg);
        }
        self.dim = *dim;
        self.count += values.len() / dim;
        self.rows.extend_from_slice(values);
        let need = 2 * self.issame.len();
        if self.count < need {
            return self.entry(None, &format!("{} of {need} images", self.count));
        }
        let result = if self.count > need {
            Err(format!(
                "{} images for {} pairs: the loader must give each image once, in pair order",
                self.count,
                self.issame.len()
            ))
        } else {
            self.score()
        };
        self.reset_rows();
        match result {
            Ok(Some(v)) => {
                self.last = Some(v);
                self.entry(Some(v), "")
            }
            Ok(None) => self.entry(None, "undefined (too few impostor pairs for this FAR)"),
            Err(e) => self.entry(None, &e),
        }
    }

    fn clear(&mut self) {
        self.reset_rows();
    }
}

impl Numeric for VerificationMetric {
    fn value(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.last.unwrap_or(0.0),
            count: usize::from(self.last.is_some()),
        }
    }

    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}
