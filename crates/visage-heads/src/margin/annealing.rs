//! The lambda annealing of L-Softmax and SphereFace.
//!
//! The target logit trained is `(lambda * plain + margin) / (1 + lambda)`, with
//! `lambda = max(lambda_min, base * (1 + gamma * iteration)^(-power))`.
//! SphereFace's official values: base 1000, gamma 0.12, power 1, lambda_min 5.
//! L-Softmax on MNIST: base 1000, gamma 0.000025, power 35, lambda_min 0.
//! `base = 0` (and `lambda_min = 0`) gives the pure margin loss.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use crate::check::non_negative;
use crate::HeadError;

/// The lambda schedule's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Annealing {
    /// Lambda at iteration 0.
    pub base: f64,
    /// Speed of the decay.
    pub gamma: f64,
    /// Power of the decay.
    pub power: f64,
    /// The floor lambda never goes under.
    pub lambda_min: f64,
}

impl Annealing {
    /// SphereFace's official schedule (base 1000, gamma 0.12, power 1, lambda_min 5).
    pub const SPHEREFACE: Annealing = Annealing {
        base: 1000.0,
        gamma: 0.12,
        power: 1.0,
        lambda_min: 5.0,
    };
    /// L-Softmax's MNIST schedule (base 1000, gamma 0.000025, power 35, lambda_min 0).
    pub const LSOFTMAX: Annealing = Annealing {
        base: 1000.0,
        gamma: 0.000025,
        power: 35.0,
        lambda_min: 0.0,
    };

    /// Checks every constant is finite and non-negative. Every such schedule gives a finite
    /// `lambda` in `[0, max(base, lambda_min)]` at every iteration, and [`Annealing::blend`]
    /// is finite for any such lambda, so no upper bound is needed.
    pub fn validate(&self) -> Result<(), HeadError> {
        non_negative("base", self.base)?;
        non_negative("gamma", self.gamma)?;
        non_negative("power", self.power)?;
        non_negative("lambda_min", self.lambda_min)?;
        Ok(())
    }

    /// `lambda(iteration) = max(lambda_min, base (1 + gamma iteration)^(-power))`.
    pub fn lambda(&self, iteration: u64) -> f64 {
        let decayed = self.base * (1.0 + self.gamma * iteration as f64).powf(-self.power);
        decayed.max(self.lambda_min)
    }

    /// The target logit trained at `iteration`: `(lambda plain + margin) / (1 + lambda)`,
    /// computed as the convex combination `w plain + (1 - w) margin` with
    /// `w = lambda / (1 + lambda)` taken in f64, so that it stays finite whenever `plain` and
    /// `margin` are (`lambda plain` alone overflows f32 for `|plain| > 3.4e35` at
    /// `lambda = 1000`).
    pub fn blend<B: Backend, const D: usize>(
        &self,
        plain: Tensor<B, D>,
        margin: Tensor<B, D>,
        iteration: u64,
    ) -> Tensor<B, D> {
        let lambda = self.lambda(iteration);
        let w_plain = lambda / (1.0 + lambda);
        let w_margin = 1.0 / (1.0 + lambda);
        plain.mul_scalar(w_plain) + margin.mul_scalar(w_margin)
    }
}
