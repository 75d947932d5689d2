//! SphereFace's residual networks (4, 10, 20, 36, 64 conv layers).
//!
//! Liu, Wen, Yu, Li, Raj, Song, "SphereFace: Deep Hypersphere Embedding for Face
//! Recognition", CVPR 2017, Table 2: four stages of 64, 128, 256, 512 channels, each opened by
//! a 3x3 stride-2 convolution, followed by residual units of two 3x3 convolutions; PReLU after
//! every convolution, no batch norm; a fully connected layer to the 512-d feature.
//! Residual units per stage: 4 layers [0,0,0,0], 10 [0,1,2,0], 20 [1,2,4,1], 36 [2,4,8,2],
//! 64 [3,8,16,3]. Input 112x96 (the paper) or 112x112.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PRelu, PReluConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::BackboneError;
use crate::flops::{conv_output_size, MacCounter};
use crate::init::{caffe_xavier, zero_conv_bias, zero_linear_bias};

/// Channels of the four stages.
pub const SPHERE_STAGE_CHANNELS: [usize; 4] = [64, 128, 256, 512];
/// Standard deviation of the Gaussian filler of the residual units' convolutions.
pub const SPHERE_RESIDUAL_INIT_STD: f64 = 0.01;

/// Residual units per stage for the depths of the paper.
pub fn sphere_units(depth: usize) -> Option<[usize; 4]> {
    match depth {
        4 => Some([0, 0, 0, 0]),
        10 => Some([0, 1, 2, 0]),
        20 => Some([1, 2, 4, 1]),
        36 => Some([2, 4, 8, 2]),
        64 => Some([3, 8, 16, 3]),
        _ => None,
    }
}

/// Configuration of a [`SphereNet`].
#[derive(Config, Debug)]
pub struct SphereNetConfig {
    /// Number of conv layers: 4, 10, 20, 36 or 64 (20 is "SphereFace-20").
    #[config(default = 20)]
    pub depth: usize,
    /// Embedding size (512, the `fc5` layer).
    #[config(default = 512)]
    pub embedding_dim: usize,
    /// Input height and width: 112x96 in the paper, 112x112 also common.
    #[config(default = "[112, 96]")]
    pub input_size: [usize; 2],
}

/// A 3x3 conv (pad 1, with bias) followed by a per-channel PReLU.
#[derive(Module, Debug)]
pub struct SphereConv<B: Backend> {
    /// 3x3 convolution with bias.
    pub conv: Conv2d<B>,
    /// PReLU, one slope per channel.
    pub prelu: PRelu<B>,
}

impl<B: Backend> SphereConv<B> {
    fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        init: Initializer,
        device: &B::Device,
    ) -> Self {
        let conv = Conv2dConfig::new([in_channels, out_channels], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_initializer(init)
            .init(device);
        Self {
            conv: zero_conv_bias(conv),
            prelu: PReluConfig::new()
                .with_num_parameters(out_channels)
                .init(device),
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::ops::prelu(&self.prelu, crate::ops::conv2d(&self.conv, x))
    }
}

/// Residual unit: x + PReLU(conv(PReLU(conv(x)))).
#[derive(Module, Debug)]
pub struct SphereUnit<B: Backend> {
    /// First conv + PReLU.
    pub conv1: SphereConv<B>,
    /// Second conv + PReLU.
    pub conv2: SphereConv<B>,
}

impl<B: Backend> SphereUnit<B> {
    /// # Shapes
    /// - input and output `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        x.clone() + self.conv2.forward(self.conv1.forward(x))
    }
}

/// One stage: a stride-2 conv + PReLU, then residual units.
#[derive(Module, Debug)]
pub struct SphereStage<B: Backend> {
    /// Opening 3x3 stride-2 conv + PReLU.
    pub down: SphereConv<B>,
    /// Residual units.
    pub units: Vec<SphereUnit<B>>,
}

