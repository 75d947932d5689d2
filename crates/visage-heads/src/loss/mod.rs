//! Losses on top of the classifier and margins: softmax cross-entropy on logits, and the
//! metric losses on embeddings (contrastive, triplet, center).

mod center;
mod chunked;
mod contrastive;
#[cfg(feature = "fast-cpu")]
pub(crate) mod cosine_ce_flex;
mod cross_entropy;
mod triplet;

pub use center::{CenterLoss, CenterLossConfig};
pub use chunked::chunked_margin_cross_entropy;
pub use contrastive::{Contrastive, ContrastiveConfig};
pub use cross_entropy::{cross_entropy, cross_entropy_from_parts, log_sum_exp, merge_log_sum_exp};
/// Whether the cosine heads (NormFace with a fixed scale, CosFace, ArcFace, combined,
/// sub-center ArcFace with `k = 1`) compute their training loss as one fused node with its
/// own CPU kernels on backend `B`: `B` is `Autodiff<Flex>`, the `fast-cpu` feature is on and
/// `VISAGE_FAST_CPU` does not switch it off (`off`, or a list without `head`). Elsewhere
/// they run Burn's composite ops; both give the same loss, gradients and logits (tested),
/// but logits from the fused node carry no gradient (the loss does).
pub fn fused_cosine_loss_active<B: burn::tensor::backend::Backend>() -> bool {
    #[cfg(feature = "fast-cpu")]
    return cosine_ce_flex::available::<B>();
    #[cfg(not(feature = "fast-cpu"))]
    return false;
}

pub use triplet::{Triplet, TripletConfig, TripletDistance, TripletMining, TripletReduction};
