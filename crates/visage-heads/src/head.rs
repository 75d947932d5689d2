//! `Head<B>`: any head of the library as one module (its parts and its configuration), for a
//! training loop that does not know which head it trains.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::check::{check_batch, check_labels};
use crate::classifier::Classifier;
use crate::loss::CenterLoss;
use crate::{HeadConfig, HeadError, HeadKind, HeadOutput};

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

/// Tensors a head can be built from instead of a random initialisation
/// ([`HeadConfig::init_with`]).
#[derive(Debug, Clone)]
pub struct HeadTensors<B: Backend> {
    /// Class weights `[C * K, d]` (`K` sub-centres per class, 1 but for sub-center ArcFace),
    /// or centres `[C, d]` for center loss.
    pub weight: Option<Tensor<B, 2>>,
    /// Class biases `[C]` (softmax, deepid2 with `bias = true`).
    pub bias: Option<Tensor<B, 1>>,
}

/// Any head: the parts its [`HeadConfig`] asks for, and the config, which runs the forward
/// pass. Build it with [`HeadConfig::init`] or [`HeadConfig::init_with`] (a head assembled
/// by hand must hold the parts its config needs).
#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    /// Class weights (classification heads).
    pub classifier: Option<Classifier<B>>,
    /// Class centres (center loss).
    pub center: Option<CenterLoss<B>>,
    /// A trained logit scale `[1]` (NormFace with `learnable_scale`).
    pub scale: Option<Param<Tensor<B, 1>>>,
    /// The head's configuration.
    #[module(skip)]
    pub config: HeadConfig,
}

impl<B: Backend> Head<B> {
    /// The head's kind.
    pub fn kind(&self) -> HeadKind {
        self.config.kind()
    }

    /// The class tensor: the classifier's weights `[C * K, d]`, or the centres `[C, d]`.
    pub fn class_tensor(&self) -> Option<Tensor<B, 2>> {
        match (&self.classifier, &self.center) {
            (Some(c), _) => Some(c.weight.val()),
            (None, Some(c)) => Some(c.centers.val()),
            (None, None) => None,
        }
    }

    /// The number of classes C and embedding width d, for heads with a class tensor.
    pub fn class_dims(&self) -> Option<[usize; 2]> {
        match (&self.classifier, &self.center) {
            (Some(c), _) => Some([c.classes(), c.embedding_dim()]),
            (None, Some(c)) => Some(c.centers.dims()),
            (None, None) => None,
        }
    }

    /// Loss and training logits for a batch (no validation: see [`Head::forward_checked`]).
    /// Uses `state.iteration` for annealing and records the AdaCos scale in `state`. A head
    /// with `chunk_classes` set ([`HeadConfig::chunk_classes`]) returns no logits.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`, logits `[N, C]`
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> HeadOutput<B> {
        self.config.forward(self, x, labels, state)
    }

    /// [`Head::forward`] after checking the batch: non-empty, `embeddings` `[N, d]` with the
    /// head's width, `labels` `[N]` within `[0, C)` (this reads the labels to the host), and
    /// for AdaCos a previous scale `state.adacos_scale` in `(0, MAX_SCALE]` (field `scale`).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`, logits `[N, C]`
    pub fn forward_checked(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &mut HeadState,
    ) -> Result<HeadOutput<B>, HeadError> {
        let dims = self.class_dims();
        check_batch(&x, &labels, dims.map(|[_, d]| d))?;
        self.config.check_state(state)?;
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
        self.config.inference_logits(self, x)
    }

    /// The head after an optimiser step on batch `(x, labels)`: center loss moves its centres
    /// by the alpha rule; every other head is returned unchanged.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`
    pub fn after_step(mut self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Self {
        self.center = self.center.map(|c| c.update(x, labels));
        self
    }
}
