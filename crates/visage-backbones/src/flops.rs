//! Analytic cost of a forward pass: multiply-accumulates of convolutions and linear layers.
//!
//! Batch norms, PReLUs, additions and pooling are not counted (they are a few percent of the
//! total); one multiply-accumulate is two floating-point operations.

/// Output size of a convolution or pooling along one axis (floor rounding).
pub fn conv_output_size(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    if input + 2 * padding < kernel {
        return 0;
    }
    (input + 2 * padding - kernel) / stride + 1
}

/// A running tally of multiply-accumulates per image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacCounter {
    /// Multiply-accumulates so far.
    pub macs: u64,
}

impl MacCounter {
    /// Adds a convolution over an input of `hw`, returns the output size.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        hw: [usize; 2],
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> [usize; 2] {
        let oh = conv_output_size(hw[0], kernel, stride, padding);
        let ow = conv_output_size(hw[1], kernel, stride, padding);
        self.macs += (oh * ow * out_channels * (in_channels / groups) * kernel * kernel) as u64;
        [oh, ow]
    }

    /// Adds a fully connected layer.
    pub fn linear(&mut self, d_input: usize, d_output: usize) {
        self.macs += (d_input * d_output) as u64;
    }

    /// Floating-point operations of one forward pass (2 per multiply-accumulate).
    pub fn flops(&self) -> u64 {
        2 * self.macs
    }
}
