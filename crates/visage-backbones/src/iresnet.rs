//! IResNet, the "improved" residual network of ArcFace as InsightFace's `arcface_torch` defines it.
//!
//! Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
//! Recognition", CVPR 2019 (network "LResNet100E-IR"); Duta et al., "Improved Residual
//! Networks", 2020. Layer for layer the `iresnet.py` of `arcface_torch`, so that its
//! `backbone.pth` state dicts load into it (see [`crate::pytorch_import`]).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PRelu, PReluConfig,
    PaddingConfig2d,
};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::BackboneError;
use crate::flops::{conv_output_size, MacCounter};

/// Batch-norm epsilon of every batch norm in `iresnet.py` (`eps=1e-05`).
pub const IRESNET_BN_EPS: f64 = 1e-5;
/// Standard deviation of the normal initialisation of every convolution in `iresnet.py`.
pub const IRESNET_CONV_INIT_STD: f64 = 0.1;

/// Block counts of the four stages for the depths InsightFace defines.
pub fn iresnet_layers(depth: usize) -> Option<[usize; 4]> {
    match depth {
        18 => Some([2, 2, 2, 2]),
        34 => Some([3, 4, 6, 3]),
        50 => Some([3, 4, 14, 3]),
        100 => Some([3, 13, 30, 3]),
        200 => Some([6, 26, 60, 6]),
        _ => None,
    }
}

/// Channels of the four stages.
pub const IRESNET_STAGE_CHANNELS: [usize; 4] = [64, 128, 256, 512];

/// Configuration of an [`IResNet`].
#[derive(Config, Debug)]
pub struct IResNetConfig {
    /// Depth: 18, 34, 50, 100 or 200 (block counts [2,2,2,2], [3,4,6,3], [3,4,14,3],
    /// [3,13,30,3], [6,26,60,6]).
    #[config(default = 50)]
    pub depth: usize,
    /// Embedding size, `num_features` in `iresnet.py` (512).
    #[config(default = 512)]
    pub embedding_dim: usize,
    /// Dropout probability before the fully connected layer (`dropout`, 0 in `arcface_torch`).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Input height and width; 112x112 in InsightFace (the head's `fc_scale` is 7*7 there).
    #[config(default = "[112, 112]")]
    pub input_size: [usize; 2],
}

impl IResNetConfig {
    /// Block counts of the four stages, or an error for a depth InsightFace does not define.
    pub fn layers(&self) -> Result<[usize; 4], BackboneError> {
        iresnet_layers(self.depth).ok_or(BackboneError::UnsupportedDepth {
            backbone: "iresnet",
            depth: self.depth,
            supported: "18, 34, 50, 100, 200",
        })
    }

    /// Height and width of the last stage's feature map (7x7 for 112x112).
    pub fn final_map_size(&self) -> [usize; 2] {
        let mut hw = self.input_size;
        for _ in 0..4 {
            hw = [
                conv_output_size(hw[0], 3, 2, 1),
                conv_output_size(hw[1], 3, 2, 1),
            ];
        }
        hw
    }

    /// Multiply-accumulates of one image's forward pass (convolutions and `fc`), or `None` for
    /// an unsupported depth.
    pub fn macs(&self) -> Option<u64> {
        let layers = iresnet_layers(self.depth)?;
        let mut c = MacCounter::default();
        let mut hw = c.conv(self.input_size, 3, 64, 3, 1, 1, 1);
        let mut inplanes = 64;
        for (planes, blocks) in IRESNET_STAGE_CHANNELS.into_iter().zip(layers) {
            for b in 0..blocks {
                let stride = if b == 0 { 2 } else { 1 };
                let mid = c.conv(hw, inplanes, planes, 3, 1, 1, 1);
                let out = c.conv(mid, planes, planes, 3, stride, 1, 1);
                if b == 0 {
                    c.conv(hw, inplanes, planes, 1, stride, 0, 1);
                }
                hw = out;
                inplanes = planes;
            }
        }
        c.linear(512 * hw[0] * hw[1], self.embedding_dim);
        Some(c.macs)
    }

