//! Center loss (Wen et al. 2016) as a head on its own (it collapses alone: train it beside a
//! classification head, e.g. visage-train's `[head.center]`).

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::HeadDef;
use crate::check::in_range;
use crate::classifier::check_dims;
use crate::loss::CenterLossConfig;
use crate::{Head, HeadError, HeadOutput, HeadState};

/// `kind = "center"`: `L_C = (1/2N) sum_i |x_i - c_{y_i}|^2` on centres updated by the alpha
/// rule after each step ([`crate::loss::CenterLoss`], [`crate::Head::after_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CenterConfig {
    /// Centre learning rate alpha, in `(0, 1]`. Default 0.5 (Wen et al.).
    pub alpha: f64,
}

impl Default for CenterConfig {
    fn default() -> Self {
        CenterConfig { alpha: 0.5 }
    }
}

impl HeadDef for CenterConfig {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 1)?;
        in_range(
            "alpha",
            self.alpha,
            f64::MIN_POSITIVE,
            1.0 + f64::EPSILON,
            "a centre learning rate in (0, 1]",
        )?;
        Ok(())
    }

    fn centers(&self, classes: usize, embedding_dim: usize) -> Option<CenterLossConfig> {
        Some(CenterLossConfig::new(classes, embedding_dim).with_alpha(self.alpha))
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        head.center
            .as_ref()
            .expect("a center head built by HeadConfig holds its centres")
            .forward(x, labels)
    }
}
