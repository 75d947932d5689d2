//! `HeadSpec`: the `[head]` table of a TOML config (and `visage head --spec`), and its
//! validated conversion into one head's `#[derive(Config)]`.
//!
//! Field names are exactly: `kind`, `scale`, `margin`, `easy_margin`, `detach_margin`, `m1`,
//! `m2`, `m3`, `margin_int`, `base`, `gamma`, `power`, `lambda_min`, `learnable_scale`,
//! `dynamic`, `alpha`, `lambda`, `mining`, `distance`, `reduction`, `normalize`, `bias`.
//! Unknown keys, and known keys the kind does not take, are errors that name the key.
//! Fields left out take the paper defaults of the head's config.

use serde::{Deserialize, Serialize};

use crate::adacos::AdaCosConfig;
use crate::arcface::ArcFaceConfig;
use crate::center::CenterLossConfig;
use crate::combined::CombinedMarginConfig;
use crate::contrastive::ContrastiveConfig;
use crate::cosface::CosFaceConfig;
use crate::deepid2::DeepId2Config;
use crate::lsoftmax::LSoftmaxConfig;
use crate::normface::NormFaceConfig;
use crate::softmax::SoftmaxConfig;
use crate::sphereface::SphereFaceConfig;
use crate::triplet::{TripletConfig, TripletDistance, TripletMining, TripletReduction};
use crate::HeadError;

/// Every head of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// Plain softmax ([`crate::Softmax`]).
    Softmax,
    /// L-Softmax ([`crate::LSoftmax`]).
    Lsoftmax,
    /// A-Softmax ([`crate::SphereFace`]).
    Sphereface,
    /// NormFace ([`crate::NormFace`]).
    Normface,
    /// CosFace ([`crate::CosFace`]).
    Cosface,
    /// ArcFace ([`crate::ArcFace`]).
    Arcface,
    /// Combined margin ([`crate::CombinedMargin`]).
    Combined,
    /// AdaCos ([`crate::AdaCos`]).
    Adacos,
    /// Contrastive ([`crate::Contrastive`]).
    Contrastive,
    /// Triplet ([`crate::Triplet`]).
    Triplet,
    /// Center loss ([`crate::CenterLoss`]).
    Center,
    /// DeepID2 ([`crate::DeepId2`]).
    Deepid2,
}

impl HeadKind {
    /// Every kind, in the order of the literature.
    pub const ALL: [HeadKind; 12] = [
        HeadKind::Softmax,
        HeadKind::Contrastive,
        HeadKind::Deepid2,
        HeadKind::Triplet,
        HeadKind::Center,
        HeadKind::Lsoftmax,
        HeadKind::Sphereface,
        HeadKind::Normface,
        HeadKind::Cosface,
        HeadKind::Arcface,
        HeadKind::Combined,
        HeadKind::Adacos,
    ];

    /// The kind's name as configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            HeadKind::Softmax => "softmax",
            HeadKind::Lsoftmax => "lsoftmax",
            HeadKind::Sphereface => "sphereface",
            HeadKind::Normface => "normface",
            HeadKind::Cosface => "cosface",
            HeadKind::Arcface => "arcface",
            HeadKind::Combined => "combined",
            HeadKind::Adacos => "adacos",
            HeadKind::Contrastive => "contrastive",
            HeadKind::Triplet => "triplet",
            HeadKind::Center => "center",
            HeadKind::Deepid2 => "deepid2",
        }
    }

    /// Whether the head has class weights and produces logits.
    pub fn is_classifier(self) -> bool {
        !matches!(
            self,
            HeadKind::Contrastive | HeadKind::Triplet | HeadKind::Center
        )
    }

    /// Whether the head holds a `[C, d]` tensor (class weights, or centres for center loss).
    pub fn has_class_tensor(self) -> bool {
        !matches!(self, HeadKind::Contrastive | HeadKind::Triplet)
    }

    /// The fields a spec of this kind may set (besides `kind`).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            HeadKind::Softmax => &["bias"],
            HeadKind::Lsoftmax | HeadKind::Sphereface => {
                &["margin_int", "base", "gamma", "power", "lambda_min"]
            }
            HeadKind::Normface => &["scale", "learnable_scale"],
            HeadKind::Cosface => &["scale", "margin"],
            HeadKind::Arcface => &["scale", "margin", "easy_margin", "detach_margin"],
            HeadKind::Combined => &["scale", "m1", "m2", "m3"],
            HeadKind::Adacos => &["dynamic"],
            HeadKind::Contrastive => &["margin", "normalize"],
            HeadKind::Triplet => &["margin", "mining", "distance", "reduction"],
            HeadKind::Center => &["alpha"],
            HeadKind::Deepid2 => &["lambda", "margin", "normalize", "bias"],
        }
    }
}

