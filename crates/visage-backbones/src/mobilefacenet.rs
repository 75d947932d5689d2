//! MobileFaceNet as InsightFace's `arcface_torch` defines it (`mbf`, `mbf_large`).
//!
//! Chen, Liu, Gao, Han, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
//! Verification on Mobile Devices", CCBR 2018. Layer for layer `backbones/mobilefacenet.py` of
//! `arcface_torch` (itself from cavaface): a stride-2 stem, depthwise residual bottlenecks,
//! a 1x1 expansion to 512 channels and the global depthwise convolution (GDC) head
//! (7x7 depthwise conv - BN - flatten - Linear without bias - BN1d).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PRelu, PReluConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::BackboneError;
use crate::flops::{conv_output_size, MacCounter};
use crate::init::kaiming_normal_fan_out_relu;

/// Configuration of a [`MobileFaceNet`]. The defaults are InsightFace's `mbf`
/// (`get_mbf(blocks=(1, 4, 6, 2), scale=2)`); `mbf_large` is blocks (2, 8, 12, 4), scale 4.
#[derive(Config, Debug)]
pub struct MobileFaceNetConfig {
    /// Embedding size (`num_features`, 512).
    #[config(default = 512)]
    pub embedding_dim: usize,
    /// Residual blocks per stage (`blocks`, (1, 4, 6, 2)). A first entry of 1 means a plain
    /// depthwise conv block after the stem, as in the original.
    #[config(default = "[1, 4, 6, 2]")]
    pub blocks: [usize; 4],
    /// Channel multiplier (`scale`, 2): stages have 64*scale and 128*scale channels.
    #[config(default = 2)]
    pub scale: usize,
    /// Input height and width (112x112: the GDC kernel is 7x7 over the final 7x7 map).
    #[config(default = "[112, 112]")]
    pub input_size: [usize; 2],
}

/// Conv (no bias) - BN - PReLU (`ConvBlock` in PyTorch; `layers.0/1/2`).
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    /// Convolution, no bias.
    pub conv: Conv2d<B>,
    /// Batch norm.
    pub bn: BatchNorm<B>,
    /// PReLU, one slope per channel.
    pub prelu: PRelu<B>,
}

/// Conv (no bias) - BN, no activation (`LinearBlock` in PyTorch; `layers.0/1`).
#[derive(Module, Debug)]
pub struct LinearBlock<B: Backend> {
    /// Convolution, no bias.
    pub conv: Conv2d<B>,
    /// Batch norm.
    pub bn: BatchNorm<B>,
}

/// Inverted bottleneck (`DepthWise` in PyTorch): 1x1 expansion [`ConvBlock`], depthwise 3x3
/// [`ConvBlock`], 1x1 projection [`LinearBlock`], plus the input when residual.
#[derive(Module, Debug)]
pub struct DepthWise<B: Backend> {
    /// 1x1 expansion to `groups` channels (`layers.0`).
    pub expand: ConvBlock<B>,
    /// 3x3 depthwise convolution (`layers.1`).
    pub depthwise: ConvBlock<B>,
    /// 1x1 linear projection (`layers.2`).
    pub project: LinearBlock<B>,
    /// Whether the input is added to the output.
    pub residual: bool,
}

fn conv<B: Backend>(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(kaiming_normal_fan_out_relu(channels[1], kernel * kernel))
        .init(device)
}

fn bn<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels).init(device)
}

impl<B: Backend> ConvBlock<B> {
    fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: conv(channels, kernel, stride, padding, groups, device),
            bn: bn(channels[1], device),
            prelu: PReluConfig::new()
                .with_num_parameters(channels[1])
                .init(device),
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H', W']`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::ops::prelu(
            &self.prelu,
            crate::ops::batch_norm(&self.bn, crate::ops::conv2d(&self.conv, x)),
        )
    }
}

impl<B: Backend> LinearBlock<B> {
    fn new(channels: [usize; 2], kernel: usize, groups: usize, device: &B::Device) -> Self {
        Self {
            conv: conv(channels, kernel, 1, 0, groups, device),
            bn: bn(channels[1], device),
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H', W']`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::ops::batch_norm(&self.bn, crate::ops::conv2d(&self.conv, x))
    }
}

