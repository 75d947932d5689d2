//! One type for every backbone: [`BackboneKind`] names one, [`BackboneConfig`] (serde, the
//! `[backbone]` table of a TOML config) configures one, [`Backbone`] runs one.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::BackboneError;
use crate::iresnet::{iresnet_layers, IResNet, IResNetConfig};
use crate::lenet_pp::{LeNetPP, LeNetPPConfig};
use crate::mobilefacenet::{MobileFaceNet, MobileFaceNetConfig};
use crate::sphere_net::{sphere_units, SphereNet, SphereNetConfig};

/// Largest accepted input side (height or width): 4096 pixels, 36 times the 112 of face
/// recognition, and an image tensor of at most 3 x 4096 x 4096 f32 (200 MB) per image.
pub const MAX_INPUT_SIDE: usize = 4096;
/// Largest accepted embedding size: 65,536 (face embeddings are 128 to 512; a 512 x 7 x 7 x
/// 65,536 IResNet head is already 1.6 G parameters).
pub const MAX_EMBEDDING_DIM: usize = 65_536;
/// Largest accepted number of input channels (LeNets++): 64.
pub const MAX_IN_CHANNELS: usize = 64;

/// Which backbone, with its depth where the family has several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackboneKind {
    /// Center-loss LeNets++ (`lenet_pp`).
    LeNetPP,
    /// SphereFace residual net with this many conv layers (`sphere20`, ...).
    SphereNet(usize),
    /// InsightFace IResNet of this depth (`iresnet50`, or `r50`).
    IResNet(usize),
    /// InsightFace MobileFaceNet (`mobilefacenet`, or `mbf`).
    MobileFaceNet,
}

/// A family name without its depth (`iresnet`, `sphere_net`), or a full kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParsedName {
    Kind(BackboneKind),
    IResNetFamily,
    SphereFamily,
}

fn parse_name(name: &str) -> Result<ParsedName, BackboneError> {
    let lower = name.trim().to_ascii_lowercase().replace('-', "_");
    let unknown = || BackboneError::UnknownBackbone(name.to_string());
    match lower.as_str() {
        "lenet_pp" | "lenetpp" | "lenet++" | "lenets++" => {
            return Ok(ParsedName::Kind(BackboneKind::LeNetPP))
        }
        "mobilefacenet" | "mbf" | "mobile_facenet" => {
            return Ok(ParsedName::Kind(BackboneKind::MobileFaceNet))
        }
        "iresnet" => return Ok(ParsedName::IResNetFamily),
        "sphere_net" | "spherenet" | "sphere" | "sphereface" => {
            return Ok(ParsedName::SphereFamily)
        }
        _ => {}
    }
    for prefix in ["iresnet", "r"] {
        if let Some(d) = lower.strip_prefix(prefix) {
            if let Ok(depth) = d.parse::<usize>() {
                return Ok(ParsedName::Kind(BackboneKind::IResNet(depth)));
            }
        }
    }
    for prefix in ["sphere_net", "spherenet", "sphereface", "sphere"] {
        if let Some(d) = lower.strip_prefix(prefix) {
            if let Ok(depth) = d.trim_start_matches('_').parse::<usize>() {
                return Ok(ParsedName::Kind(BackboneKind::SphereNet(depth)));
            }
        }
    }
    Err(unknown())
}

impl BackboneKind {
    /// Checks that the depth exists for the family.
    pub fn validate(self) -> Result<Self, BackboneError> {
        match self {
            BackboneKind::IResNet(d) if iresnet_layers(d).is_none() => {
                Err(BackboneError::UnsupportedDepth {
                    backbone: "iresnet",
                    depth: d,
                    supported: "18, 34, 50, 100, 200",
                })
            }
            BackboneKind::SphereNet(d) if sphere_units(d).is_none() => {
                Err(BackboneError::UnsupportedDepth {
                    backbone: "sphere_net",
                    depth: d,
                    supported: "4, 10, 20, 36, 64",
                })
            }
            k => Ok(k),
        }
    }

    /// The input size the family is trained at: 28x28 for LeNets++, 112x96 for the SphereFace
    /// nets, 112x112 for IResNet and MobileFaceNet.
    pub fn default_input_size(self) -> [usize; 2] {
        match self {
            BackboneKind::LeNetPP => [28, 28],
            BackboneKind::SphereNet(_) => [112, 96],
            BackboneKind::IResNet(_) | BackboneKind::MobileFaceNet => [112, 112],
        }
    }

    /// The default embedding size: 2 for LeNets++, 512 otherwise.
    pub fn default_embedding_dim(self) -> usize {
        match self {
            BackboneKind::LeNetPP => 2,
            _ => 512,
        }
    }