impl std::fmt::Display for HeadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `[head]` table: the kind and whichever of its fields are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Which head.
    pub kind: HeadKind,
    /// Scale s (normface, cosface, arcface, combined), in `(0, 1e4]` ([`crate::MAX_SCALE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Margin (cosface: cosine, `[0, 1)`; arcface: angle in radians, `[0, pi/2)`;
    /// contrastive, deepid2, triplet: distance, `(0, 1e4]` ([`crate::MAX_MARGIN`])).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// ArcFace easy margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub easy_margin: Option<bool>,
    /// ArcFace margin without gradient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach_margin: Option<bool>,
    /// Combined margin m1, in `(0, 8)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m1: Option<f64>,
    /// Combined margin m2 (radians), in `[0, pi/2)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m2: Option<f64>,
    /// Combined margin m3, in `[0, 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m3: Option<f64>,
    /// Integer margin of L-Softmax / A-Softmax, `1..=4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_int: Option<u32>,
    /// Annealing base (finite, `>= 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<f64>,
    /// Annealing gamma (finite, `>= 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// Annealing power (finite, `>= 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    /// Annealing floor (finite, `>= 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_min: Option<f64>,
    /// NormFace learnable scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learnable_scale: Option<bool>,
    /// Dynamic AdaCos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<bool>,
    /// Center-loss centre learning rate, in `(0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// DeepID2 verification weight, in `[0, 1e4]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Triplet mining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mining: Option<TripletMining>,
    /// Triplet distance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<TripletDistance>,
    /// Triplet reduction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduction: Option<TripletReduction>,
    /// Contrastive (and DeepID2) feature normalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    /// Softmax (and DeepID2) class bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<bool>,
}

/// One head's validated configuration.
#[derive(Debug, Clone)]
pub enum HeadConfig {
    /// Softmax.
    Softmax(SoftmaxConfig),
    /// L-Softmax.
    LSoftmax(LSoftmaxConfig),
    /// SphereFace.
    SphereFace(SphereFaceConfig),
    /// NormFace.
    NormFace(NormFaceConfig),
    /// CosFace.
    CosFace(CosFaceConfig),
    /// ArcFace.
    ArcFace(ArcFaceConfig),
    /// Combined margin.
    Combined(CombinedMarginConfig),
    /// AdaCos.
    AdaCos(AdaCosConfig),
    /// Contrastive.
    Contrastive(ContrastiveConfig),
    /// Triplet.
    Triplet(TripletConfig),
    /// Center loss.
    Center(CenterLossConfig),
    /// DeepID2.
    DeepId2(DeepId2Config),
}

impl HeadSpec {
    /// A spec of `kind` with every field at its default.
    pub fn new(kind: HeadKind) -> Self {
        HeadSpec {
            kind,
            scale: None,
            margin: None,
            easy_margin: None,
            detach_margin: None,
            m1: None,
            m2: None,
            m3: None,
            margin_int: None,
            base: None,
            gamma: None,
            power: None,
            lambda_min: None,
            learnable_scale: None,
            dynamic: None,
            alpha: None,
            lambda: None,
            mining: None,
            distance: None,
            reduction: None,
            normalize: None,
            bias: None,
        }
    }

