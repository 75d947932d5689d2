//! Triplet loss (FaceNet, Schroff et al. 2015) with in-batch mining.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::check::{positive_at_most, MAX_MARGIN};
use crate::ops::{l2_normalize, pairwise_squared_distances, same_label_mask, sqrt_distances};
use crate::{HeadError, HeadOutput};

/// The distance between L2-normalised embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletDistance {
    /// `|a - b|^2`, in `[0, 4]` (FaceNet).
    SquaredL2,
    /// `|a - b|`, in `[0, 2]`.
    L2,
}

/// Which triplets of the batch are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletMining {
    /// Every valid `(a, p, n)`: `y_a = y_p`, `a != p`, `y_n != y_a`.
    All,
    /// FaceNet's semi-hard triplets: `d(a,p) < d(a,n) < d(a,p) + margin` (not TensorFlow's
    /// per-positive variant).
    SemiHard,
    /// Batch-hard: for each anchor with a positive and a negative, its farthest positive and
    /// its nearest negative.
    Hard,
}

/// How the per-triplet losses are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletReduction {
    /// Mean over every mined triplet.
    Mean,
    /// Mean over the mined triplets with a positive loss (pytorch-metric-learning's
    /// "avg non-zero").
    MeanNonzero,
}

/// Configuration of [`Triplet`]: `L = mean max(0, d(a,p) - d(a,n) + margin)` over the mined
/// triplets, on L2-normalised embeddings. A batch with no valid triplet gives loss 0 and zero
/// gradient.
///
/// Also the `[head]` table of `kind = "triplet"` (fields `margin`, `mining`, `distance`,
/// `reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletConfig {
    /// Margin alpha, in `(0, 1e4]` ([`crate::check::MAX_MARGIN`]; distances between
    /// normalised embeddings are at most 4 squared, 2 plain). Default 0.2 (FaceNet).
    pub margin: f64,
    /// Distance on normalised embeddings. Default `squared_l2` (FaceNet).
    pub distance: TripletDistance,
    /// Mining inside the batch. Default `all`.
    pub mining: TripletMining,
    /// Averaging of the per-triplet losses. Default `mean`.
    pub reduction: TripletReduction,
}

impl Default for TripletConfig {
    fn default() -> Self {
        TripletConfig {
            margin: 0.2,
            distance: TripletDistance::SquaredL2,
            mining: TripletMining::All,
            reduction: TripletReduction::Mean,
        }
    }
}

impl TripletConfig {
    /// The defaults (FaceNet: margin 0.2, squared L2, every valid triplet, mean).
    pub fn new() -> Self {
        Self::default()
    }

    /// With margin `margin`.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// With mining `mining`.
    pub fn with_mining(mut self, mining: TripletMining) -> Self {
        self.mining = mining;
        self
    }

    /// With distance `distance`.
    pub fn with_distance(mut self, distance: TripletDistance) -> Self {
        self.distance = distance;
        self
    }

    /// With reduction `reduction`.
    pub fn with_reduction(mut self, reduction: TripletReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        positive_at_most("margin", self.margin, MAX_MARGIN).map(|_| ())
    }

    /// The loss function.
    pub fn init(&self) -> Result<Triplet, HeadError> {
        self.validate()?;
        Ok(Triplet {
            margin: self.margin,
            distance: self.distance,
            mining: self.mining,
            reduction: self.reduction,
        })
    }
}

/// Triplet loss with in-batch mining.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triplet {
    /// Margin alpha.
    pub margin: f64,
    /// Distance.
    pub distance: TripletDistance,
    /// Mining.
    pub mining: TripletMining,
    /// Reduction.
    pub reduction: TripletReduction,
}

/// Offset that removes masked entries from a max or a min (distances are at most 4).
const MASK_OFFSET: f64 = 1e4;

impl Triplet {
    /// The distance matrix `[N, N]` of the normalised embeddings.
    fn distances<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let squared = pairwise_squared_distances(l2_normalize(x));
        match self.distance {
            TripletDistance::SquaredL2 => squared,
            TripletDistance::L2 => sqrt_distances(squared),
        }
    }

    /// The reduced loss. Mining uses the distances without gradient; the loss keeps it.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[1]`
    pub fn loss<B: Backend>(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let n = x.dims()[0];
        let device = x.device();
        let dist = self.distances(x);
        let dtype = dist.dtype();
        let same = same_label_mask::<B>(labels, dtype);
        // the identity in the mask's own dtype (`Tensor::eye` takes the device's default one)
        let rows = Tensor::<B, 1, Int>::arange(0..n as i64, &device);
        let diagonal = rows
            .clone()
            .reshape([n, 1])
            .expand([n, n])
            .equal(rows.reshape([1, n]).expand([n, n]));
        let eye = same.zeros_like().mask_fill(diagonal, 1.0);
        let positive = same.clone() - eye;
        let negative = same.neg().add_scalar(1.0);
        let (losses, selected) = match self.mining {
            TripletMining::All | TripletMining::SemiHard => {
                let ap = dist.clone().reshape([n, n, 1]).expand([n, n, n]);
                let an = dist.reshape([n, 1, n]).expand([n, n, n]);
                let mut valid = positive.reshape([n, n, 1]).expand([n, n, n])
                    * negative.reshape([n, 1, n]).expand([n, n, n]);
                if self.mining == TripletMining::SemiHard {
                    let (ap_d, an_d) = (ap.clone().detach(), an.clone().detach());
                    let farther =
                        crate::ops::mask_to_float(an_d.clone().greater(ap_d.clone()), dtype);
                    let within =
                        crate::ops::mask_to_float(an_d.lower(ap_d.add_scalar(self.margin)), dtype);
                    valid = valid * farther * within;
                }
                let losses = (ap - an).add_scalar(self.margin).clamp_min(0.0) * valid.clone();
                (losses.reshape([n * n * n]), valid.reshape([n * n * n]))
            }
            TripletMining::Hard => {
                let hardest_positive = (dist.clone()
                    + positive.clone().sub_scalar(1.0).mul_scalar(MASK_OFFSET))
                .max_dim(1);
                let hardest_negative = (dist
                    + negative
                        .clone()
                        .neg()
                        .add_scalar(1.0)
                        .mul_scalar(MASK_OFFSET))
                .min_dim(1);
                let has_positive =
                    crate::ops::mask_to_float(positive.sum_dim(1).greater_elem(0.0), dtype);
                let has_negative =
                    crate::ops::mask_to_float(negative.sum_dim(1).greater_elem(0.0), dtype);
                let valid = has_positive * has_negative; // [N, 1]
                let losses = (hardest_positive - hardest_negative)
                    .add_scalar(self.margin)
                    .clamp_min(0.0)
                    * valid.clone();
                (losses.reshape([n]), valid.reshape([n]))
            }
        };
        let count = match self.reduction {
            TripletReduction::Mean => selected.sum(),
            TripletReduction::MeanNonzero => {
                crate::ops::mask_to_float(losses.clone().detach().greater_elem(0.0), dtype).sum()
            }
        };
        losses.sum() / count.clamp_min(1.0)
    }

    /// The loss as a [`HeadOutput`] (no logits).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`
    pub fn forward<B: Backend>(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        HeadOutput {
            loss: self.loss(x, labels),
            logits: None,
        }
    }
}
