//! L-Softmax (Liu et al. 2016): large-margin softmax with an integer angular margin.

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{classification_output, classifier_of, HeadDef};
use crate::classifier::{check_dims, ClassifierConfig};
use crate::margin::{apply_to_target, large_margin, Annealing};
use crate::ops::{gather_target, l2_norm};
use crate::{Head, HeadError, HeadOutput, HeadState};

/// Checks an integer margin is in `1..=4`.
pub(crate) fn check_margin_int(m: u32) -> Result<(), HeadError> {
    if (1..=4).contains(&m) {
        Ok(())
    } else {
        Err(HeadError::InvalidField {
            field: "margin_int",
            value: m.to_string(),
            expected: "an integer margin in 1..=4".into(),
        })
    }
}

/// Checks L-Softmax's and A-Softmax's parameters: the sizes, the integer margin, the
/// annealing schedule.
pub(crate) fn check_large_margin(
    classes: usize,
    embedding_dim: usize,
    margin_int: u32,
    annealing: &Annealing,
) -> Result<(), HeadError> {
    check_dims(classes, embedding_dim, 1)?;
    check_margin_int(margin_int)?;
    annealing.validate()
}

/// The annealed large-margin output of L-Softmax and A-Softmax: the target logit of `plain`
/// becomes `annealing.blend(plain_t, large_margin(cos_t, norm, m), iteration)`, then
/// cross-entropy.
///
/// # Shapes
/// - `plain`, `cos`: `[N, C]`; `norm` (the target's `|W_y| |x|` or `|x|`): `[N, 1]`;
///   `labels`: `[N]`; loss `[1]`, logits `[N, C]`
pub(crate) fn annealed_output<B: Backend>(
    plain: Tensor<B, 2>,
    cos: Tensor<B, 2>,
    norm: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    margin_int: u32,
    annealing: &Annealing,
    iteration: u64,
) -> HeadOutput<B> {
    let c_t = gather_target(cos, labels.clone());
    let logits = apply_to_target(plain, labels.clone(), |plain_t| {
        let margin_t = large_margin(c_t, norm, margin_int);
        annealing.blend(plain_t, margin_t, iteration)
    });
    classification_output(logits, labels)
}

/// `kind = "lsoftmax"`: target logit `|W_y| |x| psi(theta_y)` ([`crate::margin::large_margin`]),
/// others `W_j . x = |W_j| |x| cos theta_j`; nothing normalised. Trained with the annealed
/// target `(lambda W_y.x + |W_y||x| psi(theta_y)) / (1 + lambda)` (see [`Annealing`]);
/// defaults are the paper's MNIST values (m = 4; base 1000, gamma 0.000025, power 35,
/// lambda_min 0). `m = 1` is the plain softmax head exactly.
///
/// Numerics: `|x|` and `|W_j|` are computed as `max|v_k| * |v / max|v_k||` and the annealed
/// target as the convex combination of its two terms, so the logits, loss and gradients are
/// finite for every finite input whose logits are representable (`|W_y| |x| <= f32::MAX /
/// 16`); a zero embedding has the norm `NORM_EPS`, so logits of at most `7e-12 |W|` in
/// magnitude, and no gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LSoftmaxConfig {
    /// Integer angular margin m, 1..=4. Default 4.
    pub margin_int: u32,
    /// Annealing: lambda at iteration 0 (any finite number >= 0). Default 1000.
    pub base: f64,
    /// Annealing: decay speed (any finite number >= 0). Default 0.000025.
    pub gamma: f64,
    /// Annealing: decay power (any finite number >= 0). Default 35.
    pub power: f64,
    /// Annealing: floor of lambda (any finite number >= 0). Default 0.
    pub lambda_min: f64,
}

impl Default for LSoftmaxConfig {
    fn default() -> Self {
        let a = Annealing::LSOFTMAX;
        LSoftmaxConfig {
            margin_int: 4,
            base: a.base,
            gamma: a.gamma,
            power: a.power,
            lambda_min: a.lambda_min,
        }
    }
}

impl LSoftmaxConfig {
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

impl HeadDef for LSoftmaxConfig {
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
        let classifier = classifier_of(head);
        let plain = classifier.logits(x.clone());
        if self.margin_int == 1 {
            return classification_output(plain, labels);
        }
        let n = x.dims()[0];
        let classes = classifier.classes();
        let x_norm = l2_norm(x.clone()); // [N, 1]
        let w_norm = classifier.weight_norms().expand([n, classes]);
        let cos = classifier.cosines(x);
        let w_t = gather_target(w_norm, labels.clone());
        annealed_output(
            plain,
            cos,
            w_t * x_norm,
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
        Some(classifier_of(head).logits(x))
    }
}
