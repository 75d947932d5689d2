//! The numbers behind the analytic figures, computed by the library's own heads so that the
//! pictures show what the training code computes:
//!
//! - [`TargetCurve::eval`]: a head's target logit as a function of the angle `theta` between
//!   a unit feature and its unit class weight (scale 1, so in cosine units). The head is built
//!   from its [`HeadConfig`] with class weights `[[1, 0], [0, 1]]` and fed
//!   `x = (cos theta, sin theta)` with label 0; column 0 of its training logits is the curve.
//! - [`boundary_angle`]: the two-class decision boundary in angle space. Class 1 wins with its
//!   margin where `target(theta_1) > cos theta_2`, i.e. above `theta_2 = acos(target(theta_1))`.
//! - [`adacos_probability`]: AdaCos's `P(theta) = e^{s f} / (e^{s f} + C - 1)`, the target
//!   class probability when the other `C - 1` classes sit at 90 degrees (`cos = 0`).

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use visage_heads::heads::{
    ArcFaceConfig, CombinedMarginConfig, CosFaceConfig, SoftmaxConfig, SphereFaceConfig,
};
use visage_heads::{HeadConfig, HeadState, HeadTensors};

use crate::FigureError;

/// A loss's target logit, as a named [`HeadConfig`] with scale 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCurve {
    /// Legend text, e.g. `ArcFace m = 0.5`.
    pub label: String,
    /// The head (scale 1; annealed heads with a constant lambda).
    pub spec: HeadConfig,
}

impl TargetCurve {
    /// Softmax on unit vectors, NormFace and AdaCos: `cos theta`.
    pub fn cosine() -> Self {
        Self {
            label: "Softmax / NormFace / AdaCos: cos θ".into(),
            spec: HeadConfig::Softmax(SoftmaxConfig::default()),
        }
    }

    /// A-Softmax with integer margin `m`, trained target `(lambda cos + psi) / (1 + lambda)`
    /// (`lambda = 0`: pure `psi`; the official recipe ends at `lambda = 5`).
    pub fn sphereface(m: u32, lambda: f64) -> Self {
        let spec = HeadConfig::SphereFace(SphereFaceConfig {
            margin_int: m,
            base: lambda,
            gamma: 0.0,
            power: 1.0,
            lambda_min: lambda,
        });
        let label = if lambda == 0.0 {
            format!("SphereFace m = {m}: ψ(θ)")
        } else {
            format!("SphereFace m = {m}, λ = {lambda}")
        };
        Self { label, spec }
    }

    /// CosFace: `cos theta - m`.
    pub fn cosface(m: f64) -> Self {
        let spec = HeadConfig::CosFace(CosFaceConfig {
            scale: 1.0,
            margin: m,
            chunk_classes: None,
        });
        Self {
            label: format!("CosFace m = {m}"),
            spec,
        }
    }

    /// ArcFace: `cos(theta + m)` with the th/mm fallback (or `easy_margin`).
    pub fn arcface(m: f64, easy_margin: bool) -> Self {
        let spec = HeadConfig::ArcFace(ArcFaceConfig {
            scale: 1.0,
            margin: m,
            easy_margin,
            ..Default::default()
        });
        let label = if easy_margin {
            format!("ArcFace m = {m}, easy margin")
        } else {
            format!("ArcFace m = {m}")
        };
        Self { label, spec }
    }

    /// The combined margin `cos(m1 theta + m2) - m3`.
    pub fn combined(m1: f64, m2: f64, m3: f64) -> Self {
        let spec = HeadConfig::Combined(CombinedMarginConfig {
            scale: 1.0,
            m1,
            m2,
            m3,
            chunk_classes: None,
        });
        Self {
            label: format!("Combined ({m1}, {m2}, {m3})"),
            spec,
        }
    }

    /// The target logit at each angle of `thetas` (radians, in `[0, pi]`), by the head's own
    /// training forward pass.
    ///
    /// # Shapes
    /// - `thetas`: `[N]` angles -> `[N]` target logits.
    pub fn eval<B: Backend>(
        &self,
        thetas: &[f64],
        device: &B::Device,
    ) -> Result<Vec<f64>, FigureError> {
        let eye =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1f32, 0., 0., 1.], [2, 2]), device);
        let head = self
            .spec
            .init_with(
                2,
                2,
                HeadTensors {
                    weight: Some(eye),
                    bias: None,
                },
            )
            .map_err(|e| FigureError::setting(self.label.clone(), e.to_string()))?;
        if thetas.is_empty() {
            return Ok(Vec::new());
        }
        let n = thetas.len();
        let xy: Vec<f32> = thetas
            .iter()
            .flat_map(|t| [t.cos() as f32, t.sin() as f32])
            .collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(xy, [n, 2]), device);
        let labels = Tensor::<B, 1, Int>::zeros([n], device);
        let logits = head
            .forward(x, labels, &mut HeadState::default())
            .logits
            .ok_or_else(|| FigureError::setting(self.label.clone(), "the head has no logits"))?;
        let values: Vec<f64> = logits
            .narrow(1, 0, 1)
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .map_err(|e| FigureError::setting(self.label.clone(), format!("{e:?}")))?;
        Ok(values)
    }
}

/// `theta_2` on class 1's decision boundary for a target-logit value `target(theta_1)`:
/// `acos(target)`, or `None` where `target < -1` (class 1 cannot win at that `theta_1`).
/// Values above 1 by float rounding count as 1.
pub fn boundary_angle(target: f64) -> Option<f64> {
    if !target.is_finite() || target < -1.0 {
        None
    } else {
        Some(target.min(1.0).acos())
    }
}

/// AdaCos's target probability `1 / (1 + (C - 1) e^{-s f})` for target logits `f` (cosine
/// units), scale `s` and `classes` = C, the other classes at `cos = 0`.
pub fn adacos_probability(target: &[f64], scale: f64, classes: usize) -> Vec<f64> {
    let others = classes.saturating_sub(1) as f64;
    target
        .iter()
        .map(|&f| 1.0 / (1.0 + others * (-scale * f).exp()))
        .collect()
}

/// `n` evenly spaced angles from `lo` to `hi` inclusive (radians).
pub fn angle_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}