    /// The names of the fields that are set.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let flags = [
            ("scale", self.scale.is_some()),
            ("margin", self.margin.is_some()),
            ("easy_margin", self.easy_margin.is_some()),
            ("detach_margin", self.detach_margin.is_some()),
            ("m1", self.m1.is_some()),
            ("m2", self.m2.is_some()),
            ("m3", self.m3.is_some()),
            ("margin_int", self.margin_int.is_some()),
            ("base", self.base.is_some()),
            ("gamma", self.gamma.is_some()),
            ("power", self.power.is_some()),
            ("lambda_min", self.lambda_min.is_some()),
            ("learnable_scale", self.learnable_scale.is_some()),
            ("dynamic", self.dynamic.is_some()),
            ("alpha", self.alpha.is_some()),
            ("lambda", self.lambda.is_some()),
            ("mining", self.mining.is_some()),
            ("distance", self.distance.is_some()),
            ("reduction", self.reduction.is_some()),
            ("normalize", self.normalize.is_some()),
            ("bias", self.bias.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| name)
            .collect()
    }

    /// The validated config of this head for `classes` classes of `embedding_dim`-wide
    /// embeddings (both ignored by the metric losses that have no class tensor).
    pub fn to_config(&self, classes: usize, embedding_dim: usize) -> Result<HeadConfig, HeadError> {
        let allowed = self.kind.fields();
        if let Some(field) = self.set_fields().into_iter().find(|f| !allowed.contains(f)) {
            return Err(HeadError::FieldNotApplicable {
                field,
                kind: self.kind.name(),
            });
        }
        let (c, d) = (classes, embedding_dim);
        let config = match self.kind {
            HeadKind::Softmax => {
                HeadConfig::Softmax(SoftmaxConfig::new(c, d).with_bias(self.bias.unwrap_or(false)))
            }
            HeadKind::Lsoftmax => {
                let mut k = LSoftmaxConfig::new(c, d);
                k.margin_int = self.margin_int.unwrap_or(k.margin_int);
                k.base = self.base.unwrap_or(k.base);
                k.gamma = self.gamma.unwrap_or(k.gamma);
                k.power = self.power.unwrap_or(k.power);
                k.lambda_min = self.lambda_min.unwrap_or(k.lambda_min);
                HeadConfig::LSoftmax(k)
            }
            HeadKind::Sphereface => {
                let mut k = SphereFaceConfig::new(c, d);
                k.margin_int = self.margin_int.unwrap_or(k.margin_int);
                k.base = self.base.unwrap_or(k.base);
                k.gamma = self.gamma.unwrap_or(k.gamma);
                k.power = self.power.unwrap_or(k.power);
                k.lambda_min = self.lambda_min.unwrap_or(k.lambda_min);
                HeadConfig::SphereFace(k)
            }
            HeadKind::Normface => HeadConfig::NormFace(
                NormFaceConfig::new(c, d)
                    .with_scale(self.scale)
                    .with_learnable_scale(self.learnable_scale.unwrap_or(false)),
            ),
            HeadKind::Cosface => {
                let mut k = CosFaceConfig::new(c, d);
                k.scale = self.scale.unwrap_or(k.scale);
                k.margin = self.margin.unwrap_or(k.margin);
                HeadConfig::CosFace(k)
            }
            HeadKind::Arcface => {
                let mut k = ArcFaceConfig::new(c, d);
                k.scale = self.scale.unwrap_or(k.scale);
                k.margin = self.margin.unwrap_or(k.margin);
                k.easy_margin = self.easy_margin.unwrap_or(k.easy_margin);
                k.detach_margin = self.detach_margin.unwrap_or(k.detach_margin);
                HeadConfig::ArcFace(k)
            }
            HeadKind::Combined => {
                let mut k = CombinedMarginConfig::new(c, d);
                k.scale = self.scale.unwrap_or(k.scale);
                k.m1 = self.m1.unwrap_or(k.m1);
                k.m2 = self.m2.unwrap_or(k.m2);
                k.m3 = self.m3.unwrap_or(k.m3);
                HeadConfig::Combined(k)
            }
            HeadKind::Adacos => HeadConfig::AdaCos(
                AdaCosConfig::new(c, d).with_dynamic(self.dynamic.unwrap_or(false)),
            ),
            HeadKind::Contrastive => {
                let mut k = ContrastiveConfig::new();
                k.margin = self.margin.unwrap_or(k.margin);
                k.normalize = self.normalize.unwrap_or(k.normalize);
                HeadConfig::Contrastive(k)
            }
            HeadKind::Triplet => {
                let mut k = TripletConfig::new();
                k.margin = self.margin.unwrap_or(k.margin);
                k.mining = self.mining.unwrap_or(k.mining);
                k.distance = self.distance.unwrap_or(k.distance);
                k.reduction = self.reduction.unwrap_or(k.reduction);
                HeadConfig::Triplet(k)
            }
            HeadKind::Center => {
                let mut k = CenterLossConfig::new(c, d);
                k.alpha = self.alpha.unwrap_or(k.alpha);
                HeadConfig::Center(k)
            }
            HeadKind::Deepid2 => {
                let mut k = DeepId2Config::new(c, d);
                k.lambda = self.lambda.unwrap_or(k.lambda);
                k.margin = self.margin.unwrap_or(k.margin);
                k.normalize = self.normalize.unwrap_or(k.normalize);
                k.bias = self.bias.unwrap_or(k.bias);
                HeadConfig::DeepId2(k)
            }
        };
        config.validate()?;
        Ok(config)
    }
}

impl HeadConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        match self {
            HeadConfig::Softmax(k) => k.validate(),
            HeadConfig::LSoftmax(k) => k.validate(),
            HeadConfig::SphereFace(k) => k.validate(),
            HeadConfig::NormFace(k) => k.validate(),
            HeadConfig::CosFace(k) => k.validate(),
            HeadConfig::ArcFace(k) => k.validate(),
            HeadConfig::Combined(k) => k.validate(),
            HeadConfig::AdaCos(k) => k.validate(),
            HeadConfig::Contrastive(k) => k.validate(),
            HeadConfig::Triplet(k) => k.validate(),
            HeadConfig::Center(k) => k.validate(),
            HeadConfig::DeepId2(k) => k.validate(),
        }
    }

    /// The head kind.
    pub fn kind(&self) -> HeadKind {
        match self {
            HeadConfig::Softmax(_) => HeadKind::Softmax,
            HeadConfig::LSoftmax(_) => HeadKind::Lsoftmax,
            HeadConfig::SphereFace(_) => HeadKind::Sphereface,
            HeadConfig::NormFace(_) => HeadKind::Normface,
            HeadConfig::CosFace(_) => HeadKind::Cosface,
            HeadConfig::ArcFace(_) => HeadKind::Arcface,
            HeadConfig::Combined(_) => HeadKind::Combined,
            HeadConfig::AdaCos(_) => HeadKind::Adacos,
            HeadConfig::Contrastive(_) => HeadKind::Contrastive,
            HeadConfig::Triplet(_) => HeadKind::Triplet,
            HeadConfig::Center(_) => HeadKind::Center,
            HeadConfig::DeepId2(_) => HeadKind::Deepid2,
        }
    }
}
