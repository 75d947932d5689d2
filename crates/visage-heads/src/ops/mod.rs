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

use burn::module::Param;
use burn::tensor::{backend::Backend, get_device_settings, DType, Element, Tensor};

/// The float dtype of backend `B` (`B::FloatElem`'s), for creating tensors. Burn 0.21's
/// `Tensor::zeros/ones/from_data(.., &device)` take the dtype from a per-device registry that
/// the first backend used on the device sets (NdArray<f32> and NdArray<f64> share one
/// device), so a tensor created without it can be f32 inside an f64 backend.
pub fn float_dtype<B: Backend>() -> DType {
    <B::FloatElem as Element>::dtype()
}

/// The dtype of a parameter without initializing it: a lazy parameter (Burn's initializers
/// draw on first use, and loading a record into a lazy parameter skips the draw) reports
/// its device's default float dtype, the one its initializer will take. Reading `val()` here
/// would draw the parameter early, and a model that then loads a record trains differently
/// (the backends' parity check caught it).
pub fn param_dtype<B: Backend, const D: usize>(param: &Param<Tensor<B, D>>) -> DType {
    if param.is_initialized() {
        param.val().dtype()
    } else {
        get_device_settings::<B>(&param.lazy_device())
            .float_dtype
            .into()
    }
}

/// A boolean mask as 1.0 / 0.0 in float dtype `dtype` (give the dtype of the data the mask
/// meets; `Tensor::float` takes the device's default dtype, see [`float_dtype`]).
///
/// # Shapes
/// - `mask`: any shape, returned unchanged
pub fn mask_to_float<B: Backend, const D: usize>(
    mask: burn::tensor::Tensor<B, D, burn::tensor::Bool>,
    dtype: DType,
) -> burn::tensor::Tensor<B, D> {
    let zeros = burn::tensor::Tensor::<B, D>::zeros(mask.shape(), (&mask.device(), dtype));
    zeros.mask_fill(mask, 1.0)
}
