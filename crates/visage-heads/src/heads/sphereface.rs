//! A-Softmax / SphereFace (Liu et al. 2017): multiplicative angular margin on normalised
//! class weights.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::lsoftmax::{annealed_output, check_large_margin};
use super::{classification_output, classifier_of, HeadDef};
use crate::classifier::ClassifierConfig;
use crate::margin::Annealing;
use crate::ops::l2_norm;
use crate::{Head, HeadError, HeadOutput, HeadState};

/// `kind = "sphereface"`: W normalised, x not; target logit `|x| psi(theta_y)`
/// ([`crate::margin::large_margin`]), others `|x| cos theta_j`. Trained with the annealed
/// target `(lambda |x| cos theta_y + |x| psi(theta_y)) / (1 + lambda)`; the defaults are the
/// official SphereFace recipe (m = 4; base 1000, gamma 0.12, power 1, lambda_min 5: lambda
/// reaches 5 after about 1,658 iterations and stays). The true gradient is used, not the
/// official code's normalised pseudo-gradient. `base = 0, lambda_min = 0` gives pure
/// A-Softmax (what pytorch-metric-learning computes).
///
/// Numerics: `|x|` is computed as `max|x_k| * |x / max|x_k||` and the annealed target as the
/// convex combination of its two terms, so the logits, loss and gradients are finite for
/// every finite embedding whose logits are representable (`|x| <= f32::MAX / 16`, i.e. up to
/// about 2e37 in f32); a zero embedding has the norm `NORM_EPS`, so logits of at most
/// `7e-12` in magnitude, and no gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SphereFaceConfig {
    /// Integer angular margin m, 1..=4. Default 4.
    pub margin_int: u32,
    /// Annealing: lambda at iteration 0 (any finite number >= 0). Default 1000.
    pub base: f64,
    /// Annealing: decay speed (any finite number >= 0). Default 0.12.
    pub gamma: f64,
    /// Annealing: decay power (any finite number >= 0). Default 1.
    pub power: f64,
    /// Annealing: floor of lambda (any finite number >= 0). Default 5.
    pub lambda_min: f64,
}

impl Default for SphereFaceConfig {
    fn default() -> Self {
        let a = Annealing::SPHEREFACE;
        SphereFaceConfig {
            margin_int: 4,
            base: a.base,
            gamma: a.gamma,
            power: a.power,
            lambda_min: a.lambda_min,
        }
    }
}

impl SphereFaceConfig {
    /// The annealing schedule of this config.
    pub fn annealing(&self) -> Annealing {
        Annealing {
            base: self.base,
            gamma: self.gamma,
            power: self.power,
            lambda_min: self.lambda_min,
        }
    }
}

impl HeadDef for SphereFaceConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_large_margin(classes, embedding_dim, self.margin_int, &self.annealing())
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(ClassifierConfig::new(classes, embedding_dim))
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B> {
        let x_norm = l2_norm(x.clone()); // [N, 1]
        let cos = classifier_of(head).cosines(x);
        let plain = cos.clone() * x_norm.clone();
        if self.margin_int == 1 {
            return classification_output(plain, labels);
        }
        annealed_output(
            plain,
            cos,
            x_norm,
            labels,
            self.margin_int,
            &self.annealing(),
            state.iteration,
        )
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        let x_norm = l2_norm(x.clone());
        Some(classifier_of(head).cosines(x) * x_norm)
    }
}
