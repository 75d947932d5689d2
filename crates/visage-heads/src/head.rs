//! `Head<B>`: any head of the library behind one interface, for a training loop that does
//! not know which head it trains.

use core::marker::PhantomData;

use burn::module::Module;
use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::check::{check_batch, check_labels};
use crate::spec::{HeadConfig, HeadKind};
use crate::{
    AdaCos, ArcFace, CenterLoss, CombinedMargin, Contrastive, CosFace, DeepId2, HeadError,
    HeadOutput, LSoftmax, NormFace, Softmax, SphereFace, Triplet,
};

/// The explicit, serialisable state of a head between steps, so that a step is reproducible
/// and checkpointable: the iteration drives L-Softmax / SphereFace annealing, and dynamic
/// AdaCos keeps the scale of its previous step. The caller advances `iteration` after each
/// optimiser step ([`HeadState::advance`]); [`Head::forward`] records the AdaCos scale it used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadState {
    /// Training iterations done so far.
    pub iteration: u64,
    /// Dynamic AdaCos: the scale used at the previous step (`None` before the first).
    pub adacos_scale: Option<f64>,
}

impl HeadState {
    /// Moves to the next iteration.
    pub fn advance(&mut self) {
        self.iteration += 1;
    }
}

/// A loss without parameters (contrastive or triplet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricLoss {
    /// Contrastive loss.
    Contrastive(Contrastive),
    /// Triplet loss.
    Triplet(Triplet),
}

/// A parameter-free metric loss, wrapped as a module so that it fits in [`Head`].
#[derive(Module, Debug)]
pub struct MetricHead<B: Backend> {
    /// The loss.
    #[module(skip)]
    pub loss: MetricLoss,
    backend: PhantomData<B>,
}

impl<B: Backend> MetricHead<B> {
    /// Wraps a metric loss.
    pub fn new(loss: MetricLoss) -> Self {
        MetricHead {
            loss,
            backend: PhantomData,
        }
    }
}

/// Any head.
#[derive(Module, Debug)]
pub enum Head<B: Backend> {
    /// Softmax.
    Softmax(Softmax<B>),
    /// L-Softmax.
    LSoftmax(LSoftmax<B>),
    /// SphereFace.
    SphereFace(SphereFace<B>),
    /// NormFace.
    NormFace(NormFace<B>),
    /// CosFace.
    CosFace(CosFace<B>),
    /// ArcFace.
    ArcFace(ArcFace<B>),
    /// Combined margin.
    Combined(CombinedMargin<B>),
    /// AdaCos.
    AdaCos(AdaCos<B>),
    /// DeepID2.
    DeepId2(DeepId2<B>),
    /// Center loss.
    Center(CenterLoss<B>),
    /// Contrastive or triplet.
    Metric(MetricHead<B>),
}

/// Tensors a head can be built from instead of a random initialisation.
#[derive(Debug, Clone)]
pub struct HeadTensors<B: Backend> {
    /// Class weights `[C, d]` (or centres `[C, d]` for center loss).
    pub weight: Option<Tensor<B, 2>>,
    /// Class biases `[C]` (softmax, deepid2 with `bias = true`).
    pub bias: Option<Tensor<B, 1>>,
}

impl HeadConfig {
    /// A head with random class weights (`N(0, 0.01^2)`; centres as [`crate::CenterLossConfig`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Head<B>, HeadError> {
        Ok(match self {
            HeadConfig::Softmax(k) => Head::Softmax(k.init(device)?),
            HeadConfig::LSoftmax(k) => Head::LSoftmax(k.init(device)?),
            HeadConfig::SphereFace(k) => Head::SphereFace(k.init(device)?),
            HeadConfig::NormFace(k) => Head::NormFace(k.init(device)?),
            HeadConfig::CosFace(k) => Head::CosFace(k.init(device)?),
            HeadConfig::ArcFace(k) => Head::ArcFace(k.init(device)?),
            HeadConfig::Combined(k) => Head::Combined(k.init(device)?),
            HeadConfig::AdaCos(k) => Head::AdaCos(k.init(device)?),
            HeadConfig::DeepId2(k) => Head::DeepId2(k.init(device)?),
            HeadConfig::Center(k) => Head::Center(k.init(device)?),
            HeadConfig::Contrastive(k) => {
                Head::Metric(MetricHead::new(MetricLoss::Contrastive(k.init()?)))
            }
            HeadConfig::Triplet(k) => Head::Metric(MetricHead::new(MetricLoss::Triplet(k.init()?))),
        })
    }

    /// A head built from given tensors. Heads with a class tensor need `weight` (`centers`
    /// for center loss); a missing one is an error naming it.
    pub fn init_with<B: Backend>(&self, tensors: HeadTensors<B>) -> Result<Head<B>, HeadError> {
        let kind = self.kind();
        let need = |name: &'static str| HeadError::MissingField {
            field: name,
            kind: kind.name(),
        };
        let weight = || tensors.weight.clone().ok_or_else(|| need("weight"));
        Ok(match self {
            HeadConfig::Softmax(k) => Head::Softmax(k.init_with(weight()?, tensors.bias.clone())?),
            HeadConfig::LSoftmax(k) => Head::LSoftmax(k.init_with(weight()?)?),
            HeadConfig::SphereFace(k) => Head::SphereFace(k.init_with(weight()?)?),
            HeadConfig::NormFace(k) => Head::NormFace(k.init_with(weight()?)?),
            HeadConfig::CosFace(k) => Head::CosFace(k.init_with(weight()?)?),
            HeadConfig::ArcFace(k) => Head::ArcFace(k.init_with(weight()?)?),
            HeadConfig::Combined(k) => Head::Combined(k.init_with(weight()?)?),
            HeadConfig::AdaCos(k) => Head::AdaCos(k.init_with(weight()?)?),
            HeadConfig::DeepId2(k) => Head::DeepId2(k.init_with(weight()?, tensors.bias.clone())?),
            HeadConfig::Center(k) => {
                Head::Center(k.init_with(tensors.weight.clone().ok_or_else(|| need("centers"))?)?)
            }
            HeadConfig::Contrastive(_) | HeadConfig::Triplet(_) => {
                self.init(&B::Device::default())?
            }
        })
    }
}

