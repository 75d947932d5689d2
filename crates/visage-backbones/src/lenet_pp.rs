//! LeNets++, the small network of the center-loss paper for 28x28 grey images.
//!
//! Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
//! Recognition", ECCV 2016, Table 1: (conv5x5 32, PReLU) x2, max-pool; (conv5x5 64, PReLU) x2,
//! max-pool; (conv5x5 128, PReLU) x2, max-pool; a fully connected layer to a 2-D feature with
//! PReLU, used to draw the feature distribution of MNIST.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PRelu, PReluConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::BackboneError;
use crate::flops::{conv_output_size, MacCounter};
use crate::init::caffe_xavier;

/// Channels of the three conv stages.
pub const LENET_PP_CHANNELS: [usize; 3] = [32, 64, 128];

/// Configuration of a [`LeNetPP`].
#[derive(Config, Debug)]
pub struct LeNetPPConfig {
    /// Size of the embedding (2 in the paper's feature pictures; 3 for a sphere picture).
    #[config(default = 2)]
    pub embedding_dim: usize,
    /// Input channels (1, grey).
    #[config(default = 1)]
    pub in_channels: usize,
    /// Input height and width (28x28 MNIST).
    #[config(default = "[28, 28]")]
    pub input_size: [usize; 2],
}

/// A 5x5 conv (pad 2) followed by a per-channel PReLU.
#[derive(Module, Debug)]
pub struct ConvPRelu<B: Backend> {
    /// 5x5 convolution, stride 1, padding 2, with bias.
    pub conv: Conv2d<B>,
    /// PReLU, one slope per channel.
    pub prelu: PRelu<B>,
}

impl<B: Backend> ConvPRelu<B> {
    fn new(in_channels: usize, out_channels: usize, device: &B::Device) -> Self {
        let conv = Conv2dConfig::new([in_channels, out_channels], [5, 5])
            .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
            .with_initializer(caffe_xavier(in_channels * 25))
            .init(device);
        let conv = crate::init::zero_conv_bias(conv);
        Self {
            conv,
            prelu: PReluConfig::new()
                .with_num_parameters(out_channels)
                .init(device),
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::ops::prelu(&self.prelu, crate::ops::conv2d(&self.conv, x))
    }
}

/// LeNets++ (center-loss paper): six 5x5 conv + PReLU layers in three stages with max-pooling
/// (2x2 stride 2, 2x2 stride 2, 3x3 stride 2: 28 -> 14 -> 7 -> 3), then FC + PReLU.
#[derive(Module, Debug)]
pub struct LeNetPP<B: Backend> {
    /// The six conv layers, two per stage.
    pub convs: Vec<ConvPRelu<B>>,
    /// 2x2 stride-2 max-pool after stages 1 and 2.
    pub pool: MaxPool2d,
    /// 3x3 stride-2 max-pool after stage 3.
    pub pool3: MaxPool2d,
    /// Fully connected layer to the embedding.
    pub fc: Linear<B>,
    /// PReLU of the embedding.
    pub prelu: PRelu<B>,
}

impl LeNetPPConfig {
    /// Height and width after the last pooling.
    pub fn final_map_size(&self) -> [usize; 2] {
        self.input_size.map(|s| {
            let s = conv_output_size(s, 2, 2, 0);
            let s = conv_output_size(s, 2, 2, 0);
            conv_output_size(s, 3, 2, 0)
        })
    }

    /// Multiply-accumulates of one image's forward pass.
    pub fn macs(&self) -> u64 {
        let mut c = MacCounter::default();
        let mut hw = self.input_size;
        let mut cin = self.in_channels;
        for (i, cout) in LENET_PP_CHANNELS.into_iter().enumerate() {
            hw = c.conv(hw, cin, cout, 5, 1, 2, 1);
            hw = c.conv(hw, cout, cout, 5, 1, 2, 1);
            cin = cout;
            let (k, s) = if i < 2 { (2, 2) } else { (3, 2) };
            hw = hw.map(|x| conv_output_size(x, k, s, 0));
        }
        c.linear(128 * hw[0] * hw[1], self.embedding_dim);
        c.macs
    }

    /// Builds the network with the original Caffe initialisation: Xavier (fan-in uniform)
    /// weights, zero biases, PReLU slopes 0.25.
    ///
    /// # Panics
    /// When the input is too small; use [`LeNetPPConfig::try_init`] to get an error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LeNetPP<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the network, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<LeNetPP<B>, BackboneError> {
        let [fh, fw] = self.final_map_size();
        if fh == 0 || fw == 0 {
            return Err(BackboneError::InputTooSmall {
                backbone: "lenet_pp",
                input_size: self.input_size,
            });
        }
        let mut convs = Vec::with_capacity(6);
        let mut cin = self.in_channels;
        for cout in LENET_PP_CHANNELS {
            convs.push(ConvPRelu::new(cin, cout, device));
            convs.push(ConvPRelu::new(cout, cout, device));
            cin = cout;
        }
        let d_in = 128 * fh * fw;
        let fc = LinearConfig::new(d_in, self.embedding_dim)
            .with_initializer(caffe_xavier(d_in))
            .init(device);
        let fc = crate::init::zero_linear_bias(fc);
        Ok(LeNetPP {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool3: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            fc,
            prelu: PReluConfig::new()
                .with_num_parameters(self.embedding_dim)
                .init(device),
        })
    }
}

impl<B: Backend> LeNetPP<B> {
    /// Embeds a batch of images.
    ///
    /// # Shapes
    /// - images `[N, in_channels, 28, 28]`.
    /// - output `[N, embedding_dim]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = images;
        for (i, pair) in self.convs.chunks(2).enumerate() {
            for layer in pair {
                x = layer.forward(x);
            }
            x = if i < 2 {
                crate::ops::max_pool2d(&self.pool, x)
            } else {
                crate::ops::max_pool2d(&self.pool3, x)
            };
        }
        let x: Tensor<B, 2> = x.flatten(1, 3);
        crate::ops::prelu(&self.prelu, self.fc.forward(x))
    }
}