    /// Input channels: 1 (grey) for LeNets++, 3 (RGB) otherwise.
    pub fn default_in_channels(self) -> usize {
        match self {
            BackboneKind::LeNetPP => 1,
            _ => 3,
        }
    }
}

impl FromStr for BackboneKind {
    type Err = BackboneError;

    /// Parses `lenet_pp`, `sphere20` (`sphere_net20`, `sphereface20`), `iresnet50` (`r50`),
    /// `mobilefacenet` (`mbf`); the depth must be a defined one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_name(s)? {
            ParsedName::Kind(k) => k.validate(),
            ParsedName::IResNetFamily | ParsedName::SphereFamily => {
                Err(BackboneError::InvalidConfig(format!(
                    "`{s}` needs a depth, e.g. `{s}50`, or `depth = ..` in a config"
                )))
            }
        }
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackboneKind::LeNetPP => write!(f, "lenet_pp"),
            BackboneKind::SphereNet(d) => write!(f, "sphere{d}"),
            BackboneKind::IResNet(d) => write!(f, "iresnet{d}"),
            BackboneKind::MobileFaceNet => write!(f, "mobilefacenet"),
        }
    }
}

/// Serde form of a backbone choice, e.g. the `[backbone]` table of a training config:
///
/// ```toml
/// [backbone]
/// kind = "iresnet50"        # or kind = "iresnet" with depth = 50
/// embedding_dim = 512       # optional, default per kind
/// input_size = [112, 112]   # optional, default per kind
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// Backbone name: `lenet_pp`, `sphere20`, `iresnet50`, `mobilefacenet`, ... or a family
    /// name (`iresnet`, `sphere_net`) with `depth`.
    pub kind: String,
    /// Depth for a family name (must agree with a depth in `kind`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// Embedding size (default: 2 for LeNets++, 512 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_dim: Option<usize>,
    /// Input `[height, width]` (default per kind, see [`BackboneKind::default_input_size`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<[usize; 2]>,
    /// Input channels, LeNets++ only (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Dropout before the FC layer, IResNet only (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
}

impl BackboneConfig {
    /// A config for `kind` with every other field at its default.
    pub fn new(kind: BackboneKind) -> Self {
        Self {
            kind: kind.to_string(),
            depth: None,
            embedding_dim: None,
            input_size: None,
            in_channels: None,
            dropout: None,
        }
    }

    /// The backbone kind, from `kind` and `depth`.
    pub fn backbone_kind(&self) -> Result<BackboneKind, BackboneError> {
        let kind = match (parse_name(&self.kind)?, self.depth) {
            (ParsedName::Kind(k), None) => k,
            (ParsedName::Kind(k), Some(d)) => {
                let same = match k {
                    BackboneKind::IResNet(kd) | BackboneKind::SphereNet(kd) => kd == d,
                    _ => false,
                };
                if !same {
                    return Err(BackboneError::InvalidConfig(format!(
                        "kind `{}` and depth {d} disagree (or the kind has no depth)",
                        self.kind
                    )));
                }
                k
            }
            (ParsedName::IResNetFamily, Some(d)) => BackboneKind::IResNet(d),
            (ParsedName::SphereFamily, Some(d)) => BackboneKind::SphereNet(d),
            (_, None) => {
                return Err(BackboneError::InvalidConfig(format!(
                    "kind `{}` needs `depth`",
                    self.kind
                )))
            }
        };
        let kind = kind.validate()?;
        if self.in_channels.is_some() && kind != BackboneKind::LeNetPP {
            return Err(BackboneError::InvalidConfig(format!(
                "`in_channels` applies to lenet_pp only, not {kind}"
            )));
        }
        if self.dropout.is_some() && !matches!(kind, BackboneKind::IResNet(_)) {
            return Err(BackboneError::InvalidConfig(format!(
                "`dropout` applies to iresnet only, not {kind}"
            )));
        }
        Ok(kind)
    }

    /// Embedding size (explicit or the kind's default), in `1..=MAX_EMBEDDING_DIM`.
    pub fn embedding_dim(&self) -> Result<usize, BackboneError> {
        let kind = self.backbone_kind()?;
        let d = self
            .embedding_dim
            .unwrap_or_else(|| kind.default_embedding_dim());
        if d == 0 || d > MAX_EMBEDDING_DIM {
            return Err(BackboneError::InvalidConfig(format!(
                "embedding_dim = {d}: expected 1 to {MAX_EMBEDDING_DIM}"
            )));
        }
        Ok(d)
    }