impl<B: Backend> Head<B> {
    /// The head's kind.
    pub fn kind(&self) -> HeadKind {
        match self {
            Head::Softmax(_) => HeadKind::Softmax,
            Head::LSoftmax(_) => HeadKind::Lsoftmax,
            Head::SphereFace(_) => HeadKind::Sphereface,
            Head::NormFace(_) => HeadKind::Normface,
            Head::CosFace(_) => HeadKind::Cosface,
            Head::ArcFace(_) => HeadKind::Arcface,
            Head::Combined(_) => HeadKind::Combined,
            Head::AdaCos(_) => HeadKind::Adacos,
            Head::DeepId2(_) => HeadKind::Deepid2,
            Head::Center(_) => HeadKind::Center,
            Head::Metric(m) => match m.loss {
                MetricLoss::Contrastive(_) => HeadKind::Contrastive,
                MetricLoss::Triplet(_) => HeadKind::Triplet,
            },
        }
    }

    /// The `[C, d]` class tensor (weights, or centres), if the head has one.
    pub fn class_tensor(&self) -> Option<Tensor<B, 2>> {
        match self {
            Head::Softmax(h) => Some(h.weight.val()),
            Head::LSoftmax(h) => Some(h.weight.val()),
            Head::SphereFace(h) => Some(h.weight.val()),
            Head::NormFace(h) => Some(h.weight.val()),
            Head::CosFace(h) => Some(h.weight.val()),
            Head::ArcFace(h) => Some(h.weight.val()),
            Head::Combined(h) => Some(h.weight.val()),
            Head::AdaCos(h) => Some(h.weight.val()),
            Head::DeepId2(h) => Some(h.softmax.weight.val()),
            Head::Center(h) => Some(h.centers.val()),
            Head::Metric(_) => None,
        }
    }

    /// The number of classes and embedding width, for heads with a class tensor.
    pub fn class_dims(&self) -> Option<[usize; 2]> {
        self.class_tensor().map(|t| t.dims())
    }

    /// Loss and training logits for a batch (no validation: see [`Head::forward_checked`]).
    /// Uses `state.iteration` for annealing and records the AdaCos scale in `state`.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; logits `[N, C]`
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B> {
        match self {
            Head::Softmax(h) => h.forward(x, labels),
            Head::LSoftmax(h) => h.forward(x, labels, state.iteration),
            Head::SphereFace(h) => h.forward(x, labels, state.iteration),
            Head::NormFace(h) => h.forward(x, labels),
            Head::CosFace(h) => h.forward(x, labels),
            Head::ArcFace(h) => h.forward(x, labels),
            Head::Combined(h) => h.forward(x, labels),
            Head::AdaCos(h) => {
                let (output, scale) = h.forward(x, labels, state.adacos_scale);
                state.adacos_scale = Some(scale);
                output
            }
            Head::DeepId2(h) => h.forward(x, labels),
            Head::Center(h) => h.forward(x, labels),
            Head::Metric(m) => match m.loss {
                MetricLoss::Contrastive(l) => l.forward(x, labels),
                MetricLoss::Triplet(l) => l.forward(x, labels),
            },
        }
    }

    /// [`Head::forward`] after checking the batch: non-empty, `embeddings` `[N, d]` with the
    /// head's width, `labels` `[N]` within `[0, C)` (this reads the labels to the host), and
    /// for AdaCos a previous scale `state.adacos_scale` in `(0, MAX_SCALE]` (field `scale`).
    pub fn forward_checked(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> Result<HeadOutput<B>, HeadError> {
        let dims = self.class_dims();
        check_batch(&x, &labels, dims.map(|[_, d]| d))?;
        if let (Head::AdaCos(_), Some(previous)) = (self, state.adacos_scale) {
            crate::check::scale("scale", previous)?;
        }
        if let Some([classes, _]) = dims {
            check_labels(&labels, classes)?;
        }
        Ok(self.forward(x, labels, state))
    }

    /// Inference logits (no margin, fixed scale), for classification heads.
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    pub fn inference_logits(&self, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        match self {
            Head::Softmax(h) => Some(h.logits(x)),
            Head::LSoftmax(h) => Some(h.inference_logits(x)),
            Head::SphereFace(h) => Some(h.inference_logits(x)),
            Head::NormFace(h) => Some(h.logits(x)),
            Head::CosFace(h) => Some(h.inference_logits(x)),
            Head::ArcFace(h) => Some(h.inference_logits(x)),
            Head::Combined(h) => Some(h.inference_logits(x)),
            Head::AdaCos(h) => Some(h.inference_logits(x)),
            Head::DeepId2(h) => Some(h.softmax.logits(x)),
            Head::Center(_) | Head::Metric(_) => None,
        }
    }

    /// The head after an optimiser step on batch `(x, labels)`: center loss moves its centres
    /// by the alpha rule; every other head is returned unchanged.
    pub fn after_step(self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Self {
        match self {
            Head::Center(h) => Head::Center(h.update(x, labels)),
            other => other,
        }
    }
}
