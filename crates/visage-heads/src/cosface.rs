//! CosFace / AM-Softmax (Wang et al. 2018): additive cosine margin.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::{in_range, scale};
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::margin::margin_cosines;
use crate::normalize::cosine_matrix;
use crate::{HeadError, HeadOutput};

/// Configuration of [`CosFace`]: target logit `s (cos theta_y - m)`, others `s cos theta_j`,
/// with x and W L2-normalised. Paper defaults s = 64, m = 0.35 (InsightFace's configs use
/// 0.4; AM-Softmax used s = 30).
#[derive(Config, Debug)]
pub struct CosFaceConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::MAX_SCALE`]).
    #[config(default = 64.0)]
    pub scale: f64,
    /// Additive cosine margin m, in `[0, 1)`.
    #[config(default = 0.35)]
    pub margin: f64,
}

impl CosFaceConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        scale("scale", self.scale)?;
        in_range("margin", self.margin, 0.0, 1.0, "a cosine margin in [0, 1)")?;
        Ok(())
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CosFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<CosFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> CosFace<B> {
        CosFace {
            weight,
            scale: self.scale,
            margin: self.margin,
        }
    }
}

/// CosFace head.
#[derive(Module, Debug)]
pub struct CosFace<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// Scale s.
    #[module(skip)]
    pub scale: f64,
    /// Cosine margin m.
    #[module(skip)]
    pub margin: f64,
}

impl<B: Backend> CosFace<B> {
    /// Training logits `s (cos - m onehot)`.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[N, C]`
    pub fn logits(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let m = self.margin;
        margin_cosines(x, self.weight.val(), labels, |c| c.sub_scalar(m)).mul_scalar(self.scale)
    }

    /// Inference logits `s cos` (no margin).
    pub fn inference_logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        cosine_matrix(x, self.weight.val()).mul_scalar(self.scale)
    }

    /// Loss and logits for a batch.
    pub fn forward(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        let logits = self.logits(x, labels.clone());
        HeadOutput {
            loss: cross_entropy(logits.clone(), labels),
            logits: Some(logits),
        }
    }
}
