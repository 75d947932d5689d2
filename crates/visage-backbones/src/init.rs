//! Weight initialisations of the original implementations, expressed as Burn initializers.
//!
//! Burn's Kaiming and Xavier initializers compute the fan of a grouped convolution per group,
//! PyTorch per layer; to reproduce the originals exactly the standard deviations and bounds
//! are computed here and handed to Burn as plain `Normal` / `Uniform` initializers.

use burn::module::{Initializer, Param};
use burn::nn::conv::Conv2d;
use burn::nn::Linear;
use burn::tensor::backend::Backend;

/// PyTorch's `nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu')` for a
/// convolution with `out_channels` filters of `kernel_area` taps (PyTorch's fan-out is
/// `out_channels * kernel_area`, whatever the groups), or a `Linear` with `kernel_area = 1`.
pub(crate) fn kaiming_normal_fan_out_relu(out_channels: usize, kernel_area: usize) -> Initializer {
    let fan_out = (out_channels * kernel_area) as f64;
    Initializer::Normal {
        mean: 0.0,
        std: (2.0 / fan_out).sqrt(),
    }
}

/// Caffe's `xavier` filler (variance norm FAN_IN): `U(-sqrt(3 / fan_in), sqrt(3 / fan_in))`.
pub(crate) fn caffe_xavier(fan_in: usize) -> Initializer {
    let bound = (3.0 / fan_in as f64).sqrt();
    Initializer::Uniform {
        min: -bound,
        max: bound,
    }
}

/// Caffe's constant-0 bias filler for a convolution built with a weight initializer.
pub(crate) fn zero_conv_bias<B: Backend>(conv: Conv2d<B>) -> Conv2d<B> {
    let bias = conv
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(b.val().zeros_like()));
    Conv2d { bias, ..conv }
}

/// Caffe's constant-0 bias filler for a linear layer built with a weight initializer.
pub(crate) fn zero_linear_bias<B: Backend>(linear: Linear<B>) -> Linear<B> {
    let bias = linear
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(b.val().zeros_like()));
    Linear { bias, ..linear }
}
