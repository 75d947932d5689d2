//! Combined margin (ArcFace paper, eq. 4): `s (cos(m1 theta_y + m2) - m3)`.

use std::f64::consts::PI;

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::CosineMarginHead;
use crate::check::in_range;
use crate::margin::combined;
use crate::HeadError;

/// `kind = "combined"`: `theta = acos(clamp(c))`, target `s (cos(m1 theta + m2) - m3)`
/// ([`crate::margin::combined`]), others `s cos theta_j`; no fallback. `(1, m, 0)` is ArcFace
/// without the fallback, `(1, 0, m)` CosFace, `(m, 0, 0)` a SphereFace variant without
/// annealing. Defaults (1, 0.3, 0.2), s = 64 (InsightFace's combined-margin configs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CombinedMarginConfig {
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::check::MAX_SCALE`]).
    /// Default 64.
    pub scale: f64,
    /// Multiplicative angular margin m1, in `(0, 8)`. Default 1.
    pub m1: f64,
    /// Additive angular margin m2 (radians), `0 <= m2 < pi/2`. Default 0.3.
    pub m2: f64,
    /// Additive cosine margin m3, `0 <= m3 < 1`. Default 0.2.
    pub m3: f64,
    /// Classes per block of the training loss: set, the loss and its gradients are computed
    /// over blocks of this many classes ([`crate::loss::chunked_margin_cross_entropy`]),
    /// never holding the `[N, C]` logits (one extra GEMM per block; what it saves today:
    /// docs/losses.md), and the head returns no training logits. At least 1. Default: absent,
    /// the full head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl Default for CombinedMarginConfig {
    fn default() -> Self {
        CombinedMarginConfig {
            scale: 64.0,
            m1: 1.0,
            m2: 0.3,
            m3: 0.2,
            chunk_classes: None,
        }
    }
}

impl CosineMarginHead for CombinedMarginConfig {
    fn scale(&self) -> f64 {
        self.scale
    }

    fn validate_margin(&self, _classes: usize) -> Result<(), HeadError> {
        in_range(
            "m1",
            self.m1,
            f64::MIN_POSITIVE,
            8.0,
            "a multiplicative margin in (0, 8)",
        )?;
        in_range(
            "m2",
            self.m2,
            0.0,
            PI / 2.0,
            "an angle in radians, 0 <= m2 < pi/2",
        )?;
        in_range("m3", self.m3, 0.0, 1.0, "a cosine margin in [0, 1)")?;
        Ok(())
    }

    fn chunk(&self) -> Option<usize> {
        self.chunk_classes
    }

    fn target_margin<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        combined(c, self.m1, self.m2, self.m3)
    }
}
