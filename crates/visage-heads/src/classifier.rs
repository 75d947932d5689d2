//! The classifier: the class-weight matrix every classification head holds, and the two
//! things computed from it, raw logits `x W^T + b` (the Euclidean family: Softmax, DeepID2,
//! L-Softmax) and cosines `cos theta_j` (the normalised family: SphereFace .. AdaCos).
//!
//! Margins ([`crate::margin`]) act on the target entry of what the classifier produces, and
//! the loss ([`crate::loss`]) on the resulting logits; the classifier knows neither. A chunked
//! or sharded classifier (a block of classes at a time, or one shard per device) computes the
//! same [`Classifier::cosines`] on a row range of `weight`, gathers the target cosine for the
//! margin, and hands its blocks of logits to the loss.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{backend::Backend, Tensor};

use crate::ops::{cosine_matrix, l2_norm};
use crate::HeadError;

/// Standard deviation of the normal initialisation of class weights (InsightFace's
/// `torch.normal(0, 0.01, (C, d))`).
pub const CLASS_WEIGHT_INIT_STD: f64 = 0.01;

/// Configuration of a [`Classifier`]: `C x K` weight rows of width `d`, row `c * K + k` is
/// sub-centre `k` of class `c` (InsightFace's sub-center layout: the `[N, C * K]` cosines
/// reshape to `[N, C, K]` without a copy, and `K = 1` is the plain `[C, d]`, row = class).
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    /// Number of classes C.
    pub classes: usize,
    /// Embedding width d.
    pub embedding_dim: usize,
    /// Sub-centres per class K (1: one weight row per class; sub-center ArcFace: 3).
    #[config(default = 1)]
    pub sub_centers: usize,
    /// Whether each class has a bias `b_j` in the raw logits (initialised to zero).
    #[config(default = false)]
    pub bias: bool,
}

impl ClassifierConfig {
    /// Rows of the weight matrix, `C * K`.
    pub fn rows(&self) -> usize {
        self.classes * self.sub_centers
    }

    /// Checks the sizes: at least `min_classes` classes, `d >= 1`, `K >= 1`.
    pub fn validate(&self, min_classes: usize) -> Result<(), HeadError> {
        check_dims(self.classes, self.embedding_dim, min_classes)?;
        if self.sub_centers == 0 {
            return Err(HeadError::InvalidField {
                field: "k",
                value: "0".into(),
                expected: "at least 1 sub-centre per class".into(),
            });
        }
        Ok(())
    }

    /// A classifier with weights drawn from `N(0, 0.01^2)` (and a zero bias).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Classifier<B> {
        let weight = Initializer::Normal {
            mean: 0.0,
            std: CLASS_WEIGHT_INIT_STD,
        }
        .init([self.rows(), self.embedding_dim], device);
        // the weights' dtype (the device's default, which Burn's initializer takes), read
        // without drawing them
        let dtype = crate::ops::param_dtype(&weight);
        let bias = self
            .bias
            .then(|| Param::from_tensor(Tensor::zeros([self.classes], (device, dtype))));
        Classifier {
            weight,
            bias,
            sub_centers: self.sub_centers,
        }
    }

    /// A classifier with the given weights `[C * K, d]` and bias `[C]` (zeros when `None` and
    /// the config has a bias; an error naming `bias` when given without one).
    pub fn init_with<B: Backend>(
        &self,
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
    ) -> Result<Classifier<B>, HeadError> {
        let device = weight.device();
        let weight = param_of_shape(
            weight,
            "weight",
            [self.rows(), self.embedding_dim],
            if self.sub_centers == 1 {
                "(classes x embedding width, row = class)".to_string()
            } else {
                format!(
                    "(classes * k x embedding width, row = class * {} + sub-centre)",
                    self.sub_centers
                )
            },
        )?;
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
            (true, None) => Some(Param::from_tensor(Tensor::zeros(
                [self.classes],
                (&device, crate::ops::param_dtype(&weight)),
            ))),
        };
        Ok(Classifier {
            weight,
            bias,
            sub_centers: self.sub_centers,
        })
    }
}

/// Class weights (and optional biases), and the logits or cosines they give.
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    /// Weights `[C * K, d]`, row `c * K + k` = sub-centre `k` of class `c` (`K = 1`: row = class).
    pub weight: Param<Tensor<B, 2>>,
    /// Optional class biases `[C]` (raw logits only).
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Sub-centres per class K.
    #[module(skip)]
    pub sub_centers: usize,
}

impl<B: Backend> Classifier<B> {
    /// Number of classes C.
    pub fn classes(&self) -> usize {
        self.weight.dims()[0] / self.sub_centers.max(1)
    }

    /// Embedding width d.
    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Raw logits `x W^T (+ b)` (one row per class: `K = 1`).
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

    /// Cosines of every embedding with every weight row, `normalize(x) normalize(W)^T`
    /// (a zero row has cosine 0 with everything).
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C * K]`
    pub fn row_cosines(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        cosine_matrix(x, self.weight.val())
    }

    /// Cosine per class: `cos theta_j`, or for `K > 1` sub-centres the best of the class's
    /// `K` (`max_k cos theta_{j,k}`, Deng et al. 2020); the gradient reaches the best
    /// sub-centre only.
    ///
    /// # Shapes
    /// - `x`: `[N, d]` -> `[N, C]`
    pub fn cosines(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let cos = self.row_cosines(x);
        best_sub_center(cos, self.sub_centers)
    }

    /// Row-wise L2 norms of the weights as a row `[1, C]` (`K = 1`), for L-Softmax.
    ///
    /// # Shapes
    /// - `-> [1, C]`
    pub fn weight_norms(&self) -> Tensor<B, 2> {
        let rows = self.weight.dims()[0];
        l2_norm(self.weight.val()).reshape([1, rows])
    }
}

/// The best of each class's `K` consecutive columns: `[N, C * K]` -> `[N, C]` (identity for
/// `K = 1`). Columns follow the row layout `c * K + k`.
///
/// # Shapes
/// - `cos`: `[N, C * K]` -> `[N, C]`
pub fn best_sub_center<B: Backend>(cos: Tensor<B, 2>, sub_centers: usize) -> Tensor<B, 2> {
    if sub_centers <= 1 {
        return cos;
    }
    let [n, rows] = cos.dims();
    let classes = rows / sub_centers;
    cos.reshape([n, classes, sub_centers])
        .max_dim(2)
        .reshape([n, classes])
}

/// Wraps `tensor` as a parameter after checking its shape is `shape` (an error naming
/// `name` otherwise; `what` says what the rows and columns are).
pub(crate) fn param_of_shape<B: Backend>(
    tensor: Tensor<B, 2>,
    name: &'static str,
    shape: [usize; 2],
    what: String,
) -> Result<Param<Tensor<B, 2>>, HeadError> {
    let actual = tensor.dims();
    if actual != shape {
        return Err(HeadError::Shape {
            tensor: name,
            actual: actual.to_vec(),
            expected: format!("[{}, {}] {what}", shape[0], shape[1]),
        });
    }
    Ok(Param::from_tensor(tensor))
}

/// Checks a head's class count and embedding width.
pub(crate) fn check_dims(classes: usize, dim: usize, min_classes: usize) -> Result<(), HeadError> {
    if classes < min_classes {
        return Err(HeadError::InvalidField {
            field: "classes",
            value: classes.to_string(),
            expected: format!("at least {min_classes}"),
        });
    }
    if dim == 0 {
        return Err(HeadError::InvalidField {
            field: "embedding_dim",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    Ok(())
}
