//! DeepID2 (Sun et al. 2014): identification (softmax) plus lambda times verification
//! (contrastive) on the same features.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{classifier_of, HeadDef, SoftmaxConfig};
use crate::check::{non_negative_at_most, MAX_MARGIN};
use crate::classifier::ClassifierConfig;
use crate::loss::{Contrastive, ContrastiveConfig};
use crate::{Head, HeadError, HeadOutput, HeadState};

/// `kind = "deepid2"`: `loss = CE(x W^T (+ b)) + lambda * contrastive(x)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepId2Config {
    /// Weight lambda of the verification signal, in `[0, 1e4]`
    /// ([`crate::check::MAX_MARGIN`]). Default 0.05 (about DeepID2's value).
    pub lambda: f64,
    /// Contrastive margin m, in `(0, 1e4]`. Default 1.
    pub margin: f64,
    /// L2-normalise features for the verification term. Default false.
    pub normalize: bool,
    /// Class biases in the softmax. Default false.
    pub bias: bool,
}

impl Default for DeepId2Config {
    fn default() -> Self {
        DeepId2Config {
            lambda: 0.05,
            margin: 1.0,
            normalize: false,
            bias: false,
        }
    }
}

impl DeepId2Config {
    fn parts(&self) -> (SoftmaxConfig, ContrastiveConfig) {
        (
            SoftmaxConfig { bias: self.bias },
            ContrastiveConfig::new()
                .with_margin(self.margin)
                .with_normalize(self.normalize),
        )
    }

    fn contrastive(&self) -> Contrastive {
        Contrastive {
            margin: self.margin,
            normalize: self.normalize,
        }
    }
}

impl HeadDef for DeepId2Config {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        let (softmax, contrastive) = self.parts();
        softmax.validate(classes, embedding_dim)?;
        contrastive.validate()?;
        non_negative_at_most("lambda", self.lambda, MAX_MARGIN).map(|_| ())
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        self.parts().0.classifier(classes, embedding_dim)
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B> {
        let identification = self
            .parts()
            .0
            .forward(head, x.clone(), labels.clone(), state);
        let verification = self.contrastive().loss(x, labels);
        HeadOutput {
            loss: identification.loss + verification.mul_scalar(self.lambda),
            logits: identification.logits,
        }
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        Some(classifier_of(head).logits(x))
    }
}