/// SphereFace's residual network (SphereFace-4 .. SphereFace-64).
#[derive(Module, Debug)]
pub struct SphereNet<B: Backend> {
    /// The four stages (64, 128, 256, 512 channels).
    pub stages: Vec<SphereStage<B>>,
    /// Fully connected layer to the embedding (`fc5`), no activation.
    pub fc: Linear<B>,
}

impl SphereNetConfig {
    /// Residual units per stage, or an error for a depth the paper does not define.
    pub fn units(&self) -> Result<[usize; 4], BackboneError> {
        sphere_units(self.depth).ok_or(BackboneError::UnsupportedDepth {
            backbone: "sphere_net",
            depth: self.depth,
            supported: "4, 10, 20, 36, 64",
        })
    }

    /// Height and width of the last stage's map (7x6 for 112x96, 7x7 for 112x112).
    pub fn final_map_size(&self) -> [usize; 2] {
        self.input_size.map(|mut s| {
            for _ in 0..4 {
                s = conv_output_size(s, 3, 2, 1);
            }
            s
        })
    }

    /// Multiply-accumulates of one image's forward pass, or `None` for an unsupported depth.
    pub fn macs(&self) -> Option<u64> {
        let units = sphere_units(self.depth)?;
        let mut c = MacCounter::default();
        let mut hw = self.input_size;
        let mut cin = 3;
        for (cout, n) in SPHERE_STAGE_CHANNELS.into_iter().zip(units) {
            hw = c.conv(hw, cin, cout, 3, 2, 1, 1);
            for _ in 0..2 * n {
                hw = c.conv(hw, cout, cout, 3, 1, 1, 1);
            }
            cin = cout;
        }
        c.linear(512 * hw[0] * hw[1], self.embedding_dim);
        Some(c.macs)
    }

    /// Builds the network with the original Caffe initialisation: stage-opening convs and
    /// `fc` Xavier (fan-in uniform), residual convs Gaussian std 0.01, zero biases, PReLU 0.25.
    ///
    /// # Panics
    /// On an invalid configuration; use [`SphereNetConfig::try_init`] to get an error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SphereNet<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the network, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<SphereNet<B>, BackboneError> {
        let units = self.units()?;
        let [fh, fw] = self.final_map_size();
        if fh == 0 || fw == 0 {
            return Err(BackboneError::InputTooSmall {
                backbone: "sphere_net",
                input_size: self.input_size,
            });
        }
        let mut cin = 3;
        let mut stages = Vec::with_capacity(4);
        for (cout, n) in SPHERE_STAGE_CHANNELS.into_iter().zip(units) {
            let down = SphereConv::new(cin, cout, 2, caffe_xavier(cin * 9), device);
            let gauss = Initializer::Normal {
                mean: 0.0,
                std: SPHERE_RESIDUAL_INIT_STD,
            };
            let units = (0..n)
                .map(|_| SphereUnit {
                    conv1: SphereConv::new(cout, cout, 1, gauss.clone(), device),
                    conv2: SphereConv::new(cout, cout, 1, gauss.clone(), device),
                })
                .collect();
            stages.push(SphereStage { down, units });
            cin = cout;
        }
        let d_in = 512 * fh * fw;
        let fc = LinearConfig::new(d_in, self.embedding_dim)
            .with_initializer(caffe_xavier(d_in))
            .init(device);
        Ok(SphereNet {
            stages,
            fc: zero_linear_bias(fc),
        })
    }
}

impl<B: Backend> SphereNet<B> {
    /// Embeds a batch of images.
    ///
    /// # Shapes
    /// - images `[N, 3, H, W]` (112x96 or 112x112).
    /// - output `[N, embedding_dim]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = images;
        for stage in &self.stages {
            x = stage.down.forward(x);
            for unit in &stage.units {
                x = unit.forward(x);
            }
        }
        let x: Tensor<B, 2> = x.flatten(1, 3);
        self.fc.forward(x)
    }
}
