//! The heads of the literature, one file each: a parameter struct (the `[head]` table of its
//! kind, serde with the paper's defaults and `deny_unknown_fields`) implementing [`HeadDef`],
//! which says which parts the head holds (a [`crate::classifier::Classifier`], centres, a
//! learnable scale) and how it turns embeddings into a loss with the
//! [`crate::margin`] functions and [`crate::loss`].
//!
//! [`HeadConfig`] and [`HeadKind`] are generated from the one list at the bottom of this
//! file: adding a head is its file plus one line there.

mod adacos;
mod arcface;
mod center;
mod chunk;
mod combined;
mod contrastive;
mod cosface;
mod deepid2;
mod fused;
mod lsoftmax;
mod normface;
mod softmax;
mod sphereface;
mod subcenter_arcface;
mod triplet;

pub use adacos::{adacos_dynamic_scale, adacos_fixed_scale, AdaCosConfig, ADACOS_MIN_SCALE};
pub use arcface::ArcFaceConfig;
pub use center::CenterConfig;
pub use chunk::{CHUNKABLE_KINDS, CHUNK_CLASSES_FIELD};
pub use combined::CombinedMarginConfig;
pub use cosface::CosFaceConfig;
pub use deepid2::DeepId2Config;
pub use lsoftmax::LSoftmaxConfig;
pub use normface::{NormFaceConfig, NORMFACE_FIXED_SCALE, NORMFACE_LEARNABLE_INIT};
pub use softmax::SoftmaxConfig;
pub use sphereface::SphereFaceConfig;
pub use subcenter_arcface::{SubCenterArcFaceConfig, MAX_SUB_CENTERS};

pub use crate::loss::{ContrastiveConfig, TripletConfig};

use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::classifier::{check_dims, Classifier, ClassifierConfig};
use crate::loss::{cross_entropy, CenterLossConfig};
use crate::margin::apply_to_target;
use crate::{Head, HeadError, HeadOutput, HeadState};

/// What a head is: its parts and its forward pass. Implemented by each head's parameter
/// struct; [`HeadConfig`] dispatches to it.
pub trait HeadDef {
    /// Checks the parameters for `classes` classes of `embedding_dim`-wide embeddings (both
    /// ignored by heads without a class tensor), naming the bad field.
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError>;

    /// The classifier the head holds, if any.
    fn classifier(&self, _classes: usize, _embedding_dim: usize) -> Option<ClassifierConfig> {
        None
    }

    /// The centres the head holds (center loss), if any.
    fn centers(&self, _classes: usize, _embedding_dim: usize) -> Option<CenterLossConfig> {
        None
    }

    /// The initial value of a trained logit scale, if the head learns one.
    fn learned_scale(&self) -> Option<f64> {
        None
    }

    /// Classes per block when the training loss is computed block by block
    /// (`chunk_classes`, [`crate::loss::chunked_margin_cross_entropy`]); `None`: the full
    /// head, and every head kind but the cosine ones.
    fn chunk_classes(&self) -> Option<usize> {
        None
    }

    /// Checks the state a step starts from (AdaCos's previous scale).
    fn check_state(&self, _state: &HeadState) -> Result<(), HeadError> {
        Ok(())
    }

    /// Loss (and training logits, none in chunked mode) for a batch; reads and updates
    /// `state`.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`, logits `[N, C]`
    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B>;

    /// Inference logits (no margin), for classification heads.
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    fn inference_logits<B: Backend>(
        &self,
        _head: &Head<B>,
        _x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        None
    }
}

/// A classification head on a classifier's cosines with a margin on the target logit
/// (CosFace, ArcFace, the combined margin, sub-center ArcFace): its [`HeadDef`] follows from
/// these items. Its `validate` checks the sizes, then `scale` (in `(0, 1e4]`), then
/// [`CosineMarginHead::validate_margin`], then `chunk_classes`; the classifier produces
/// cosines; training logits are [`CosineMarginHead::margin_logits`] under cross-entropy (or,
/// with [`CosineMarginHead::chunk`], the same loss block by block and no logits), inference
/// logits are the cosines times the scale.
pub trait CosineMarginHead {
    /// The scale s of the logits.
    fn scale(&self) -> f64;

