//! Tensor building blocks shared by the classifier, the margins and the losses: safe L2
//! normalisation, target-column bookkeeping, in-batch pairwise distances.

mod normalize;
mod pairwise;
mod target;

pub use normalize::{cosine_matrix, l2_norm, l2_normalize, NORM_EPS};
pub use pairwise::{
    pairwise_squared_distances, same_label_mask, sqrt_distances, EXPLICIT_DIFFERENCE_BUDGET,
};
pub use target::{gather_target, replace_target, target_mask};
