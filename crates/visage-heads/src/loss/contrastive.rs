//! Contrastive loss: DeepID2's verification signal (Sun et al. 2014).

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::check::{positive_at_most, MAX_MARGIN};
use crate::ops::{l2_normalize, pairwise_squared_distances, same_label_mask, sqrt_distances};
use crate::{HeadError, HeadOutput};

/// Configuration of [`Contrastive`]. For a pair at distance `d = |f_i - f_j|` (L2, not
/// squared): same identity `0.5 d^2`, different `0.5 max(0, m - d)^2`. Pairs are every
/// `i < j` in the batch; the loss is the mean over those pairs (0 with zero gradient for a
/// batch of one). At `d = 0` the gradient of the impostor term is defined as zero.
///
/// Also the `[head]` table of `kind = "contrastive"` (fields `margin`, `normalize`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContrastiveConfig {
    /// Margin m on the (unsquared) distance of impostor pairs, in `(0, 1e4]`
    /// ([`crate::check::MAX_MARGIN`]). Default 1.
    pub margin: f64,
    /// L2-normalise the features first (off: DeepID2 works on raw features). Default false.
    pub normalize: bool,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        ContrastiveConfig {
            margin: 1.0,
            normalize: false,
        }
    }
}

impl ContrastiveConfig {
    /// The defaults (margin 1, raw features).
    pub fn new() -> Self {
        Self::default()
    }

    /// With margin `margin`.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// With or without feature normalisation.
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        positive_at_most("margin", self.margin, MAX_MARGIN).map(|_| ())
    }

    /// The loss function.
    pub fn init(&self) -> Result<Contrastive, HeadError> {
        self.validate()?;
        Ok(Contrastive {
            margin: self.margin,
            normalize: self.normalize,
        })
    }
}

/// Contrastive loss over every pair of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contrastive {
    /// Margin m.
    pub margin: f64,
    /// Whether features are L2-normalised first.
    pub normalize: bool,
}

impl Contrastive {
    /// The mean loss over the pairs `i < j`.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[1]`
    pub fn loss<B: Backend>(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let n = x.dims()[0];
        let x = if self.normalize { l2_normalize(x) } else { x };
        let squared = pairwise_squared_distances(x);
        let distance = sqrt_distances(squared.clone());
        let same = same_label_mask::<B>(labels, squared.dtype());
        let upper = squared.ones_like().triu(1);
        let genuine = squared.mul_scalar(0.5) * same.clone();
        let impostor = distance
            .neg()
            .add_scalar(self.margin)
            .clamp_min(0.0)
            .square()
            .mul_scalar(0.5)
            * same.neg().add_scalar(1.0);
        let pairs = (n * n.saturating_sub(1) / 2).max(1);
        ((genuine + impostor) * upper)
            .sum()
            .div_scalar(pairs as f64)
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
