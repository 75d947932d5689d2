//! The contrastive loss as a head (`kind = "contrastive"`): no parameters.

use burn::tensor::{backend::Backend, Int, Tensor};

use super::HeadDef;
use crate::loss::ContrastiveConfig;
use crate::{Head, HeadError, HeadOutput, HeadState};

impl HeadDef for ContrastiveConfig {
    fn validate(&self, _classes: usize, _embedding_dim: usize) -> Result<(), HeadError> {
        ContrastiveConfig::validate(self)
    }

    fn forward<B: Backend>(
        &self,
        _head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        match self.init() {
            Ok(loss) => loss.forward(x, labels),
            Err(e) => unreachable!("validated when the head was built: {e}"),
        }
    }
}
