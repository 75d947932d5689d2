//! `chunk_classes`: the training loss of the cosine heads (NormFace, CosFace, ArcFace, the
//! combined margin, sub-center ArcFace with `k = 1`) computed over blocks of classes with
//! [`crate::loss::chunked_margin_cross_entropy`], so that the `[N, C]` logits are never held.
//! Same loss and gradients as the full head; no training logits (`HeadOutput::logits` is
//! `None`); inference logits unchanged.

use burn::tensor::{backend::Backend, Int, Tensor};

use super::classifier_of;
use crate::loss::chunked_margin_cross_entropy;
use crate::{Head, HeadError, HeadOutput};

/// The field's name as a `[head]` table spells it.
pub const CHUNK_CLASSES_FIELD: &str = "chunk_classes";

/// The head kinds that take `chunk_classes`, as configs spell them.
pub const CHUNKABLE_KINDS: &str =
    "normface, cosface, arcface, combined, subcenter_arcface with k = 1";

/// Checks a `chunk_classes` value: absent, or at least 1 class per block.
pub(crate) fn check_chunk_classes(chunk: Option<usize>) -> Result<(), HeadError> {
    match chunk {
        Some(0) => Err(HeadError::InvalidField {
            field: CHUNK_CLASSES_FIELD,
            value: "0".into(),
            expected: "a number of classes per block, at least 1 (absent: the full head)".into(),
        }),
        _ => Ok(()),
    }
}

/// The error for `chunk_classes` where the head cannot use it, saying why.
pub(crate) fn chunk_not_supported(chunk: usize, why: &str) -> HeadError {
    HeadError::InvalidField {
        field: CHUNK_CLASSES_FIELD,
        value: chunk.to_string(),
        expected: format!("absent {why} (chunk_classes applies to {CHUNKABLE_KINDS})"),
    }
}

/// The head's loss over blocks of `block` classes of its classifier (one weight row per
/// class), with `margin` on the target cosines (unscaled) and the logits times `scale`; no
/// logits.
///
/// Panics on a batch [`Head::forward_checked`] rejects (as the full heads do on one).
///
/// # Shapes
/// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`
pub(crate) fn chunked_output<B: Backend>(
    head: &Head<B>,
    x: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    scale: f64,
    block: usize,
    margin: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> HeadOutput<B> {
    let weight = classifier_of(head).weight.val();
    let loss = chunked_margin_cross_entropy(x, weight, labels, scale, block, margin)
        .unwrap_or_else(|e| panic!("chunked head forward: {e}"));
    HeadOutput { loss, logits: None }
}
