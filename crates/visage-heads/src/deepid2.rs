//! DeepID2 (Sun et al. 2014): identification (softmax) plus lambda times verification
//! (contrastive) on the same features.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::{non_negative_at_most, MAX_MARGIN};
use crate::contrastive::{Contrastive, ContrastiveConfig};
use crate::softmax::{Softmax, SoftmaxConfig};
use crate::{HeadError, HeadOutput};

/// Configuration of [`DeepId2`]: `loss = CE(softmax logits) + lambda * contrastive`.
#[derive(Config, Debug)]
pub struct DeepId2Config {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Weight lambda of the verification signal (about 0.05 in DeepID2), in `[0, 1e4]`
    /// ([`crate::MAX_MARGIN`]).
    #[config(default = 0.05)]
    pub lambda: f64,
    /// Contrastive margin m, in `(0, 1e4]` ([`crate::MAX_MARGIN`]).
    #[config(default = 1.0)]
    pub margin: f64,
    /// L2-normalise features for the verification term.
    #[config(default = false)]
    pub normalize: bool,
    /// Class biases in the softmax.
    #[config(default = false)]
    pub bias: bool,
}

impl DeepId2Config {
    fn parts(&self) -> (SoftmaxConfig, ContrastiveConfig) {
        (
            SoftmaxConfig::new(self.classes, self.embedding_dim).with_bias(self.bias),
            ContrastiveConfig::new()
                .with_margin(self.margin)
                .with_normalize(self.normalize),
        )
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        let (softmax, contrastive) = self.parts();
        softmax.validate()?;
        contrastive.validate()?;
        non_negative_at_most("lambda", self.lambda, MAX_MARGIN).map(|_| ())
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<DeepId2<B>, HeadError> {
        self.validate()?;
        let (softmax, contrastive) = self.parts();
        Ok(DeepId2 {
            softmax: softmax.init(device)?,
            contrastive: contrastive.init()?,
            lambda: self.lambda,
        })
    }

    /// A head with the given class weights `[C, d]` (and bias `[C]`).
    pub fn init_with<B: Backend>(
        &self,
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
    ) -> Result<DeepId2<B>, HeadError> {
        self.validate()?;
        let (softmax, contrastive) = self.parts();
        Ok(DeepId2 {
            softmax: softmax.init_with(weight, bias)?,
            contrastive: contrastive.init()?,
            lambda: self.lambda,
        })
    }
}

/// DeepID2 head.
#[derive(Module, Debug)]
pub struct DeepId2<B: Backend> {
    /// The identification head.
    pub softmax: Softmax<B>,
    /// The verification signal.
    #[module(skip)]
    pub contrastive: Contrastive,
    /// Weight of the verification signal.
    #[module(skip)]
    pub lambda: f64,
}

impl<B: Backend> DeepId2<B> {
    /// Loss and (softmax) logits for a batch.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`
    pub fn forward(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        let identification = self.softmax.forward(x.clone(), labels.clone());
        let verification = self.contrastive.loss(x, labels);
        HeadOutput {
            loss: identification.loss + verification.mul_scalar(self.lambda),
            logits: identification.logits,
        }
    }
}
