//! [`FaceModel`]: a visage backbone and classification head as one burn-train model.

use std::sync::{Arc, Mutex};

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use visage_backbones::Backbone;
use visage_data::{BatchItem, ImageBatch};
use visage_heads::{Head, HeadState};
use visage_train::Trainee;

use crate::output::EmbeddingOutput;
use crate::LearnerError;

/// A backbone and a classification head (softmax, NormFace, CosFace, ArcFace, ...) trained
/// together by burn-train: the training step is `head(backbone(images), labels)`, the head's
/// loss and margin logits; the inference step returns the backbone's embeddings.
///
/// The head's step state ([`HeadState`]: the iteration for annealed margins, dynamic AdaCos's
/// previous scale) lives beside the modules, is read and written by each training step and
/// advanced by each optimiser step, as visage's own loop does. It is shared by the model's
/// clones, so train this model on one device.
#[derive(Module, Debug)]
pub struct FaceModel<B: Backend> {
    /// The backbone: images `[N, C, H, W]` to embeddings `[N, d]`.
    pub backbone: Backbone<B>,
    /// The head: embeddings and labels to a loss.
    pub head: Head<B>,
    /// The head's step state (not a parameter).
    #[module(skip)]
    pub state: Arc<Mutex<HeadState>>,
}

impl<B: Backend> FaceModel<B> {
    /// Puts `backbone` and `head` together. Errors for heads whose update burn-train's single
    /// optimiser step cannot express: center loss (its centres move by the alpha rule, not by
    /// gradients), and metric losses and heads with `chunk_classes` set, which have no class
    /// logits (nothing for the loss metric's classification output).
    pub fn new(backbone: Backbone<B>, head: Head<B>) -> Result<Self, LearnerError> {
        if head.center.is_some() {
            return Err(LearnerError::Unsupported {
                what: format!("head {:?}", head.kind()),
                why: "its class centres move by the alpha rule after each step, not by the \
                      optimiser"
                    .into(),
            });
        }
        if head.classifier.is_none() {
            return Err(LearnerError::Unsupported {
                what: format!("head {:?}", head.kind()),
                why: "it has no class logits for burn-train's classification output".into(),
            });
        }
        if let Some(chunk) = head.config.chunk_classes() {
            return Err(LearnerError::Unsupported {
                what: format!("[head] chunk_classes = {chunk}"),
                why: "the chunked loss holds no [N, C] logits for burn-train's classification \
                      output (remove chunk_classes to train with burn-train)"
                    .into(),
            });
        }
        Ok(Self {
            backbone,
            head,
            state: Arc::new(Mutex::new(HeadState::default())),
        })
    }

    /// The backbone and head of a model built by [`visage_train::init_model`] (the same seeded
    /// initialisation as `visage train`). Errors when it carries an auxiliary center loss.
    pub fn from_trainee(trainee: Trainee<B>) -> Result<Self, LearnerError> {
        if trainee.center.is_some() {
            return Err(LearnerError::Unsupported {
                what: "[head.center]".into(),
                why: "auxiliary centres move by the alpha rule, not by the optimiser".into(),
            });
        }
        Self::new(trainee.backbone, trainee.head)
    }

    /// The head's step state now.
    pub fn head_state(&self) -> HeadState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loss, margin logits and targets of one batch.
    ///
    /// # Shapes
    /// - `batch.images`: `[N, C, H, W]`, `batch.labels`: `[N]`
    /// - returns loss `[1]`, logits `[N, classes]`, targets `[N]`
    pub fn forward_classification(&self, batch: ImageBatch<B>) -> ClassificationOutput<B> {
        let embeddings: Tensor<B, 2> = self.backbone.forward(batch.images);
        let out = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            self.head
                .forward(embeddings.clone(), batch.labels.clone(), &mut state)
        };
        let logits = out
            .logits
            .unwrap_or_else(|| panic!("a classification head returns logits (FaceModel::new)"));
        ClassificationOutput::new(out.loss, logits, batch.labels)
    }

    /// Embeddings of a batch.
    ///
    /// # Shapes
    /// - `images`: `[N, C, H, W]` -> `[N, d]`
    pub fn embed(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.backbone.forward(images)
    }
}

fn unwrap_batch<B: Backend>(item: BatchItem<B>) -> ImageBatch<B> {
    // burn-train's step has no error channel: a file that failed to decode stops the run here
    // with the reader's message (file, record), never as a silently shorter epoch.
    item.unwrap_or_else(|e| panic!("visage data loader: {e}"))
}

/// # Panics
/// On a batch that failed to load (`Err` from the data loader), with the reader's message
/// naming the file and record: burn-train's step has no error channel.
impl<B: AutodiffBackend> TrainStep for FaceModel<B> {
    type Input = BatchItem<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, item: BatchItem<B>) -> TrainOutput<ClassificationOutput<B>> {
        let out = self.forward_classification(unwrap_batch(item));
        TrainOutput::new(self, out.loss.backward(), out)
    }

    fn optimize<BB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        BB: AutodiffBackend,
        O: Optimizer<Self, BB>,
        Self: AutodiffModule<BB>,
    {
        let state = self.state.clone();
        let model = optim.step(lr, self, grads);
        state.lock().unwrap_or_else(|e| e.into_inner()).advance();
        model
    }
}

/// # Panics
/// On a batch that failed to load, as the training step.
impl<B: Backend> InferenceStep for FaceModel<B> {
    type Input = BatchItem<B>;
    type Output = EmbeddingOutput<B>;

    fn step(&self, item: BatchItem<B>) -> EmbeddingOutput<B> {
        EmbeddingOutput {
            embeddings: self.embed(unwrap_batch(item).images),
        }
    }
}
