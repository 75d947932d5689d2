//! NormFace (Wang et al. 2017): softmax on cosines with a fixed or learnable scale.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::chunk::{check_chunk_classes, chunk_not_supported, chunked_output};
use super::fused::{try_fused, NoMargin};
use super::{classification_output, classifier_of, HeadDef};
use crate::check::scale;
use crate::classifier::{check_dims, ClassifierConfig};
use crate::{Head, HeadError, HeadOutput, HeadState};

/// Default fixed scale (NormFace reports 20 to 30 working well).
pub const NORMFACE_FIXED_SCALE: f64 = 30.0;
/// Default initial value of a learnable scale (NormFace's choice).
pub const NORMFACE_LEARNABLE_INIT: f64 = 10.0;

/// `kind = "normface"`: logits `s cos theta_j` for every class, x and W normalised. With
/// s = 1 the loss cannot go low (NormFace Prop. 2): keep s large or learn it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormFaceConfig {
    /// The scale s, or its initial value when learnable, in `(0, 1e4]`
    /// ([`crate::check::MAX_SCALE`]). Default: 30 fixed, 10 learnable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Whether s is a trained parameter. Default false.
    pub learnable_scale: bool,
    /// Classes per block of the training loss: set, the loss and its gradients are computed
    /// over blocks of this many classes ([`crate::loss::chunked_margin_cross_entropy`]),
    /// never holding the `[N, C]` logits (one extra GEMM per block; what it saves today:
    /// docs/losses.md), and the head returns no training logits. Only with a fixed scale;
    /// at least 1. Default: absent, the full head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl NormFaceConfig {
    /// The scale (or initial scale) in force.
    pub fn effective_scale(&self) -> f64 {
        self.scale.unwrap_or(if self.learnable_scale {
            NORMFACE_LEARNABLE_INIT
        } else {
            NORMFACE_FIXED_SCALE
        })
    }
}

impl HeadDef for NormFaceConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 1)?;
        scale("scale", self.effective_scale())?;
        check_chunk_classes(self.chunk_classes)?;
        match self.chunk_classes {
            Some(chunk) if self.learnable_scale => Err(chunk_not_supported(
                chunk,
                "with learnable_scale = true (the chunked loss takes a fixed scale)",
            )),
            _ => Ok(()),
        }
    }

    fn chunk_classes(&self) -> Option<usize> {
        self.chunk_classes
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(ClassifierConfig::new(classes, embedding_dim))
    }

    fn learned_scale(&self) -> Option<f64> {
        self.learnable_scale.then(|| self.effective_scale())
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        let (x, labels) = match self.learnable_scale {
            true => (x, labels),
            false => match try_fused(
                head,
                x,
                labels,
                self.effective_scale(),
                self.chunk_classes,
                &NoMargin,
            ) {
                Ok(out) => return out,
                Err(back) => back,
            },
        };
        if let Some(block) = self.chunk_classes {
            return chunked_output(head, x, labels, self.effective_scale(), block, |c| c);
        }
        let logits = self.inference_logits(head, x).expect("normface has logits");
        classification_output(logits, labels)
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        let cos = classifier_of(head).cosines(x);
        Some(match &head.scale {
            Some(s) => cos * s.val().reshape([1, 1]),
            None => cos.mul_scalar(self.effective_scale()),
        })
    }
}