impl<B: Backend> DepthWise<B> {
    fn new(
        in_channels: usize,
        out_channels: usize,
        residual: bool,
        stride: usize,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            expand: ConvBlock::new([in_channels, groups], 1, 1, 0, 1, device),
            depthwise: ConvBlock::new([groups, groups], 3, stride, 1, groups, device),
            project: LinearBlock::new([groups, out_channels], 1, 1, device),
            residual,
        }
    }

    /// # Shapes
    /// - input `[N, C_in, H, W]`, output `[N, C_out, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let out = self
            .project
            .forward(self.depthwise.forward(self.expand.forward(x.clone())));
        if self.residual {
            out + x
        } else {
            out
        }
    }
}

fn residual<B: Backend>(
    channels: usize,
    blocks: usize,
    groups: usize,
    device: &B::Device,
) -> Vec<DepthWise<B>> {
    (0..blocks)
        .map(|_| DepthWise::new(channels, channels, true, 1, groups, device))
        .collect()
}

/// InsightFace's MobileFaceNet (`mbf`). Field names map onto the PyTorch `layers.<i>` indices:
/// `stem` = `layers.0`, `stem_dw` / `stem_residual` = `layers.1`, `down2` = `layers.2`,
/// `stage2` = `layers.3`, `down3` = `layers.4`, `stage3` = `layers.5`, `down4` = `layers.6`,
/// `stage4` = `layers.7`, then `conv_sep` and the GDC head `features.layers.{0,2,3}`.
#[derive(Module, Debug)]
pub struct MobileFaceNet<B: Backend> {
    /// 3x3 stride-2 conv block, 3 -> 64*scale.
    pub stem: ConvBlock<B>,
    /// 3x3 grouped (64 groups) conv block when `blocks[0] == 1`.
    pub stem_dw: Option<ConvBlock<B>>,
    /// Residual bottlenecks when `blocks[0] != 1`.
    pub stem_residual: Vec<DepthWise<B>>,
    /// Stride-2 bottleneck, 64*scale -> 64*scale, 128 groups.
    pub down2: DepthWise<B>,
    /// `blocks[1]` residual bottlenecks, 128 groups.
    pub stage2: Vec<DepthWise<B>>,
    /// Stride-2 bottleneck, 64*scale -> 128*scale, 256 groups.
    pub down3: DepthWise<B>,
    /// `blocks[2]` residual bottlenecks, 256 groups.
    pub stage3: Vec<DepthWise<B>>,
    /// Stride-2 bottleneck, 128*scale -> 128*scale, 512 groups.
    pub down4: DepthWise<B>,
    /// `blocks[3]` residual bottlenecks, 256 groups.
    pub stage4: Vec<DepthWise<B>>,
    /// 1x1 conv block, 128*scale -> 512.
    pub conv_sep: ConvBlock<B>,
    /// GDC: 7x7 depthwise conv (512 groups) and batch norm.
    pub gdc: LinearBlock<B>,
    /// GDC linear layer 512 -> embedding, no bias.
    pub linear: Linear<B>,
    /// Batch norm of the embedding.
    pub features: BatchNorm<B>,
}