    /// Builds the network with `arcface_torch`'s initialisation: convolutions N(0, 0.1),
    /// batch norms weight 1 and bias 0, PReLU slopes 0.25, `fc` PyTorch's `Linear` default
    /// (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias), and the final `features`
    /// batch norm's weight fixed at 1 and frozen (no gradient).
    ///
    /// # Panics
    /// On an unsupported depth; use [`IResNetConfig::try_init`] to get an error instead.
    pub fn init<B: Backend>(&self, device: &B::Device) -> IResNet<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the network, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<IResNet<B>, BackboneError> {
        let layers = self.layers()?;
        let [fh, fw] = self.final_map_size();
        if fh == 0 || fw == 0 {
            return Err(BackboneError::InputTooSmall {
                backbone: "iresnet",
                input_size: self.input_size,
            });
        }
        let conv1 = conv3x3(3, 64, 1, device);
        let bn1 = bn(64, device);
        let prelu = PReluConfig::new().with_num_parameters(64).init(device);
        let mut inplanes = 64;
        let mut stages: Vec<Vec<IBasicBlock<B>>> = Vec::with_capacity(4);
        for (planes, blocks) in IRESNET_STAGE_CHANNELS.into_iter().zip(layers) {
            let mut stage = Vec::with_capacity(blocks);
            // `_make_layer` is always called with stride 2: the first block downsamples.
            stage.push(IBasicBlock::new(inplanes, planes, 2, true, device));
            inplanes = planes;
            for _ in 1..blocks {
                stage.push(IBasicBlock::new(planes, planes, 1, false, device));
            }
            stages.push(stage);
        }
        let mut stages = stages.into_iter();
        let bn2 = bn(512, device);
        let fc = LinearConfig::new(512 * fh * fw, self.embedding_dim).init(device);
        let mut features = bn(self.embedding_dim, device);
        features.gamma =
            Param::from_tensor(Tensor::ones([self.embedding_dim], device)).set_require_grad(false);
        Ok(IResNet {
            conv1,
            bn1,
            prelu,
            layer1: stages.next().unwrap_or_default(),
            layer2: stages.next().unwrap_or_default(),
            layer3: stages.next().unwrap_or_default(),
            layer4: stages.next().unwrap_or_default(),
            bn2,
            dropout: DropoutConfig::new(self.dropout).init(),
            fc,
            features,
        })
    }
}

fn conv3x3<B: Backend>(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: IRESNET_CONV_INIT_STD,
        })
        .init(device)
}

fn conv1x1<B: Backend>(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([in_channels, out_channels], [1, 1])
        .with_stride([stride, stride])
        .with_bias(false)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: IRESNET_CONV_INIT_STD,
        })
        .init(device)
}

fn bn<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels)
        .with_epsilon(IRESNET_BN_EPS)
        .init(device)
}

