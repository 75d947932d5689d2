//! L-Softmax (Liu et al. 2016): large-margin softmax with an integer angular margin.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::annealing::Annealing;
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::normalize::{l2_norm, l2_normalize};
use crate::psi::psi;
use crate::target::{gather_target, replace_target, target_mask};
use crate::{HeadError, HeadOutput};

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

/// Configuration of [`LSoftmax`]: target logit `|W_y| |x| psi(theta_y)`, others
/// `W_j . x = |W_j| |x| cos theta_j`; nothing normalised. Trained with the annealed target
/// `(lambda W_y.x + |W_y||x| psi(theta_y)) / (1 + lambda)` (see [`Annealing`]); defaults are
/// the paper's MNIST values (m = 4; base 1000, gamma 0.000025, power 35, lambda_min 0).
/// `m = 1` is the plain softmax head exactly.
///
/// Numerics: `|x|` and `|W_j|` are computed as `max|v_k| * |v / max|v_k||` and the annealed
/// target as the convex combination of its two terms, so the logits, loss and gradients are
/// finite for every finite input whose logits are representable (`|W_y| |x| <= f32::MAX /
/// 16`); a zero embedding has the norm `NORM_EPS`, so logits of at most `7e-12 |W|` in
/// magnitude, and no gradient.
#[derive(Config, Debug)]
pub struct LSoftmaxConfig {
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
    #[config(default = 0.000025)]
    pub gamma: f64,
    /// Annealing: decay power (any finite number >= 0).
    #[config(default = 35.0)]
    pub power: f64,
    /// Annealing: floor of lambda (any finite number >= 0).
    #[config(default = 0.0)]
    pub lambda_min: f64,
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

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        check_margin_int(self.margin_int)?;
        self.annealing().validate()
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LSoftmax<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<LSoftmax<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> LSoftmax<B> {
        LSoftmax {
            weight,
            margin_int: self.margin_int,
            annealing: self.annealing(),
        }
    }
}

/// L-Softmax head.
#[derive(Module, Debug)]
pub struct LSoftmax<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// Integer margin m.
    #[module(skip)]
    pub margin_int: u32,
    /// Lambda schedule.
    #[module(skip)]
    pub annealing: Annealing,
}

impl<B: Backend> LSoftmax<B> {
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
        let weight = self.weight.val();
        let [classes, _] = weight.dims();
        let plain = x.clone().matmul(weight.clone().transpose());
        if self.margin_int == 1 {
            return plain;
        }
        let x_norm = l2_norm(x.clone()); // [N, 1]
        let w_norm = l2_norm(weight.clone())
            .reshape([1, classes])
            .expand([x_norm.dims()[0], classes]);
        let cos = l2_normalize(x).matmul(l2_normalize(weight).transpose());
        let plain_t = gather_target(plain.clone(), labels.clone());
        let c_t = gather_target(cos, labels.clone());
        let w_t = gather_target(w_norm, labels.clone());
        let margin_t = w_t * x_norm * psi(c_t, self.margin_int);
        let trained = self.annealing.blend(plain_t.clone(), margin_t, iteration);
        replace_target(plain, target_mask(labels, classes), trained, plain_t)
    }

    /// Inference logits `x W^T` (no margin).
    pub fn inference_logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.val().transpose())
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