impl MobileFaceNetConfig {
    fn check(&self) -> Result<[usize; 2], BackboneError> {
        if self.scale == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "mobilefacenet: scale must be at least 1, got {}",
                self.scale
            )));
        }
        let mut hw = self.input_size;
        for _ in 0..4 {
            hw = [
                conv_output_size(hw[0], 3, 2, 1),
                conv_output_size(hw[1], 3, 2, 1),
            ];
        }
        if hw != [7, 7] {
            return Err(BackboneError::InvalidConfig(format!(
                "mobilefacenet: the GDC head needs a 7x7 final map (input 112x112 or near), \
                 input {:?} gives {:?}",
                self.input_size, hw
            )));
        }
        Ok(hw)
    }

    /// Multiply-accumulates of one image's forward pass (convolutions and the linear layer).
    pub fn macs(&self) -> u64 {
        let s = self.scale;
        let mut c = MacCounter::default();
        let dw = |c: &mut MacCounter, hw: [usize; 2], i: usize, o: usize, st: usize, g: usize| {
            let hw = c.conv(hw, i, g, 1, 1, 0, 1);
            let hw = c.conv(hw, g, g, 3, st, 1, g);
            c.conv(hw, g, o, 1, 1, 0, 1)
        };
        let mut hw = c.conv(self.input_size, 3, 64 * s, 3, 2, 1, 1);
        if self.blocks[0] == 1 {
            hw = c.conv(hw, 64 * s, 64 * s, 3, 1, 1, 64);
        } else {
            for _ in 0..self.blocks[0] {
                hw = dw(&mut c, hw, 64 * s, 64 * s, 1, 128);
            }
        }
        hw = dw(&mut c, hw, 64 * s, 64 * s, 2, 128);
        for _ in 0..self.blocks[1] {
            hw = dw(&mut c, hw, 64 * s, 64 * s, 1, 128);
        }
        hw = dw(&mut c, hw, 64 * s, 128 * s, 2, 256);
        for _ in 0..self.blocks[2] {
            hw = dw(&mut c, hw, 128 * s, 128 * s, 1, 256);
        }
        hw = dw(&mut c, hw, 128 * s, 128 * s, 2, 512);
        for _ in 0..self.blocks[3] {
            hw = dw(&mut c, hw, 128 * s, 128 * s, 1, 256);
        }
        hw = c.conv(hw, 128 * s, 512, 1, 1, 0, 1);
        c.conv(hw, 512, 512, 7, 1, 0, 512);
        c.linear(512, self.embedding_dim);
        c.macs
    }

    /// Builds the network with the original initialisation: convolutions and the linear layer
    /// Kaiming-normal (fan-out, ReLU gain: std sqrt(2 / (out_channels * k * k))), batch norms
    /// weight 1 and bias 0, PReLU slopes 0.25.
    ///
    /// # Panics
    /// On an invalid configuration; use [`MobileFaceNetConfig::try_init`] to get an error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MobileFaceNet<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the network, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<MobileFaceNet<B>, BackboneError> {
        self.check()?;
        let c1 = 64 * self.scale;
        let c2 = 128 * self.scale;
        let (stem_dw, stem_residual) = if self.blocks[0] == 1 {
            (
                Some(ConvBlock::new([c1, c1], 3, 1, 1, 64, device)),
                Vec::new(),
            )
        } else {
            (None, residual(c1, self.blocks[0], 128, device))
        };
        Ok(MobileFaceNet {
            stem: ConvBlock::new([3, c1], 3, 2, 1, 1, device),
            stem_dw,
            stem_residual,
            down2: DepthWise::new(c1, c1, false, 2, 128, device),
            stage2: residual(c1, self.blocks[1], 128, device),
            down3: DepthWise::new(c1, c2, false, 2, 256, device),
            stage3: residual(c2, self.blocks[2], 256, device),
            down4: DepthWise::new(c2, c2, false, 2, 512, device),
            stage4: residual(c2, self.blocks[3], 256, device),
            conv_sep: ConvBlock::new([c2, 512], 1, 1, 0, 1, device),
            gdc: LinearBlock::new([512, 512], 7, 512, device),
            linear: LinearConfig::new(512, self.embedding_dim)
                .with_bias(false)
                .with_initializer(kaiming_normal_fan_out_relu(self.embedding_dim, 1))
                .init(device),
            features: bn(self.embedding_dim, device),
        })
    }
}

impl<B: Backend> MobileFaceNet<B> {
    /// Embeds a batch of images. Training mode (batch statistics) on an autodiff backend,
    /// inference mode (running statistics) otherwise.
    ///
    /// # Shapes
    /// - images `[N, 3, 112, 112]`, normalised as the weights expect
    ///   ((x/255 - 0.5) / 0.5 for InsightFace).
    /// - output `[N, embedding_dim]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem.forward(images);
        if let Some(block) = &self.stem_dw {
            x = block.forward(x);
        }
        for block in &self.stem_residual {
            x = block.forward(x);
        }
        x = self.down2.forward(x);
        for block in &self.stage2 {
            x = block.forward(x);
        }
        x = self.down3.forward(x);
        for block in &self.stage3 {
            x = block.forward(x);
        }
        x = self.down4.forward(x);
        for block in &self.stage4 {
            x = block.forward(x);
        }
        let x = self.conv_sep.forward(x);
        let x = self.gdc.forward(x);
        let x: Tensor<B, 2> = x.flatten(1, 3);
        let x = self.linear.forward(x);
        crate::ops::batch_norm(&self.features, x)
    }
}
