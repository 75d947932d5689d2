//! ArcFace (Deng et al. 2019): additive angular margin, in its safe form.

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

/// Configuration of [`ArcFace`]: target logit `s cos(theta_y + m)`, others `s cos theta_j`,
/// x and W L2-normalised. Paper defaults s = 64, m = 0.5.
///
/// `cos(theta + m)` is computed as `c cos m - sqrt(1 - c^2) sin m` with `c` clamped to
/// `[-1 + 1e-7, 1 - 1e-7]` inside the square root (no `acos`, no NaN at `c = +-1`).
/// Past `theta + m > pi` the target logit would rise again, so:
/// - default (th/mm, as pytorch-metric-learning, face.evoLVe and InsightFace before Dec 2022):
///   `cos(theta + m)` if `c > cos(pi - m)`, else `c - m sin m`;
/// - `easy_margin`: `cos(theta + m)` if `c > 0`, else `c`.
///
/// `detach_margin` (InsightFace since Dec 2022) keeps the forward value but lets the gradient
/// through the target as if no margin were applied (`c + stop_grad(phi(c) - c)`).
#[derive(Config, Debug)]
pub struct ArcFaceConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Scale s of the normalised logits, in `(0, 1e4]` ([`crate::MAX_SCALE`]).
    #[config(default = 64.0)]
    pub scale: f64,
    /// Additive angular margin m in radians, `0 <= m < pi/2`.
    #[config(default = 0.5)]
    pub margin: f64,
    /// Use the margin only where `cos theta_y > 0`, the plain cosine elsewhere.
    #[config(default = false)]
    pub easy_margin: bool,
    /// Compute the margin without gradient (forward unchanged).
    #[config(default = false)]
    pub detach_margin: bool,
}

impl ArcFaceConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        scale("scale", self.scale)?;
        in_range(
            "margin",
            self.margin,
            0.0,
            PI / 2.0,
            "an angle in radians, 0 <= m < pi/2",
        )?;
        Ok(())
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ArcFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<ArcFace<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> ArcFace<B> {
        ArcFace {
            weight,
            scale: self.scale,
            margin: self.margin,
            easy_margin: self.easy_margin,
            detach_margin: self.detach_margin,
        }
    }
}

/// ArcFace head.
#[derive(Module, Debug)]
pub struct ArcFace<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// Scale s.
    #[module(skip)]
    pub scale: f64,
    /// Angular margin m (radians).
    #[module(skip)]
    pub margin: f64,
    /// See [`ArcFaceConfig::easy_margin`].
    #[module(skip)]
    pub easy_margin: bool,
    /// See [`ArcFaceConfig::detach_margin`].
    #[module(skip)]
    pub detach_margin: bool,
}

/// The ArcFace target function of the target cosine `c` (any shape), with its fallback.
pub fn arcface_target<B: Backend, const D: usize>(
    c: Tensor<B, D>,
    m: f64,
    easy_margin: bool,
) -> Tensor<B, D> {
    let sin_theta = clamp_cos(c.clone()).square().neg().add_scalar(1.0).sqrt();
    let phi = c.clone().mul_scalar(m.cos()) - sin_theta.mul_scalar(m.sin());
    if easy_margin {
        c.clone().mask_where(c.greater_elem(0.0), phi)
    } else {
        let th = (PI - m).cos();
        let mm = m.sin() * m;
        c.clone().sub_scalar(mm).mask_where(c.greater_elem(th), phi)
    }
}

impl<B: Backend> ArcFace<B> {
    /// Training logits: `s cos(theta_y + m)` at the target (with the fallback), `s cos` elsewhere.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[N, C]`
    pub fn logits(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let (m, easy, detach) = (self.margin, self.easy_margin, self.detach_margin);
        margin_cosines(x, self.weight.val(), labels, |c| {
            let phi = arcface_target(c.clone(), m, easy);
            if detach {
                c.clone() + (phi - c).detach()
            } else {
                phi
            }
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