    /// Checks the margin parameters (the sizes and the scale are checked before), naming
    /// the bad field.
    fn validate_margin(&self, classes: usize) -> Result<(), HeadError>;

    /// The classifier: one weight row per class (more with sub-centres).
    fn cosine_classifier(&self, classes: usize, embedding_dim: usize) -> ClassifierConfig {
        ClassifierConfig::new(classes, embedding_dim)
    }

    /// Classes per block of the chunked training loss (the `chunk_classes` field), if the
    /// head has it set. Default: none.
    fn chunk(&self) -> Option<usize> {
        None
    }

    /// Checks `chunk_classes` against the head's other fields (sub-centres), after
    /// [`CosineMarginHead::validate_margin`]. Default: accepted when at least 1.
    fn validate_chunk(&self) -> Result<(), HeadError> {
        chunk::check_chunk_classes(self.chunk())
    }

    /// The margined target cosine `phi(c)` (unscaled), element-wise.
    ///
    /// # Shapes
    /// - `c`: `[N, 1]` -> `[N, 1]`
    fn target_margin<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2>;

    /// Training logits from class cosines: the margin on each target cosine, all times s.
    ///
    /// # Shapes
    /// - `cos`: `[N, C]`, `labels`: `[N]` -> `[N, C]`
    fn margin_logits<B: Backend>(
        &self,
        cos: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
    ) -> Tensor<B, 2> {
        apply_to_target(cos, labels, |c| self.target_margin(c)).mul_scalar(self.scale())
    }
}

impl<T: CosineMarginHead> HeadDef for T {
    fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
        check_dims(classes, embedding_dim, 1)?;
        crate::check::scale("scale", self.scale())?;
        self.validate_margin(classes)?;
        self.validate_chunk()
    }

    fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
        Some(self.cosine_classifier(classes, embedding_dim))
    }

    fn chunk_classes(&self) -> Option<usize> {
        self.chunk()
    }

    fn forward<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        _state: &mut HeadState,
    ) -> HeadOutput<B> {
        let margin = HeadMargin(self);
        let (x, labels) =
            match fused::try_fused(head, x, labels, self.scale(), self.chunk(), &margin) {
                Ok(out) => return out,
                Err(back) => back,
            };
        if let Some(block) = self.chunk() {
            return chunk::chunked_output(head, x, labels, self.scale(), block, |c| {
                self.target_margin(c)
            });
        }
        let cos = classifier_of(head).cosines(x);
        classification_output(self.margin_logits(cos, labels.clone()), labels)
    }

    fn inference_logits<B: Backend>(
        &self,
        head: &Head<B>,
        x: Tensor<B, 2>,
    ) -> Option<Tensor<B, 2>> {
        Some(classifier_of(head).cosines(x).mul_scalar(self.scale()))
    }
}

/// A cosine head's margin as a [`fused::TargetMargin`].
struct HeadMargin<'a, T>(&'a T);

impl<T: CosineMarginHead> fused::TargetMargin for HeadMargin<'_, T> {
    fn apply<B: Backend>(&self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        self.0.target_margin(c)
    }
}

/// The classifier of a head built from a config that has one.
pub(crate) fn classifier_of<B: Backend>(head: &Head<B>) -> &Classifier<B> {
    head.classifier
        .as_ref()
        .expect("a classification head built by HeadConfig holds a classifier")
}

/// Cross-entropy on `logits`, as a [`HeadOutput`].
///
/// # Shapes
/// - `logits`: `[N, C]`, `labels`: `[N]`; loss `[1]`
pub fn classification_output<B: Backend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> HeadOutput<B> {
    HeadOutput {
        loss: cross_entropy(logits.clone(), labels),
        logits: Some(logits),
    }
}

