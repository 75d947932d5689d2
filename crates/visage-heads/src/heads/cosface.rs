//! CosFace / AM-Softmax (Wang et al. 2018): additive cosine margin.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{classification_output, classifier_of, HeadDef};
use crate::check::{in_range, scale};
use crate::classifier::{check_dims, ClassifierConfig};
use crate::margin::{apply_to_target, cosface};
use crate::{Head, HeadError, HeadOutput, HeadState};

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
}

impl Default for CosFaceConfig {
    fn default() -> Self {
        CosFaceConfig {
            scale: 64.0,
            margin: 0.35,
        }
    }
}

impl HeadDef for CosFaceConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 1)?;
        scale("scale", self.scale)?;
        in_range("margin", self.margin, 0.0, 1.0, "a cosine margin in [0, 1)")?;
        Ok(())
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(ClassifierConfig::new(classes, embedding_dim))
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        let cos = classifier_of(head).cosines(x);
        let m = self.margin;
        let logits = apply_to_target(cos, labels.clone(), |c| cosface(c, m)).mul_scalar(self.scale);
        classification_output(logits, labels)
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        Some(classifier_of(head).cosines(x).mul_scalar(self.scale))
    }
}
