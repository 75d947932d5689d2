//! A-Softmax / SphereFace (Liu et al. 2017): multiplicative angular margin on normalised
//! class weights.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::annealing::Annealing;
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::lsoftmax::check_margin_int;
use crate::normalize::{l2_norm, l2_normalize};
use crate::psi::psi;
use crate::target::{gather_target, replace_target, target_mask};
use crate::{HeadError, HeadOutput};

/// Configuration of [`SphereFace`]: W normalised, x not; target logit `|x| psi(theta_y)`,
/// others `|x| cos theta_j`. Trained with the annealed target
/// `(lambda |x| cos theta_y + |x| psi(theta_y)) / (1 + lambda)`; the defaults are the official
/// SphereFace recipe (m = 4; base 1000, gamma 0.12, power 1, lambda_min 5: lambda reaches 5
/// after about 1,658 iterations and stays). The true gradient is used, not the official
/// code's normalised pseudo-gradient. `base = 0, lambda_min = 0` gives pure A-Softmax (what
/// pytorch-metric-learning computes).
///
/// Numerics: `|x|` is computed as `max|x_k| * |x / max|x_k||` and the annealed target as the
/// convex combination of its two terms, so the logits, loss and gradients are finite for
/// every finite embedding whose logits are representable (`|x| <= f32::MAX / 16`, i.e. up to
/// about 2e37 in f32); a zero embedding has the norm `NORM_EPS`, so logits of at most
/// `7e-12` in magnitude, and no gradient.
#[derive(Config, Debug)]
pub struct SphereFaceConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Integer angular margin m, 1..=4.
    #[config(default = 4)]
    pub margin_int: u32,
    /// Annealing: lambda at iteration 0 (any finite number >= 0).
    #[config(default = 1000.0)]
    pub base: f64,
    /// Annealing: decay speed (any finite number >= 0).
    #[config(default = 0.12)]
    pub gamma: f64,
    /// Annealing: decay power (any finite number >= 0).
    #[config(default = 1.0)]
    pub power: f64,
    /// Annealing: floor of lambda (any finite number >= 0).
    #[config(default = 5.0)]
    pub lambda_min: f64,
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

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        check_margin_int(self.margin_int)?;
        self.annealing().validate()
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<SphereFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<SphereFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> SphereFace<B> {
        SphereFace {
            weight,
            margin_int: self.margin_int,
            annealing: self.annealing(),
        }
    }
}

/// SphereFace (A-Softmax) head.
#[derive(Module, Debug)]
pub struct SphereFace<B: Backend> {
    /// Class weights `[C, d]`, row = class (normalised in the forward pass).
    pub weight: Param<Tensor<B, 2>>,
    /// Integer margin m.
    #[module(skip)]
    pub margin_int: u32,
    /// Lambda schedule.
    #[module(skip)]
    pub annealing: Annealing,
}

impl<B: Backend> SphereFace<B> {
    /// Training logits at `iteration` (annealed target).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[N, C]`
    pub fn logits(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        iteration: u64,
    ) -> Tensor<B, 2> {
        let classes = self.weight.dims()[0];
        let x_norm = l2_norm(x.clone()); // [N, 1]
        let cos = l2_normalize(x).matmul(l2_normalize(self.weight.val()).transpose());
        let plain = cos.clone() * x_norm.clone();
        if self.margin_int == 1 {
            return plain;
        }
        let plain_t = gather_target(plain.clone(), labels.clone());
        let margin_t = x_norm * psi(gather_target(cos, labels.clone()), self.margin_int);
        let trained = self.annealing.blend(plain_t.clone(), margin_t, iteration);
        replace_target(plain, target_mask(labels, classes), trained, plain_t)
    }

    /// Inference logits `|x| cos theta_j` (no margin).
    pub fn inference_logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x_norm = l2_norm(x.clone());
        l2_normalize(x).matmul(l2_normalize(self.weight.val()).transpose()) * x_norm
    }

    /// Loss and logits for a batch at `iteration`.
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        iteration: u64,
    ) -> HeadOutput<B> {
        let logits = self.logits(x, labels.clone(), iteration);
        HeadOutput {
            loss: cross_entropy(logits.clone(), labels),
            logits: Some(logits),
        }
    }
}