macro_rules! heads {
    ($($(#[$doc:meta])* $variant:ident($config:ty) = $name:literal,)*) => {
        /// One head's configuration: the `[head]` table of a TOML config (`kind = "..."` plus
        /// the kind's fields), the single place it is parsed. Unknown keys, and keys the kind
        /// does not take, are errors naming the key; fields left out take the paper's
        /// defaults. Sizes come at [`HeadConfig::init`].
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum HeadConfig {
            $($(#[$doc])* #[serde(rename = $name)] $variant($config),)*
        }

        /// The kind of a head, as configs spell it (`kind = "arcface"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum HeadKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl HeadKind {
            /// Every kind, in the order of the literature.
            pub const ALL: [HeadKind; [$($name),*].len()] = [$(HeadKind::$variant),*];

            /// The kind's name as configs spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $(HeadKind::$variant => $name,)*
                }
            }
        }

        impl HeadConfig {
            /// The kind with every field at the paper's default.
            pub fn new(kind: HeadKind) -> Self {
                match kind {
                    $(HeadKind::$variant => HeadConfig::$variant(<$config>::default()),)*
                }
            }

            /// The head's kind.
            pub fn kind(&self) -> HeadKind {
                match self {
                    $(HeadConfig::$variant(_) => HeadKind::$variant,)*
                }
            }

            /// Checks the configuration for `classes` classes of `embedding_dim`-wide
            /// embeddings (both ignored by the metric losses without a class tensor).
            pub fn validate(&self, classes: usize, embedding_dim: usize) -> Result<(), HeadError> {
                match self {
                    $(HeadConfig::$variant(c) => HeadDef::validate(c, classes, embedding_dim),)*
                }
            }

            /// The classifier the head holds, if any.
            pub fn classifier(&self, classes: usize, embedding_dim: usize) -> Option<ClassifierConfig> {
                match self {
                    $(HeadConfig::$variant(c) => c.classifier(classes, embedding_dim),)*
                }
            }

            /// The centres the head holds, if any.
            pub fn centers(&self, classes: usize, embedding_dim: usize) -> Option<CenterLossConfig> {
                match self {
                    $(HeadConfig::$variant(c) => c.centers(classes, embedding_dim),)*
                }
            }

            /// The initial value of a learned scale, if any.
            pub fn learned_scale(&self) -> Option<f64> {
                match self {
                    $(HeadConfig::$variant(c) => c.learned_scale(),)*
                }
            }

            /// Classes per block of the chunked training loss (`chunk_classes`), if set:
            /// the head's forward then returns no training logits.
            pub fn chunk_classes(&self) -> Option<usize> {
                match self {
                    $(HeadConfig::$variant(c) => c.chunk_classes(),)*
                }
            }

            pub(crate) fn check_state(&self, state: &HeadState) -> Result<(), HeadError> {
                match self {
                    $(HeadConfig::$variant(c) => c.check_state(state),)*
                }
            }

            pub(crate) fn forward<B: Backend>(
                &self,
                head: &Head<B>,
                x: Tensor<B, 2>,
                labels: Tensor<B, 1, Int>,
                state: &mut HeadState,
            ) -> HeadOutput<B> {
                match self {
                    $(HeadConfig::$variant(c) => HeadDef::forward(c, head, x, labels, state),)*
                }
            }

            pub(crate) fn inference_logits<B: Backend>(
                &self,
                head: &Head<B>,
                x: Tensor<B, 2>,
            ) -> Option<Tensor<B, 2>> {
                match self {
                    $(HeadConfig::$variant(c) => c.inference_logits(head, x),)*
                }
            }
        }
    };
}

heads! {
    /// Plain softmax (DeepFace / DeepID).
    Softmax(SoftmaxConfig) = "softmax",
    /// Contrastive, DeepID2's verification signal (Sun 2014).
    Contrastive(ContrastiveConfig) = "contrastive",
    /// DeepID2: softmax + lambda contrastive (Sun 2014).
    DeepId2(DeepId2Config) = "deepid2",
    /// Triplet (FaceNet, Schroff 2015).
    Triplet(TripletConfig) = "triplet",
    /// Center loss (Wen 2016).
    Center(CenterConfig) = "center",
    /// L-Softmax (Liu 2016).
    LSoftmax(LSoftmaxConfig) = "lsoftmax",
    /// A-Softmax / SphereFace (Liu 2017).
    SphereFace(SphereFaceConfig) = "sphereface",
    /// NormFace (Wang 2017).
    NormFace(NormFaceConfig) = "normface",
    /// CosFace / AM-Softmax (Wang 2018).
    CosFace(CosFaceConfig) = "cosface",
    /// ArcFace (Deng 2019).
    ArcFace(ArcFaceConfig) = "arcface",
    /// Combined margin (ArcFace paper, eq. 4).
    Combined(CombinedMarginConfig) = "combined",
    /// AdaCos (Zhang 2019).
    AdaCos(AdaCosConfig) = "adacos",
    /// Sub-center ArcFace (Deng 2020).
    SubCenterArcFace(SubCenterArcFaceConfig) = "subcenter_arcface",
}

impl HeadKind {
    /// Whether the head has class weights and produces logits.
    pub fn is_classifier(self) -> bool {
        HeadConfig::new(self).classifier(2, 1).is_some()
    }

    /// Whether the head holds a `[C, d]`-like tensor (class weights, or centres).
    pub fn has_class_tensor(self) -> bool {
        let config = HeadConfig::new(self);
        config.classifier(2, 1).is_some() || config.centers(2, 1).is_some()
    }
}

impl std::fmt::Display for HeadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl HeadConfig {
    /// The kind's name as configs spell it.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// A head with random parameters (class weights `N(0, 0.01^2)`, centres as
    /// [`CenterLossConfig::init`]) for `classes` classes of `embedding_dim`-wide embeddings.
    pub fn init<B: Backend>(
        &self,
        classes: usize,
        embedding_dim: usize,
        device: &B::Device,
    ) -> Result<Head<B>, HeadError> {
        self.validate(classes, embedding_dim)?;
        let classifier = self
            .classifier(classes, embedding_dim)
            .map(|c| c.init(device));
        let center = self
            .centers(classes, embedding_dim)
            .map(|c| c.init(device))
            .transpose()?;
        Ok(self.assemble(classifier, center, device))
    }

    /// A head built from given tensors: `weight` `[C * K, d]` (`bias` `[C]`) for heads with a
    /// classifier, `weight` as the centres `[C, d]` for center loss; a missing one is an error
    /// naming it (`weight` or `centers`).
    pub fn init_with<B: Backend>(
        &self,
        classes: usize,
        embedding_dim: usize,
        tensors: crate::HeadTensors<B>,
    ) -> Result<Head<B>, HeadError> {
        self.validate(classes, embedding_dim)?;
        let need = |field: &'static str| HeadError::MissingField {
            field,
            kind: self.name(),
        };
        let device = tensors
            .weight
            .as_ref()
            .map(|w| w.device())
            .unwrap_or_default();
        let classifier = match self.classifier(classes, embedding_dim) {
            Some(c) => Some(c.init_with(
                tensors.weight.clone().ok_or_else(|| need("weight"))?,
                tensors.bias.clone(),
            )?),
            None => None,
        };
        let center = match self.centers(classes, embedding_dim) {
            Some(c) => Some(c.init_with(tensors.weight.clone().ok_or_else(|| need("centers"))?)?),
            None => None,
        };
        Ok(self.assemble(classifier, center, &device))
    }

    fn assemble<B: Backend>(
        &self,
        classifier: Option<Classifier<B>>,
        center: Option<crate::loss::CenterLoss<B>>,
        device: &B::Device,
    ) -> Head<B> {
        // the dtype of the parameters the scale multiplies (Burn's initializer takes the
        // device's default one), else the backend's
        let dtype = classifier
            .as_ref()
            .map(|c| crate::ops::param_dtype(&c.weight))
            .or_else(|| center.as_ref().map(|c| crate::ops::param_dtype(&c.centers)))
            .unwrap_or_else(crate::ops::float_dtype::<B>);
        let scale = self.learned_scale().map(|s| {
            burn::module::Param::from_tensor(Tensor::from_data([s as f32], (device, dtype)))
        });
        Head {
            classifier,
            center,
            scale,
            config: self.clone(),
        }
    }
}
