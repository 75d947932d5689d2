//! AdaCos (Zhang et al. 2019): cosine softmax with an adaptive scale and no margin.

use std::f64::consts::{FRAC_PI_4, SQRT_2};

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::MAX_SCALE;
use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::normalize::cosine_matrix;
use crate::target::{gather_target, target_mask};
use crate::{HeadError, HeadOutput};

/// Smallest scale the dynamic AdaCos update returns (see [`AdaCosConfig`]).
pub const ADACOS_MIN_SCALE: f64 = 1e-3;

/// Configuration of [`AdaCos`]: logits `s cos theta_j` for every class.
///
/// - Fixed: `s = sqrt(2) ln(C - 1)` (C = 10: 3.11; 10,575: 13.10; 85,742: 16.06).
/// - Dynamic: start from the fixed value; at every training step, from the previous scale
///   `s_prev` and this batch's cosines (without gradient),
///   `B_avg = mean_i sum_{j != y_i} exp(s_prev cos theta_ij)`,
///   `theta_med = median_i theta_{i, y_i}` (the lower middle value for an even batch, as
///   `torch.median`), and `s = ln(B_avg) / cos(min(pi/4, theta_med))`; this step's logits use
///   the new `s`, held in `[ADACOS_MIN_SCALE, MAX_SCALE]` = `[1e-3, 1e4]` (the formula gives
///   `s <= 0` when `B_avg <= 1`, e.g. two classes at a tiny previous scale, which would flip
///   or zero the logits for good). The popular PyTorch port adds an ArcFace margin and takes the median over
///   all angles; both are deviations from the paper and not done here.
#[derive(Config, Debug)]
pub struct AdaCosConfig {
    /// Number of classes C (at least 2).
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Whether the scale adapts every step (dynamic AdaCos) or stays at the fixed value.
    #[config(default = false)]
    pub dynamic: bool,
}

impl AdaCosConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 2)
    }

    /// The fixed scale `sqrt(2) ln(C - 1)`.
    pub fn fixed_scale(&self) -> f64 {
        SQRT_2 * ((self.classes as f64) - 1.0).ln()
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<AdaCos<B>, HeadError> {
        self.validate()?;
        Ok(self.build(init_class_weight(self.classes, self.embedding_dim, device)))
    }

    /// A head with the given class weights `[C, d]`.
    pub fn init_with<B: Backend>(&self, weight: Tensor<B, 2>) -> Result<AdaCos<B>, HeadError> {
        self.validate()?;
        Ok(self.build(class_weight_from(weight, self.classes, self.embedding_dim)?))
    }

    fn build<B: Backend>(&self, weight: Param<Tensor<B, 2>>) -> AdaCos<B> {
        AdaCos {
            weight,
            fixed_scale: self.fixed_scale(),
            dynamic: self.dynamic,
        }
    }
}

/// AdaCos head. The dynamic scale is state the caller keeps (see [`crate::HeadState`]) so
/// that a step is reproducible and checkpointable.
#[derive(Module, Debug)]
pub struct AdaCos<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// `sqrt(2) ln(C - 1)`.
    #[module(skip)]
    pub fixed_scale: f64,
    /// Whether the scale adapts.
    #[module(skip)]
    pub dynamic: bool,
}

/// The dynamic-AdaCos scale update from the cosines `[N, C]`, the labels and the previous
/// scale (which should lie in `(0, MAX_SCALE]`: [`crate::Head::forward_checked`] checks it).
/// Reads two scalars and the N target cosines back to the host. The result is held in
/// `[ADACOS_MIN_SCALE, MAX_SCALE]`.
pub fn adacos_dynamic_scale<B: Backend>(
    cos: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    previous: f64,
) -> f64 {
    let [n, classes] = cos.dims();
    let cos = cos.detach();
    let mask = target_mask(labels.clone(), classes);
    // log B_avg by a log-sum-exp over the non-target entries (no overflow for any s).
    let z = cos.clone().mul_scalar(previous) - mask.mul_scalar(1e30);
    let z_max = z.clone().max();
    let sum = (z - z_max.clone().reshape([1, 1])).exp().sum();
    let stats: Vec<f64> = Tensor::cat(vec![z_max, sum], 0)
        .to_data()
        .convert::<f64>()
        .into_vec()
        .unwrap_or_default();
    let (z_max, sum) = (stats[0], stats[1]);
    let log_b_avg = z_max + sum.ln() - (n as f64).ln();
    // The lower middle target angle.
    let mut angles: Vec<f64> = gather_target(cos, labels)
        .to_data()
        .convert::<f64>()
        .into_vec()
        .unwrap_or_default()
        .into_iter()
        .map(|c: f64| c.clamp(-1.0, 1.0).acos())
        .collect();
    angles.sort_by(|a, b| a.total_cmp(b));
    let theta_med = angles[(angles.len() - 1) / 2];
    let s = log_b_avg / theta_med.min(FRAC_PI_4).cos();
    if s.is_nan() {
        previous
    } else {
        s.clamp(ADACOS_MIN_SCALE, MAX_SCALE)
    }
}

impl<B: Backend> AdaCos<B> {
    /// Inference logits `s cos` at the fixed scale.
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    pub fn inference_logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        cosine_matrix(x, self.weight.val()).mul_scalar(self.fixed_scale)
    }

    /// Training logits and the scale they use: the fixed value, or the dynamic update from
    /// `previous` (`None` on the first step, which starts from the fixed value).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[N, C]`
    pub fn logits(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        previous: Option<f64>,
    ) -> (Tensor<B, 2>, f64) {
        let cos = cosine_matrix(x, self.weight.val());
        let scale = if self.dynamic {
            adacos_dynamic_scale(cos.clone(), labels, previous.unwrap_or(self.fixed_scale))
        } else {
            self.fixed_scale
        };
        (cos.mul_scalar(scale), scale)
    }

    /// Loss and logits for a batch, and the scale used (to pass as `previous` next step).
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        previous: Option<f64>,
    ) -> (HeadOutput<B>, f64) {
        let (logits, scale) = self.logits(x, labels.clone(), previous);
        (
            HeadOutput {
                loss: cross_entropy(logits.clone(), labels),
                logits: Some(logits),
            },
            scale,
        )
    }
}