    /// Input `[height, width]` (explicit or the kind's default), each side in
    /// `1..=MAX_INPUT_SIDE`.
    pub fn input_size(&self) -> Result<[usize; 2], BackboneError> {
        let kind = self.backbone_kind()?;
        let hw = self.input_size.unwrap_or_else(|| kind.default_input_size());
        if hw.iter().any(|&s| s == 0 || s > MAX_INPUT_SIDE) {
            return Err(BackboneError::InvalidConfig(format!(
                "input_size = {}x{} (HxW): each side must be 1 to {MAX_INPUT_SIDE}",
                hw[0], hw[1]
            )));
        }
        Ok(hw)
    }

    /// Input channels (explicit for LeNets++, else the kind's default), in
    /// `1..=MAX_IN_CHANNELS`.
    pub fn in_channels(&self) -> Result<usize, BackboneError> {
        let kind = self.backbone_kind()?;
        let c = self
            .in_channels
            .unwrap_or_else(|| kind.default_in_channels());
        if c == 0 || c > MAX_IN_CHANNELS {
            return Err(BackboneError::InvalidConfig(format!(
                "in_channels = {c}: expected 1 to {MAX_IN_CHANNELS}"
            )));
        }
        Ok(c)
    }

    /// Multiply-accumulates of one image's forward pass (convolutions and linear layers).
    pub fn macs(&self) -> Result<u64, BackboneError> {
        let kind = self.backbone_kind()?;
        let d = self.embedding_dim()?;
        let hw = self.input_size()?;
        Ok(match kind {
            BackboneKind::LeNetPP => LeNetPPConfig::new()
                .with_embedding_dim(d)
                .with_in_channels(self.in_channels()?)
                .with_input_size(hw)
                .macs(),
            BackboneKind::SphereNet(depth) => SphereNetConfig::new()
                .with_depth(depth)
                .with_embedding_dim(d)
                .with_input_size(hw)
                .macs()
                .unwrap_or(0),
            BackboneKind::IResNet(depth) => IResNetConfig::new()
                .with_depth(depth)
                .with_embedding_dim(d)
                .with_input_size(hw)
                .macs()
                .unwrap_or(0),
            BackboneKind::MobileFaceNet => MobileFaceNetConfig::new()
                .with_embedding_dim(d)
                .with_input_size(hw)
                .macs(),
        })
    }

    /// Builds the backbone with its original initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>, BackboneError> {
        let kind = self.backbone_kind()?;
        let d = self.embedding_dim()?;
        let hw = self.input_size()?;
        Ok(match kind {
            BackboneKind::LeNetPP => Backbone::LeNetPP(
                LeNetPPConfig::new()
                    .with_embedding_dim(d)
                    .with_in_channels(self.in_channels()?)
                    .with_input_size(hw)
                    .try_init(device)?,
            ),
            BackboneKind::SphereNet(depth) => Backbone::SphereNet(
                SphereNetConfig::new()
                    .with_depth(depth)
                    .with_embedding_dim(d)
                    .with_input_size(hw)
                    .try_init(device)?,
            ),
            BackboneKind::IResNet(depth) => Backbone::IResNet(
                IResNetConfig::new()
                    .with_depth(depth)
                    .with_embedding_dim(d)
                    .with_input_size(hw)
                    .with_dropout(self.dropout.unwrap_or(0.0))
                    .try_init(device)?,
            ),
            BackboneKind::MobileFaceNet => Backbone::MobileFaceNet(
                MobileFaceNetConfig::new()
                    .with_embedding_dim(d)
                    .with_input_size(hw)
                    .try_init(device)?,
            ),
        })
    }
}

/// Any backbone, one `forward` from images to embeddings.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // modules are handles to tensors; one lives per process
pub enum Backbone<B: Backend> {
    /// LeNets++.
    LeNetPP(LeNetPP<B>),
    /// A SphereFace net.
    SphereNet(SphereNet<B>),
    /// An IResNet.
    IResNet(IResNet<B>),
    /// A MobileFaceNet.
    MobileFaceNet(MobileFaceNet<B>),
}

impl<B: Backend> Backbone<B> {
    /// Embeds a batch of images. Training mode (batch statistics, dropout) on an autodiff
    /// backend, inference mode (running statistics) on a plain one (`model.valid()`).
    ///
    /// # Shapes
    /// - images `[N, C, H, W]` as the backbone expects (see [`BackboneConfig`]).
    /// - output `[N, embedding_dim]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Backbone::LeNetPP(m) => m.forward(images),
            Backbone::SphereNet(m) => m.forward(images),
            Backbone::IResNet(m) => m.forward(images),
            Backbone::MobileFaceNet(m) => m.forward(images),
        }
    }
}