/// The shortcut projection of a block whose shape changes: conv1x1(stride) then batch norm
/// (`downsample.0`, `downsample.1` in PyTorch).
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// 1x1 convolution with the block's stride, no bias.
    pub conv: Conv2d<B>,
    /// Batch norm after it.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> Downsample<B> {
    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H', W']`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::ops::batch_norm(&self.bn, crate::ops::conv2d(&self.conv, x))
    }
}

/// IResNet's pre-activation block: BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus the
/// input (through [`Downsample`] when the shape changes).
#[derive(Module, Debug)]
pub struct IBasicBlock<B: Backend> {
    /// Batch norm of the input.
    pub bn1: BatchNorm<B>,
    /// First 3x3 convolution, stride 1.
    pub conv1: Conv2d<B>,
    /// Batch norm after `conv1`.
    pub bn2: BatchNorm<B>,
    /// PReLU, one slope per channel.
    pub prelu: PRelu<B>,
    /// Second 3x3 convolution, carrying the block's stride.
    pub conv2: Conv2d<B>,
    /// Batch norm after `conv2`.
    pub bn3: BatchNorm<B>,
    /// Shortcut projection, present in the first block of each stage.
    pub downsample: Option<Downsample<B>>,
}

impl<B: Backend> IBasicBlock<B> {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        downsample: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            bn1: bn(inplanes, device),
            conv1: conv3x3(inplanes, planes, 1, device),
            bn2: bn(planes, device),
            prelu: PReluConfig::new().with_num_parameters(planes).init(device),
            conv2: conv3x3(planes, planes, stride, device),
            bn3: bn(planes, device),
            downsample: downsample.then(|| Downsample {
                conv: conv1x1(inplanes, planes, stride, device),
                bn: bn(planes, device),
            }),
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let out = crate::ops::batch_norm(&self.bn1, x.clone());
        let out = crate::ops::conv2d(&self.conv1, out);
        let out = crate::ops::batch_norm(&self.bn2, out);
        let out = crate::ops::prelu(&self.prelu, out);
        let out = crate::ops::conv2d(&self.conv2, out);
        let out = crate::ops::batch_norm(&self.bn3, out);
        let identity = match &self.downsample {
            Some(ds) => ds.forward(x),
            None => x,
        };
        out + identity
    }
}

/// InsightFace's IResNet (`iresnet18` .. `iresnet200` of `arcface_torch`).
///
/// Stem conv3x3(3->64)-BN-PReLU; four stages of [`IBasicBlock`]s with 64, 128, 256, 512
/// channels, each opened by a stride-2 block; head BN2d - flatten - dropout - FC - BN1d whose
/// scale is frozen at 1. Field names follow the PyTorch module names.
#[derive(Module, Debug)]
pub struct IResNet<B: Backend> {
    /// Stem convolution 3x3, 3 -> 64, stride 1, no bias.
    pub conv1: Conv2d<B>,
    /// Stem batch norm.
    pub bn1: BatchNorm<B>,
    /// Stem PReLU.
    pub prelu: PRelu<B>,
    /// Stage 1, 64 channels.
    pub layer1: Vec<IBasicBlock<B>>,
    /// Stage 2, 128 channels.
    pub layer2: Vec<IBasicBlock<B>>,
    /// Stage 3, 256 channels.
    pub layer3: Vec<IBasicBlock<B>>,
    /// Stage 4, 512 channels.
    pub layer4: Vec<IBasicBlock<B>>,
    /// Batch norm of the last feature map.
    pub bn2: BatchNorm<B>,
    /// Dropout before `fc` (active in training mode only).
    pub dropout: Dropout,
    /// Fully connected layer, 512 * 7 * 7 -> embedding.
    pub fc: Linear<B>,
    /// Final batch norm of the embedding, weight frozen at 1.
    pub features: BatchNorm<B>,
}

impl<B: Backend> IResNet<B> {
    /// Embeds a batch of images. Training mode (batch statistics, dropout) on an autodiff
    /// backend, inference mode (running statistics) otherwise.
    ///
    /// # Shapes
    /// - images `[N, 3, H, W]` (112x112 for the InsightFace models), normalised as the
    ///   weights expect ((x/255 - 0.5) / 0.5 for InsightFace).
    /// - output `[N, embedding_dim]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = crate::ops::conv2d(&self.conv1, images);
        let x = crate::ops::batch_norm(&self.bn1, x);
        let mut x = crate::ops::prelu(&self.prelu, x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        let x = crate::ops::batch_norm(&self.bn2, x);
        let x: Tensor<B, 2> = x.flatten(1, 3);
        let x = self.dropout.forward(x);
        let x = self.fc.forward(x);
        crate::ops::batch_norm(&self.features, x)
    }
}
