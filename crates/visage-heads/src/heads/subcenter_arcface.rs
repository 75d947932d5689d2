//! Sub-center ArcFace (Deng et al., ECCV 2020): K sub-centres per class, the class's cosine
//! is the best of its K, then the ArcFace margin.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::arcface::{arcface_target, check_angular_margin};
use super::chunk::{check_chunk_classes, chunk_not_supported};
use super::CosineMarginHead;
use crate::classifier::ClassifierConfig;
use crate::HeadError;

/// Largest accepted number of sub-centres per class (the paper uses 3; 10 is its largest).
pub const MAX_SUB_CENTERS: usize = 1024;

/// `kind = "subcenter_arcface"`: weights `[C * K, d]`, row `c * K + k` = sub-centre `k` of
/// class `c` (so the `[N, C * K]` cosines reshape to `[N, C, K]`, as InsightFace's MXNet
/// trainer and pytorch-metric-learning lay them out). For each class
/// `cos theta_j = max_k cos(x, W_{j,k})` (x and W L2-normalised), then ArcFace:
/// target logit `s cos(theta_y + m)` with the th/mm fallback, others `s cos theta_j`.
/// Paper defaults s = 64, m = 0.5, K = 3. `K = 1` is ArcFace exactly.
///
/// The max lets a noisy sample pull a non-dominant sub-centre instead of the class's main
/// one; the gradient reaches only the best sub-centre of each class (ties: one of them).
/// The paper's later step (dropping non-dominant sub-centres and the samples far from the
/// dominant one) is a data-cleaning pass outside the loss and is not done here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubCenterArcFaceConfig {
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::check::MAX_SCALE`]).
    /// Default 64.
    pub scale: f64,
    /// Additive angular margin m in radians, `0 <= m < pi/2`. Default 0.5.
    pub margin: f64,
    /// Sub-centres per class K, in `1..=1024`. Default 3.
    pub k: usize,
    /// Classes per block of the training loss: set, the loss and its gradients are computed
    /// over blocks of this many classes ([`crate::loss::chunked_margin_cross_entropy`]),
    /// never holding the `[N, C]` logits (one extra GEMM per block; what it saves today:
    /// docs/losses.md), and the head returns no training logits. Only with `k = 1` (one
    /// weight row per class); at least 1. Default: absent, the full head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl Default for SubCenterArcFaceConfig {
    fn default() -> Self {
        SubCenterArcFaceConfig {
            scale: 64.0,
            margin: 0.5,
            k: 3,
            chunk_classes: None,
        }
    }
}

impl SubCenterArcFaceConfig {
    fn arcface(&self) -> super::ArcFaceConfig {
        super::ArcFaceConfig {
            scale: self.scale,
            margin: self.margin,
            ..Default::default()
        }
    }
}

impl CosineMarginHead for SubCenterArcFaceConfig {
    fn scale(&self) -> f64 {
        self.scale
    }

    fn validate_margin(&self, classes: usize) -> Result<(), HeadError> {
        check_angular_margin(self.margin)?;
        if !(1..=MAX_SUB_CENTERS).contains(&self.k) {
            return Err(HeadError::InvalidField {
                field: "k",
                value: self.k.to_string(),
                expected: format!("a number of sub-centres per class in 1..={MAX_SUB_CENTERS}"),
            });
        }
        if classes.checked_mul(self.k).is_none() {
            return Err(HeadError::InvalidField {
                field: "k",
                value: self.k.to_string(),
                expected: format!("classes * k ({classes} * k) within usize"),
            });
        }
        Ok(())
    }

    fn cosine_classifier(&self, classes: usize, embedding_dim: usize) -> ClassifierConfig {
        ClassifierConfig::new(classes, embedding_dim).with_sub_centers(self.k)
    }

    fn chunk(&self) -> Option<usize> {
        self.chunk_classes
    }

    fn validate_chunk(&self) -> Result<(), HeadError> {
        check_chunk_classes(self.chunk_classes)?;
        match self.chunk_classes {
            Some(chunk) if self.k != 1 => Err(chunk_not_supported(
                chunk,
                &format!(
                    "with k = {} sub-centres per class (the chunked loss takes one weight row \
                     per class: k = 1)",
                    self.k
                ),
            )),
            _ => Ok(()),
        }
    }

    fn target_margin<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        arcface_target(c, &self.arcface())
    }
}
