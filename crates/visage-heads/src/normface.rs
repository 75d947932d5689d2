//! NormFace (Wang et al. 2017): softmax on cosines with a fixed or learnable scale.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::scale;
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::normalize::cosine_matrix;
use crate::{HeadError, HeadOutput};

/// Default fixed scale (NormFace reports 20 to 30 working well).
pub const NORMFACE_FIXED_SCALE: f64 = 30.0;
/// Default initial value of a learnable scale (NormFace's choice).
pub const NORMFACE_LEARNABLE_INIT: f64 = 10.0;

/// Configuration of [`NormFace`]: logits `s cos theta_j` for every class, x and W normalised.
/// With s = 1 the loss cannot go low (NormFace Prop. 2): keep s large or learn it.
#[derive(Config, Debug)]
pub struct NormFaceConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// The scale s, or its initial value when learnable, in `(0, 1e4]` ([`crate::MAX_SCALE`]).
    /// Default: 30 fixed, 10 learnable.
    pub scale: Option<f64>,
    /// Whether s is a trained parameter.
    #[config(default = false)]
    pub learnable_scale: bool,
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

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        scale("scale", self.effective_scale())?;
        Ok(())
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<NormFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(
            init_class_weight(self.classes, self.embedding_dim, device),
            device,
        ))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<NormFace<B>, HeadError> {
        self.validate()?;
        let device = weight.device();
        Ok(self.build(
            class_weight_from(weight, self.classes, self.embedding_dim)?,
            &device,
        ))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>, device: &B::Device) -> NormFace<B> {
        let s = self.effective_scale();
        let learned_scale = self
            .learnable_scale
            .then(|| Param::from_tensor(Tensor::from_floats([s as f32], device)));
        NormFace {
            weight,
            learned_scale,
            scale: s,
        }
    }
}

/// NormFace head.
#[derive(Module, Debug)]
pub struct NormFace<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// The trained scale `[1]`, when learnable.
    pub learned_scale: Option<Param<Tensor<B, 1>>>,
    /// The fixed scale (ignored when `learned_scale` is set).
    #[module(skip)]
    pub scale: f64,
}

impl<B: Backend> NormFace<B> {
    /// Logits `s cos` (the same in training and inference).
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let cos = cosine_matrix(x, self.weight.val());
        match &self.learned_scale {
            Some(s) => cos * s.val().reshape([1, 1]),
            None => cos.mul_scalar(self.scale),
        }
    }

    /// Loss and logits for a batch.
    pub fn forward(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        let logits = self.logits(x);
        HeadOutput {
            loss: cross_entropy(logits.clone(), labels),
            logits: Some(logits),
        }
    }
}
