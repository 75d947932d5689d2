//! The backbones' hot composite ops, with kernels of their own on the CPU training backend.
//!
//! Every function here keeps the `B: Backend` bound of the rest of the project. At run time,
//! when `B` is `Autodiff<Flex>` (the CPU training backend) and the `fast-cpu` feature is on
//! (default), the op runs as one autodiff node with a hand-written backward over the raw f32
//! buffers (see `flex`); on every other backend (ndarray, plain flex for inference, wgpu, ...)
//! it runs Burn's own composite ops, so the function computed is the same everywhere and
//! only the summation order of the gradients differs.
//!
//! - [`conv2d`]: `Conv2d::forward`; the forward is im2col + GEMMs per block of images
//!   (about 128 output positions a block, so a block's im2col stays near the core), blocks
//!   spread over the threads (burn-flex's tiled forward runs narrow GEMM tiles on the small
//!   maps of sphere nets); the backward (input, weight and bias gradients) is one
//!   batch-parallel pass: per block, im2col + one GEMM for the weight gradient, one GEMM +
//!   col2im for the input gradient, a row sum for the bias (Burn's default runs the input
//!   gradient as a serial per-image conv_transpose and the weight gradient as a conv over
//!   permuted copies). The GEMMs are laid out so that gemm reads the im2col where it lies
//!   rather than copying it into its packed form: the weight gradient is accumulated
//!   transposed, the forward's GEMMs are at most 48 output channels wide over rows padded to
//!   a multiple of 16, the input gradient reads a transposed copy of W. Outputs are
//!   allocated and zeroed by the worker threads ([`flex`]'s `filled`), not by the caller.
//! - [`prelu`]: `PRelu::forward`; forward and backward in one pass each
//!   (`dx = g` where `x >= 0`, `alpha g` where `x < 0`; `dalpha_c = sum of g x` where `x < 0`).
//! - [`batch_norm`]: `BatchNorm::forward` in training mode (batch statistics, running
//!   statistics updated with Burn's rule and biased variance); the forward computes the
//!   per-channel mean and variance in f64 (two passes) and writes `(x - mean) gamma / std +
//!   beta` in one pass; the backward is the closed form of the batch-statistics gradient,
//!   `dx = gamma / std (g - mean(g) - xhat mean(g xhat))`, `dgamma = sum g xhat`,
//!   `dbeta = sum g` (Burn's composite runs a dozen broadcasting element-wise ops and their
//!   backwards, most of them through strided iteration).
//!
//! - [`max_pool2d`]: `MaxPool2d::forward`; one pass over each plane keeping the argmax as a
//!   `u32` per output, the backward adds each output gradient at its argmax (burn-flex's
//!   op spent most of LeNets++'s pooling time in bounds-checked strided loops writing an
//!   `i64` index per output); the same tie rule as burn-flex (first maximum in row-major
//!   window order).
//!
//! `VISAGE_FAST_CPU=off` (or a list of `conv`, `convfwd`, `prelu`, `bn`, `pool`, and `optim`
//! for visage-train's fused optimiser update: only those ops;
//! `convfwd` is the conv's own batch-parallel im2col + GEMM forward inside `conv`, else
//! burn-flex's forward) switches the kernels off at run
//! time, for A/B measurements.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PRelu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

#[cfg(feature = "fast-cpu")]
mod flex;
#[cfg(feature = "fast-cpu")]
mod max_pool_flex;

/// Whether the fast CPU kernel `op` is on (`VISAGE_FAST_CPU`, read once): unset, `on` or
/// `all`: every one; `off`, `none` or `0`: none; else a comma-separated list of names
/// (`conv`, `convfwd`, `prelu`, `bn`, `pool`, and `optim` for visage-train's fused
/// optimiser update).
#[cfg(feature = "fast-cpu")]
pub fn fast_cpu_enabled(op: &str) -> bool {
    use std::sync::OnceLock;
    static SWITCH: OnceLock<String> = OnceLock::new();
    let s = SWITCH.get_or_init(|| {
        std::env::var("VISAGE_FAST_CPU")
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    match s.as_str() {
        "" | "on" | "all" => true,
        "off" | "none" | "0" => false,
        list => list.split(',').any(|x| x.trim() == op),
    }
}

#[cfg(feature = "fast-cpu")]
pub(crate) use fast_cpu_enabled as enabled;

/// Moves `a` into a `T` when `A` and `T` are the same type (a safe downcast), else gives
/// `a` back.
#[cfg(feature = "fast-cpu")]
pub fn downcast<A: 'static, T: 'static>(a: A) -> Result<T, A> {
    use std::any::Any;
    let mut slot = Some(a);
    if let Some(t) = (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>() {
        return Ok(t.take().expect("filled above"));
    }
    Err(slot.expect("not taken"))
}

/// `conv.forward(x)`, with the batch-parallel fused backward on `Autodiff<Flex>`.
///
/// # Shapes
/// - input `[N, C_in, H, W]`, output `[N, C_out, H_out, W_out]`.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "fast-cpu")]
    let x = match enabled("conv") {
        true => match flex::conv2d(conv, x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    conv.forward(x)
}

/// `prelu.forward(x)` (channel dimension 1), with a one-pass forward and backward on
/// `Autodiff<Flex>`.
pub fn prelu<B: Backend, const D: usize>(prelu: &PRelu<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "fast-cpu")]
    let x = match enabled("prelu") {
        true => match flex::prelu(prelu, x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    prelu.forward(x)
}

/// `bn.forward(x)` (channel dimension 1, rank >= 2), with a fused forward and closed-form
/// backward on `Autodiff<Flex>` (training mode: batch statistics, running statistics
/// updated as Burn does).
pub fn batch_norm<B: Backend, const D: usize>(bn: &BatchNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "fast-cpu")]
    let x = match enabled("bn") {
        true => match flex::batch_norm(bn, x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    bn.forward(x)
}

/// `pool.forward(x)`, with a one-pass forward (argmax kept) and backward on
/// `Autodiff<Flex>`.
///
/// # Shapes
/// - input `[N, C, H, W]`, output `[N, C, H_out, W_out]`.
pub fn max_pool2d<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "fast-cpu")]
    let x = match enabled("pool") {
        true => match max_pool_flex::max_pool2d(pool, x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    pool.forward(x)
}
