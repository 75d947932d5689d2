//! Center loss (Wen et al. 2016): pull each feature towards its class centre.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{backend::Backend, IndexingUpdateOp, Int, Tensor};

use crate::check::in_range;
use crate::classifier::{check_dims, param_of_shape};
use crate::{HeadError, HeadOutput};

/// Configuration of [`CenterLoss`]: `L_C = (1/2N) sum_i |x_i - c_{y_i}|^2`, so
/// `dL_C/dx_i = (x_i - c_{y_i}) / N`. The centres are not learned through the gradient: after
/// each step, `delta_c_j = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)` and
/// `c_j <- c_j - alpha delta_c_j` ([`CenterLoss::updated_centers`]). Center loss alone
/// collapses to zero: train it as `classification + lambda L_C` (lambda 0.003 in the paper,
/// 0.008 faces / 0.01 MNIST in the official code). Centres start as Caffe's "xavier" filler
/// does in the official prototxt: uniform in `+-sqrt(3 / d)`.
#[derive(Config, Debug)]
pub struct CenterLossConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Centre learning rate alpha, in `(0, 1]`.
    #[config(default = 0.5)]
    pub alpha: f64,
}

impl CenterLossConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, 1)?;
        in_range(
            "alpha",
            self.alpha,
            f64::MIN_POSITIVE,
            1.0 + f64::EPSILON,
            "a centre learning rate in (0, 1]",
        )?;
        Ok(())
    }

    /// Centres drawn uniformly in `+-sqrt(3 / d)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CenterLoss<B>, HeadError> {
        self.validate()?;
        let bound = (3.0 / self.embedding_dim as f64).sqrt();
        let centers: Param<Tensor<B, 2>> = Initializer::Uniform {
            min: -bound,
            max: bound,
        }
        .init([self.classes, self.embedding_dim], device);
        Ok(CenterLoss {
            centers: centers.set_require_grad(false),
            alpha: self.alpha,
        })
    }

    /// Given centres `[C, d]`.
    pub fn init_with<B: Backend>(&self, centers: Tensor<B, 2>) -> Result<CenterLoss<B>, HeadError> {
        self.validate()?;
        let centers = param_of_shape(
            centers,
            "centers",
            [self.classes, self.embedding_dim],
            "(classes x embedding width, row = class)".into(),
        )?;
        Ok(CenterLoss {
            centers: centers.set_require_grad(false),
            alpha: self.alpha,
        })
    }
}

/// Center loss with its centres (a parameter without gradient: the optimiser leaves it alone).
#[derive(Module, Debug)]
pub struct CenterLoss<B: Backend> {
    /// Class centres `[C, d]`.
    pub centers: Param<Tensor<B, 2>>,
    /// Centre learning rate alpha.
    #[module(skip)]
    pub alpha: f64,
}

impl<B: Backend> CenterLoss<B> {
    /// `L_C = (1/2N) sum_i |x_i - c_{y_i}|^2` (gradient to `x` only).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[1]`
    pub fn loss(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let n = x.dims()[0];
        let c = self.centers.val().detach().select(0, labels);
        (x - c).square().sum().div_scalar(2.0 * n as f64)
    }

    /// The loss as a [`HeadOutput`] (no logits).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]`; loss `[1]`
    pub fn forward(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> HeadOutput<B> {
        HeadOutput {
            loss: self.loss(x, labels),
            logits: None,
        }
    }

    /// The centres after this batch's alpha update (computed without gradient).
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` -> `[C, d]`
    pub fn updated_centers(&self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let centers = self.centers.val().detach();
        let [classes, d] = centers.dims();
        let n = x.dims()[0];
        let device = centers.device();
        let diff = centers.clone().select(0, labels.clone()) - x.detach(); // c_{y_i} - x_i
        let dtype = centers.dtype();
        let sums = Tensor::<B, 2>::zeros([classes, d], (&device, dtype)).select_assign(
            0,
            labels.clone(),
            diff,
            IndexingUpdateOp::Add,
        );
        let counts = Tensor::<B, 1>::zeros([classes], (&device, dtype)).select_assign(
            0,
            labels,
            Tensor::ones([n], (&device, dtype)),
            IndexingUpdateOp::Add,
        );
        let delta = sums / counts.add_scalar(1.0).reshape([classes, 1]);
        centers - delta.mul_scalar(self.alpha)
    }

    /// This module with its centres replaced by the alpha update for the batch.
    pub fn update(self, x: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Self {
        let centers = self.updated_centers(x, labels).detach();
        CenterLoss {
            centers: self.centers.map(|_| centers),
            alpha: self.alpha,
        }
    }
}
