//! Combined margin (ArcFace paper, eq. 4): `s (cos(m1 theta_y + m2) - m3)`.

use std::f64::consts::PI;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::{in_range, scale};
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::margin::{clamp_cos, margin_cosines};
use crate::normalize::cosine_matrix;
use crate::{HeadError, HeadOutput};

/// Configuration of [`CombinedMargin`]: `theta = acos(clamp(c))`, target
/// `s (cos(m1 theta + m2) - m3)`, others `s cos theta_j`; no fallback. `(1, m, 0)` is ArcFace
/// without the fallback, `(1, 0, m)` CosFace, `(m, 0, 0)` a SphereFace variant without
/// annealing. Defaults (1, 0.3, 0.2), s = 64 (InsightFace's combined-margin configs).
#[derive(Config, Debug)]
pub struct CombinedMarginConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::MAX_SCALE`]).
    #[config(default = 64.0)]
    pub scale: f64,
    /// Multiplicative angular margin m1 (> 0).
    #[config(default = 1.0)]
    pub m1: f64,
    /// Additive angular margin m2 (radians), `0 <= m2 < pi/2`.
    #[config(default = 0.3)]
    pub m2: f64,
    /// Additive cosine margin m3, `0 <= m3 < 1`.
    #[config(default = 0.2)]
    pub m3: f64,
}

impl CombinedMarginConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        scale("scale", self.scale)?;
        in_range(
            "m1",
            self.m1,
            f64::MIN_POSITIVE,
            8.0,
            "a multiplicative margin in (0, 8)",
        )?;
        in_range(
            "m2",
            self.m2,
            0.0,
            PI / 2.0,
            "an angle in radians, 0 <= m2 < pi/2",
        )?;
        in_range("m3", self.m3, 0.0, 1.0, "a cosine margin in [0, 1)")?;
        Ok(())
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CombinedMargin<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(
        &self,
        weight: Tensor<B, 2>,
    ) -> Result<CombinedMargin<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> CombinedMargin<B> {
        CombinedMargin {
            weight,
            scale: self.scale,
            m1: self.m1,
            m2: self.m2,
            m3: self.m3,
        }
    }
}

/// Combined-margin head.
#[derive(Module, Debug)]
pub struct CombinedMargin<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// Scale s.
    #[module(skip)]
    pub scale: f64,
    /// m1.
    #[module(skip)]
    pub m1: f64,
    /// m2.
    #[module(skip)]
    pub m2: f64,
    /// m3.
    #[module(skip)]
    pub m3: f64,
}

impl<B: Backend> CombinedMargin<B> {
    /// Training logits.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[N, C]`
    pub fn logits(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let (m1, m2, m3) = (self.m1, self.m2, self.m3);
        margin_cosines(x, self.weight.val(), labels, |c| {
            clamp_cos(c)
                .acos()
                .mul_scalar(m1)
                .add_scalar(m2)
                .cos()
                .sub_scalar(m3)
        })
        .mul_scalar(self.scale)
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
