//! Plain softmax classification head: `logits = x W^T (+ b)`.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{classification_output, classifier_of, HeadDef};
use crate::classifier::{check_dims, ClassifierConfig};
use crate::{Head, HeadError, HeadOutput, HeadState};

/// `kind = "softmax"`: the fully connected layer plus softmax cross-entropy that DeepFace and
/// DeepID trained with, `logits_ij = W_j . x_i + b_j`. The bias is off by default: NormFace
/// (Wang et al. 2017) shows it hurts open-set features.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftmaxConfig {
    /// Whether each class has a bias `b_j` (initialised to zero). Default false.
    pub bias: bool,
}

impl HeadDef for SoftmaxConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 1)
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(ClassifierConfig::new(classes, embedding_dim).with_bias(self.bias))
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        classification_output(classifier_of(head).logits(x), labels)
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        Some(classifier_of(head).logits(x))
    }
}
