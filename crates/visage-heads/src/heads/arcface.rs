//! ArcFace (Deng et al. 2019): additive angular margin, in its safe form.

use std::f64::consts::PI;

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::CosineMarginHead;
use crate::check::in_range;
use crate::margin::{arcface, straight_through};
use crate::HeadError;

/// `kind = "arcface"`: target logit `s cos(theta_y + m)` ([`crate::margin::arcface`], with
/// its fallback past `theta + m > pi`), others `s cos theta_j`, x and W L2-normalised. Paper
/// defaults s = 64, m = 0.5.
///
/// `detach_margin` (InsightFace since Dec 2022) keeps the forward value but lets the gradient
/// through the target as if no margin were applied (`c + stop_grad(phi(c) - c)`,
/// [`crate::margin::straight_through`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArcFaceConfig {
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::check::MAX_SCALE`]).
    /// Default 64.
    pub scale: f64,
    /// Additive angular margin m in radians, `0 <= m < pi/2`. Default 0.5.
    pub margin: f64,
    /// Use the margin only where `cos theta_y > 0`, the plain cosine elsewhere. Default false.
    pub easy_margin: bool,
    /// Compute the margin without gradient (forward unchanged). Default false.
    pub detach_margin: bool,
    /// Classes per block of the training loss: set, the loss and its gradients are computed
    /// over blocks of this many classes ([`crate::loss::chunked_margin_cross_entropy`]),
    /// never holding the `[N, C]` logits (one extra GEMM per block; what it saves today:
    /// docs/losses.md), and the head returns no training logits. At least 1. Default: absent,
    /// the full head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl Default for ArcFaceConfig {
    fn default() -> Self {
        ArcFaceConfig {
            scale: 64.0,
            margin: 0.5,
            easy_margin: false,
            detach_margin: false,
            chunk_classes: None,
        }
    }
}

/// Checks an ArcFace margin `m` in `[0, pi/2)`.
pub(crate) fn check_angular_margin(m: f64) -> Result<f64, HeadError> {
    in_range(
        "margin",
        m,
        0.0,
        PI / 2.0,
        "an angle in radians, 0 <= m < pi/2",
    )
}

/// The ArcFace target `cos(theta + m)` of target cosines (unscaled), with the fallback and
/// `detach_margin` of `config`.
///
/// # Shapes
/// - `c`: `[N, 1]` -> `[N, 1]`
pub(crate) fn arcface_target<B: Backend>(c: Tensor<B, 2>, config: &ArcFaceConfig) -> Tensor<B, 2> {
    let phi = arcface(c.clone(), config.margin, config.easy_margin);
    if config.detach_margin {
        straight_through(c, phi)
    } else {
        phi
    }
}

impl CosineMarginHead for ArcFaceConfig {
    fn scale(&self) -> f64 {
        self.scale
    }

    fn validate_margin(&self, _classes: usize) -> Result<(), HeadError> {
        check_angular_margin(self.margin)?;
        Ok(())
    }

    fn chunk(&self) -> Option<usize> {
        self.chunk_classes
    }

    fn target_margin<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        arcface_target(c, self)
    }
}
