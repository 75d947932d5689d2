//! AdaCos (Zhang et al. 2019): cosine softmax with an adaptive scale and no margin.

use std::f64::consts::{FRAC_PI_4, SQRT_2};

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{classification_output, classifier_of, HeadDef};
use crate::check::{scale, MAX_SCALE};
use crate::classifier::{check_dims, ClassifierConfig};
use crate::ops::{gather_target, target_mask};
use crate::{Head, HeadError, HeadOutput, HeadState};

/// Smallest scale the dynamic AdaCos update returns (see [`AdaCosConfig`]).
pub const ADACOS_MIN_SCALE: f64 = 1e-3;

/// `kind = "adacos"`: logits `s cos theta_j` for every class, no margin.
///
/// - Fixed: `s = sqrt(2) ln(C - 1)` (C = 10: 3.11; 10,575: 13.10; 85,742: 16.06).
/// - Dynamic: start from the fixed value; at every training step, from the previous scale
///   `s_prev` and this batch's cosines (without gradient),
///   `B_avg = mean_i sum_{j != y_i} exp(s_prev cos theta_ij)`,
///   `theta_med = median_i theta_{i, y_i}` (the lower middle value for an even batch, as
///   `torch.median`), and `s = ln(B_avg) / cos(min(pi/4, theta_med))`; this step's logits use
///   the new `s`, held in `[ADACOS_MIN_SCALE, MAX_SCALE]` = `[1e-3, 1e4]` (the formula gives
///   `s <= 0` when `B_avg <= 1`, e.g. two classes at a tiny previous scale, which would flip
///   or zero the logits for good). The popular PyTorch port adds an ArcFace margin and takes
///   the median over all angles; both are deviations from the paper and not done here.
///
/// The dynamic scale is state the caller keeps ([`crate::HeadState`]) so that a step is
/// reproducible and checkpointable. Needs at least 2 classes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaCosConfig {
    /// Whether the scale adapts every step (dynamic AdaCos) or stays at the fixed value.
    /// Default false.
    pub dynamic: bool,
}

/// The fixed AdaCos scale `sqrt(2) ln(C - 1)` for `classes` classes.
pub fn adacos_fixed_scale(classes: usize) -> f64 {
    SQRT_2 * ((classes as f64) - 1.0).ln()
}

impl HeadDef for AdaCosConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 2)
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(ClassifierConfig::new(classes, embedding_dim))
    }

    fn check_state(&self, state: &HeadState) -> Result<(), HeadError> {
        if let Some(previous) = state.adacos_scale {
            scale("scale", previous)?;
        }
        Ok(())
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B> {
        let classifier = classifier_of(head);
        let fixed = adacos_fixed_scale(classifier.classes());
        let cos = classifier.cosines(x);
        let s = if self.dynamic {
            adacos_dynamic_scale(
                cos.clone(),
                labels.clone(),
                state.adacos_scale.unwrap_or(fixed),
            )
        } else {
            fixed
        };
        state.adacos_scale = Some(s);
        classification_output(cos.mul_scalar(s), labels)
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        let classifier = classifier_of(head);
        Some(
            classifier
                .cosines(x)
                .mul_scalar(adacos_fixed_scale(classifier.classes())),
        )
    }
}

/// The dynamic-AdaCos scale update from the cosines `[N, C]`, the labels and the previous
/// scale (which should lie in `(0, MAX_SCALE]`: [`crate::Head::forward_checked`] checks it).
/// Reads two scalars and the N target cosines back to the host. The result is held in
/// `[ADACOS_MIN_SCALE, MAX_SCALE]`.
///
/// # Shapes
/// - `cos`: `[N, C]`, `labels`: `[N]`
pub fn adacos_dynamic_scale<B: Backend>(
    cos: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    previous: f64,
) -> f64 {
    let [n, classes] = cos.dims();
    let cos = cos.detach();
    let mask = target_mask(labels.clone(), classes, cos.dtype());
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
