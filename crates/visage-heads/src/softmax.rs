//! Plain softmax classification head: `logits = x W^T (+ b)`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::class_weight::{check_dims, class_weight_from, init_class_weight};
use crate::cross_entropy::cross_entropy;
use crate::{HeadError, HeadOutput};

/// Configuration of [`Softmax`], the fully connected layer plus softmax cross-entropy that
/// DeepFace and DeepID trained with. The bias is off by default: NormFace (Wang et al. 2017)
/// shows it hurts open-set features.
#[derive(Config, Debug)]
pub struct SoftmaxConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Whether each class has a bias `b_j` (initialised to zero).
    #[config(default = false)]
    pub bias: bool,
}

impl SoftmaxConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)
    }

    /// A head with class weights drawn from `N(0, 0.01^2)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Softmax<B>, HeadError> {
        self.validate()?;
        let weight = init_class_weight(self.classes, self.embedding_dim, device);
        let bias = self
            .bias
            .then(|| Param::from_tensor(Tensor::zeros([self.classes], device)));
        Ok(Softmax { weight, bias })
    }

    /// A head with the given class weights `[C, d]` (and bias `[C]` if the config has one;
    /// zeros when `None`).
    pub fn init_with<B: Backend>(
        &self,
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
    ) -> Result<Softmax<B>, HeadError> {
        self.validate()?;
        let device = weight.device();
        let weight = class_weight_from(weight, self.classes, self.embedding_dim)?;
        let bias = match (self.bias, bias) {
            (false, None) => None,
            (false, Some(_)) => {
                return Err(HeadError::InvalidField {
                    field: "bias",
                    value: "false".into(),
                    expected: "true when a bias tensor is given".into(),
                })
            }
            (true, Some(b)) => {
                if b.dims() != [self.classes] {
                    return Err(HeadError::Shape {
                        tensor: "bias",
                        actual: b.dims().to_vec(),
                        expected: format!("[{}]", self.classes),
                    });
                }
                Some(Param::from_tensor(b))
            }
            (true, None) => Some(Param::from_tensor(Tensor::zeros([self.classes], &device))),
        };
        Ok(Softmax { weight, bias })
    }
}

/// Softmax head: `logits_ij = W_j . x_i + b_j`, loss = mean cross-entropy.
#[derive(Module, Debug)]
pub struct Softmax<B: Backend> {
    /// Class weights `[C, d]`, row = class.
    pub weight: Param<Tensor<B, 2>>,
    /// Optional class biases `[C]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Softmax<B> {
    /// The logits (no margin: training and inference are the same).
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let logits = x.matmul(self.weight.val().transpose());
        match &self.bias {
            Some(b) => {
                let c = b.dims()[0];
                logits + b.val().reshape([1, c])
            }
            None => logits,
        }
    }

    /// Loss and logits for a batch.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`
    pub fn forward(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        let logits = self.logits(x);
        HeadOutput {
            loss: cross_entropy(logits.clone(), labels),
            logits: Some(logits),
        }
    }
}
