//! The cosine heads' training loss through the fused CPU node
//! (`crate::loss::cosine_ce_flex`, feature `fast-cpu`) when the backend is `Autodiff<Flex>`:
//! the same loss, gradients and training logits as the composite ops (which every other
//! backend runs), in fewer passes over the `[N, C]` logits and the `[C, d]` weights, and with
//! `chunk_classes` set, without weight-sized temporaries.

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::{Head, HeadOutput};

/// A margin on the target cosine, for any backend (the fused node runs it on
/// `Autodiff<Flex>`, the composite ops on the head's backend).
pub(crate) trait TargetMargin {
    /// `phi(c)` element-wise, unscaled.
    ///
    /// # Shapes
    /// - `c`: `[N, 1]` -> `[N, 1]`
    fn apply<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// No margin (NormFace).
pub(crate) struct NoMargin;

impl TargetMargin for NoMargin {
    fn apply<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        c
    }
}

/// The embeddings and labels handed back where the fused node does not apply.
pub(crate) type Unfused<B> = (Tensor<B, 2>, Tensor<B, 1, Int>);

/// The head's loss through the fused node, or the embeddings and labels back when the node
/// does not apply (another backend, `fast-cpu` off, sub-centres, labels out of range, ...).
///
/// # Shapes
/// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`, logits `[N, C]` (none with `chunk`)
#[cfg_attr(not(feature = "fast-cpu"), allow(unused_variables))]
pub(crate) fn try_fused<B: Backend>(
    head: &Head<B>,
    x: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    scale: f64,
    chunk: Option<usize>,
    margin: &impl TargetMargin,
) -> Result<HeadOutput<B>, Unfused<B>> {
    #[cfg(feature = "fast-cpu")]
    {
        use crate::loss::cosine_ce_flex;
        let classifier = super::classifier_of(head);
        if classifier.sub_centers == 1 && cosine_ce_flex::available::<B>() {
            let x_hat = crate::ops::l2_normalize(x.clone());
            let weight = classifier.weight.val();
            return match cosine_ce_flex::cosine_margin_cross_entropy(
                x_hat,
                weight,
                labels,
                scale,
                chunk,
                |c| margin.apply(c),
            ) {
                Ok(out) => Ok(HeadOutput {
                    loss: out.loss,
                    logits: out.logits,
                }),
                Err((_, _, labels)) => Err((x, labels)),
            };
        }
    }
    Err((x, labels))
}
