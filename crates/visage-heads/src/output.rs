//! What a head returns for one batch.

use burn::tensor::{backend::Backend, Tensor};

/// The result of one head on one batch.
#[derive(Debug, Clone)]
pub struct HeadOutput<B: Backend> {
    /// The loss, a mean over the batch (over pairs or triplets for metric losses). Shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// The logits actually fed to the cross-entropy (scaled, margin applied), `[N, C]`;
    /// `None` for metric losses, and for cosine heads with `chunk_classes` set (their loss is
    /// computed block by block and the `[N, C]` logits are never held: training accuracy
    /// cannot be read from them; [`crate::Head::inference_logits`] still gives the cosines
    /// times the scale). For reading (metrics, accuracy): where the cosine heads run as the
    /// fused CPU node (`Autodiff<Flex>`, [`crate::loss::fused_cosine_loss_active`]) these
    /// logits carry no gradient; train through `loss`.
    pub logits: Option<Tensor<B, 2>>,
}
