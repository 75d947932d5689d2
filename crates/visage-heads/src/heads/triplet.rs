//! The triplet loss as a head (`kind = "triplet"`): no parameters.

use burn::tensor::{backend::Backend, Int, Tensor};

use super::HeadDef;
use crate::loss::TripletConfig;
use crate::{Head, HeadError, HeadOutput, HeadState};

impl HeadDef for TripletConfig {
    fn validate(&self, _classes: usize, _embedding_dim: usize) -> Result<(), HeadError> {
        TripletConfig::validate(self)
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
