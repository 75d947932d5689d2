//! What [`crate::FaceModel`]'s inference step returns, and its adaptor to the verification
//! metric. (Its training step returns burn-train's `ClassificationOutput`: loss, logits and
//! targets, which Burn's loss and accuracy metrics read.)

use burn::tensor::{backend::Backend, Tensor};
use burn::train::metric::{Adaptor, ItemLazy};

/// Embeddings of one batch, in the loader's order.
#[derive(Debug, Clone)]
pub struct EmbeddingOutput<B: Backend> {
    /// The backbone's embeddings, `[N, d]` (not normalised).
    pub embeddings: Tensor<B, 2>,
}

impl<B: Backend> ItemLazy for EmbeddingOutput<B> {
    type ItemSync = Self;

    fn sync(self) -> Self {
        self
    }
}

/// The verification metric's input: one batch of embeddings read back to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationInput {
    /// Row-major `[rows, dim]` values, or why they could not be read.
    pub rows: Result<(Vec<f32>, usize), String>,
}

impl<B: Backend> Adaptor<VerificationInput> for EmbeddingOutput<B> {
    fn adapt(&self) -> VerificationInput {
        let dim = self.embeddings.dims()[1];
        VerificationInput {
            rows: visage_io::read_back::<f32, B, 2>(self.embeddings.clone())
                .map(|(values, _)| (values, dim))
                .map_err(|e| e.to_string()),
        }
    }
}
