//! CosFace / AM-Softmax (Wang et al. 2018): additive cosine margin.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::CosineMarginHead;
use crate::check::in_range;
use crate::margin::cosface;
use crate::HeadError;

/// `kind = "cosface"`: target logit `s (cos theta_y - m)` ([`crate::margin::cosface`]),
/// others `s cos theta_j`, with x and W L2-normalised. Paper defaults s = 64, m = 0.35
/// (InsightFace's configs use 0.4; AM-Softmax used s = 30).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CosFaceConfig {
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::check::MAX_SCALE`]).
    /// Default 64.
    pub scale: f64,
    /// Additive cosine margin m, in `[0, 1)`. Default 0.35.
    pub margin: f64,
    /// Classes per block of the training loss: set, the loss and its gradients are computed
    /// over blocks of this many classes ([`crate::loss::chunked_margin_cross_entropy`]),
    /// never holding the `[N, C]` logits (one extra GEMM per block; what it saves today:
    /// docs/losses.md), and the head returns no training logits. At least 1. Default: absent,
    /// the full head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl Default for CosFaceConfig {
    fn default() -> Self {
        CosFaceConfig {
            scale: 64.0,
            margin: 0.35,
            chunk_classes: None,
        }
    }
}

impl CosineMarginHead for CosFaceConfig {
    fn scale(&self) -> f64 {
        self.scale
    }

    fn validate_margin(&self, _classes: usize) -> Result<(), HeadError> {
        in_range("margin", self.margin, 0.0, 1.0, "a cosine margin in [0, 1)")?;
        Ok(())
    }

    fn chunk(&self) -> Option<usize> {
        self.chunk_classes
    }

    fn target_margin<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        cosface(c, self.margin)
    }
}
