//! `ShardedHead<B>`: one shard of a margin-softmax head, its class range's weights and the
//! exact cross-entropy across shards (see the module documentation for the formula).

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Element, Int, Tensor, TensorData};

use super::{sample_classes, shard_range, Exchange, ReduceOp, ShardError};
use crate::check::check_batch;
use crate::classifier::{best_sub_center, Classifier, ClassifierConfig};
use crate::heads::adacos_fixed_scale;
use crate::margin::{arcface, combined, cosface, large_margin, straight_through};
use crate::ops::{cosine_matrix, l2_norm};
use crate::{Head, HeadConfig, HeadError, HeadState};

/// What a shard's forward pass gives.
#[derive(Debug, Clone)]
pub struct ShardedOutput<B: Backend> {
    /// The loss of the whole batch over all shards' classes (the same value on every shard),
    /// `[1]`. Its gradient is exact for this shard's class weights (and bias); for the
    /// embeddings (and a learned NormFace scale) it is this shard's part: sum it over shards.
    pub loss: Tensor<B, 1>,
    /// This shard's training logits (margin on the target), `[N, C_s]`, one column per class of
    /// [`ShardedOutput::classes`].
    pub logits: Tensor<B, 2>,
    /// The global class id of each logits column (the shard's range, or its sampled classes),
    /// increasing.
    pub classes: Vec<usize>,
    /// Dynamic AdaCos: the scale this step used (the same on every shard), for the caller to
    /// keep as [`HeadState::adacos_scale`] for the next step.
    pub adacos_scale: Option<f64>,
}

/// One shard of a softmax-family head: the class weights of the classes
/// [`ShardedHead::class_range`] of `C` (and their bias, and a replicated learned NormFace
/// scale), and the head's configuration. Supported kinds: softmax, NormFace, CosFace,
/// ArcFace, combined, sub-center ArcFace, SphereFace, L-Softmax, and AdaCos with its fixed
/// scale (`sqrt(2) ln(C - 1)` of the global `C`) or dynamic (its batch statistics reduced
/// across the shards; the scale used is returned in [`ShardedOutput::adacos_scale`]).
///
/// With `sample_rate < 1` each step uses Partial FC v2's sampled classes
/// ([`super::sample_classes`], keyed by `seed`, `HeadState::iteration` and the range); the
/// unsampled rows get no gradient.
#[derive(Module, Debug)]
pub struct ShardedHead<B: Backend> {
    /// This shard's class weights `[C_k * K, d]` (and bias `[C_k]`), rows in class order.
    pub classifier: Classifier<B>,
    /// The learned NormFace scale `[1]`, replicated on every shard.
    pub scale: Option<Param<Tensor<B, 1>>>,
    /// The head's configuration.
    #[module(skip)]
    pub config: HeadConfig,
    /// Number of classes C over all shards.
    #[module(skip)]
    pub classes: usize,
    /// First class of this shard.
    #[module(skip)]
    pub start: usize,
    /// This shard's rank.
    #[module(skip)]
    pub rank: usize,
    /// Number of shards.
    #[module(skip)]
    pub world_size: usize,
    /// Fraction of each shard's classes used per step (Partial FC v2), in `(0, 1]`.
    #[module(skip)]
    pub sample_rate: f64,
    /// Seed of the class sampling.
    #[module(skip)]
    pub seed: u64,
}

/// A copy of `t`'s values as a new tensor without autodiff history (a leaf that a
/// parameter can own; a slice of a parameter is not one, even detached).
fn fresh<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    let device = t.device();
    let dtype = <B::FloatElem as Element>::dtype();
    Tensor::from_data(t.into_data().convert_dtype(dtype), (&device, dtype))
}

/// Checks a head kind can be sharded.
pub(crate) fn check_supported(config: &HeadConfig) -> Result<(), ShardError> {
    let unsupported = |why| ShardError::Unsupported {
        kind: config.name(),
        why,
    };
    match config {
        HeadConfig::Softmax(_)
        | HeadConfig::NormFace(_)
        | HeadConfig::CosFace(_)
        | HeadConfig::ArcFace(_)
        | HeadConfig::Combined(_)
        | HeadConfig::SubCenterArcFace(_)
        | HeadConfig::SphereFace(_)
        | HeadConfig::LSoftmax(_)
        | HeadConfig::AdaCos(_) => Ok(()),
        _ => Err(unsupported(
            "only the softmax-family classification heads have a class-weight matrix to shard",
        )),
    }
}

fn check_layout(classes: usize, world_size: usize, rank: usize) -> Result<(), ShardError> {
    if world_size == 0 {
        return Err(ShardError::Layout {
            field: "world_size",
            value: "0".into(),
            expected: "at least 1 shard".into(),
        });
    }
    if rank >= world_size {
        return Err(ShardError::Layout {
            field: "rank",
            value: rank.to_string(),
            expected: format!("a rank in 0..{world_size}"),
        });
    }
    if classes < world_size {
        return Err(ShardError::Layout {
            field: "classes",
            value: classes.to_string(),
            expected: format!("at least one class per shard ({world_size} shards)"),
        });
    }
    Ok(())
}

impl<B: Backend> ShardedHead<B> {
    /// Shard `rank` of `world_size` of a built head: its class range's rows of the weights
    /// (and bias), copied without gradient history, and the head's learned scale.
    pub fn from_head(head: &Head<B>, world_size: usize, rank: usize) -> Result<Self, ShardError> {
        check_supported(&head.config)?;
        let full = head.classifier.as_ref().ok_or(HeadError::MissingField {
            field: "weight",
            kind: head.config.name(),
        })?;
        let classes = full.classes();
        check_layout(classes, world_size, rank)?;
        let range = shard_range(classes, world_size, rank);
        let k = full.sub_centers.max(1);
        let dim = full.embedding_dim();
        let weight = fresh(
            full.weight
                .val()
                .slice([range.start * k..range.end * k, 0..dim]),
        );
        let bias = full
            .bias
            .as_ref()
            .map(|b| fresh(b.val().slice([range.clone()])));
        let classifier = ClassifierConfig::new(range.len(), dim)
            .with_sub_centers(k)
            .with_bias(full.bias.is_some())
            .init_with(weight, bias)?;
        Ok(ShardedHead {
            classifier,
            scale: head
                .scale
                .as_ref()
                .map(|s| Param::from_tensor(fresh(s.val()))),
            config: head.config.clone(),
            classes,
            start: range.start,
            rank,
            world_size,
            sample_rate: 1.0,
            seed: 0,
        })
    }

    /// Shard `rank` of `world_size` of a new head of `classes` classes: this shard's weights
    /// drawn as [`HeadConfig::init`] draws the full matrix's (so the shards of two world
    /// sizes differ; re-shard a full head with [`ShardedHead::from_head`] for equality).
    pub fn init(
        config: &HeadConfig,
        classes: usize,
        embedding_dim: usize,
        world_size: usize,
        rank: usize,
        device: &B::Device,
    ) -> Result<Self, ShardError> {
        check_supported(config)?;
        config.validate(classes, embedding_dim)?;
        check_layout(classes, world_size, rank)?;
        let range = shard_range(classes, world_size, rank);
        let full = config
            .classifier(classes, embedding_dim)
            .expect("a supported kind has a classifier");
        let classifier = ClassifierConfig::new(range.len(), embedding_dim)
            .with_sub_centers(full.sub_centers)
            .with_bias(full.bias)
            .init(device);
        let scale = config.learned_scale().map(|s| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![s], [1]).convert_dtype(<B::FloatElem as Element>::dtype()),
                (device, <B::FloatElem as Element>::dtype()),
            ))
        });
        Ok(ShardedHead {
            classifier,
            scale,
            config: config.clone(),
            classes,
            start: range.start,
            rank,
            world_size,
            sample_rate: 1.0,
            seed: 0,
        })
    }

    /// The shard with Partial FC v2 sampling: `sample_rate` in `(0, 1]` of its classes per
    /// step (positives always kept), drawn from `seed`.
    pub fn with_sampling(mut self, sample_rate: f64, seed: u64) -> Result<Self, ShardError> {
        if !(sample_rate.is_finite() && sample_rate > 0.0 && sample_rate <= 1.0) {
            return Err(ShardError::Layout {
                field: "sample_rate",
                value: sample_rate.to_string(),
                expected: "a fraction in (0, 1]".into(),
            });
        }
        self.sample_rate = sample_rate;
        self.seed = seed;
        Ok(self)
    }

    /// The global classes this shard owns.
    pub fn class_range(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.classifier.classes()
    }

    /// The loss of the batch `(x, labels)` over every shard's classes, this shard's logits and
    /// their classes. Every shard of the group must call it with the same `x` and `labels`
    /// (the global batch) and `state`; `exchange` joins them (two all-reduces of `[N, *]`).
    ///
    /// Checks the batch (non-empty, `x` `[N, d]` with the head's width, `labels` `[N]` in
    /// `[0, C)`, read to the host) and that `exchange` has this shard's rank and world size.
    ///
    /// # Shapes
    /// - `x`: `[N, d]`, `labels`: `[N]` (global class ids); loss `[1]`, logits `[N, C_s]`
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        state: &HeadState,
        exchange: &impl Exchange<B>,
    ) -> Result<ShardedOutput<B>, ShardError> {
        if exchange.world_size() != self.world_size || exchange.rank() != self.rank {
            return Err(ShardError::Layout {
                field: "rank",
                value: format!("{} of {}", exchange.rank(), exchange.world_size()),
                expected: format!(
                    "the shard's rank {} of {} (the exchange joins another layout)",
                    self.rank, self.world_size
                ),
            });
        }
        let dim = self.classifier.embedding_dim();
        check_batch(&x, &labels, Some(dim))?;
        let n = x.dims()[0];
        let host_labels = labels
            .to_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .map_err(|e| HeadError::Shape {
                tensor: "labels",
                actual: vec![n],
                expected: format!("integer labels ({e:?})"),
            })?;
        for (index, &label) in host_labels.iter().enumerate() {
            if label < 0 || label as u64 >= self.classes as u64 {
                return Err(HeadError::LabelOutOfRange {
                    index,
                    label,
                    classes: self.classes,
                }
                .into());
            }
        }
        let classes = sample_classes(
            &host_labels,
            self.class_range(),
            self.sample_rate,
            self.seed,
            state.iteration,
        );
        let (mut logits, mask) = self.logits(x, labels, &classes, state)?;
        let mut adacos_scale = None;
        if let HeadConfig::AdaCos(c) = &self.config {
            if c.dynamic {
                // `logits` holds the cosines: scale them by this step's adaptive scale.
                let previous = state
                    .adacos_scale
                    .unwrap_or_else(|| adacos_fixed_scale(self.classes));
                let s = dynamic_adacos_scale(logits.clone(), mask.clone(), previous, exchange)?;
                logits = logits.mul_scalar(s);
                adacos_scale = Some(s);
            }
        }
        let loss = exact_cross_entropy(logits.clone(), mask, exchange)?;
        Ok(ShardedOutput {
            loss,
            logits,
            classes,
            adacos_scale,
        })
    }

    /// This shard's training logits for the columns `classes`, and the target mask.
    fn logits(
        &self,
        x: Tensor<B, 2>,
        labels: Tensor<B, 1, Int>,
        classes: &[usize],
        state: &HeadState,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 2>), ShardError> {
        let device = x.device();
        let n = x.dims()[0];
        let cs = classes.len();
        let k = self.classifier.sub_centers.max(1);
        let int = <B::IntElem as Element>::dtype();
        let (weight, bias) = if cs == self.classifier.classes() {
            (
                self.classifier.weight.val(),
                self.classifier.bias.as_ref().map(|b| b.val()),
            )
        } else {
            let rows: Vec<i64> = classes
                .iter()
                .flat_map(|&c| (0..k).map(move |s| ((c - self.start) * k + s) as i64))
                .collect();
            let local: Vec<i64> = classes.iter().map(|&c| (c - self.start) as i64).collect();
            let rows =
                Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [cs * k]), (&device, int));
            let local =
                Tensor::<B, 1, Int>::from_data(TensorData::new(local, [cs]), (&device, int));
            (
                self.classifier.weight.val().select(0, rows),
                self.classifier
                    .bias
                    .as_ref()
                    .map(|b| b.val().select(0, local)),
            )
        };
        let ids: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [cs]), (&device, int));
        let mask = labels
            .reshape([n, 1])
            .expand([n, cs])
            .equal(ids.reshape([1, cs]).expand([n, cs]))
            .float();
        // The target entry of each row (0 for rows whose class is on another shard), and the
        // matrix with it replaced: `m + mask (new - old)`, as `margin::apply_to_target`.
        let target = |m: &Tensor<B, 2>| (m.clone() * mask.clone()).sum_dim(1);
        let replace =
            |m: Tensor<B, 2>, new: Tensor<B, 2>, old: Tensor<B, 2>| m + mask.clone() * (new - old);
        let cosines = || best_sub_center(cosine_matrix(x.clone(), weight.clone()), k);
        let arc = |scale: f64, m: f64, easy: bool, detach: bool| {
            let cos = cosines();
            let t = target(&cos);
            let phi = arcface(t.clone(), m, easy);
            let phi = if detach {
                straight_through(t.clone(), phi)
            } else {
                phi
            };
            replace(cos, phi, t).mul_scalar(scale)
        };
        let logits = match &self.config {
            HeadConfig::Softmax(_) => {
                let z = x.clone().matmul(weight.clone().transpose());
                match bias {
                    Some(b) => z + b.reshape([1, cs]),
                    None => z,
                }
            }
            HeadConfig::NormFace(c) => match &self.scale {
                Some(s) => cosines() * s.val().reshape([1, 1]),
                None => cosines().mul_scalar(c.effective_scale()),
            },
            HeadConfig::CosFace(c) => {
                let cos = cosines();
                let t = target(&cos);
                replace(cos, cosface(t.clone(), c.margin), t).mul_scalar(c.scale)
            }
            HeadConfig::ArcFace(c) => arc(c.scale, c.margin, c.easy_margin, c.detach_margin),
            HeadConfig::SubCenterArcFace(c) => arc(c.scale, c.margin, false, false),
            HeadConfig::Combined(c) => {
                let cos = cosines();
                let t = target(&cos);
                replace(cos, combined(t.clone(), c.m1, c.m2, c.m3), t).mul_scalar(c.scale)
            }
            // Dynamic: the cosines, scaled in `forward` once the scale is known.
            HeadConfig::AdaCos(c) if c.dynamic => cosines(),
            HeadConfig::AdaCos(_) => cosines().mul_scalar(adacos_fixed_scale(self.classes)),
            HeadConfig::SphereFace(c) => {
                let x_norm = l2_norm(x.clone());
                let cos = cosines();
                let plain = cos.clone() * x_norm.clone();
                if c.margin_int == 1 {
                    plain
                } else {
                    let (c_t, plain_t) = (target(&cos), target(&plain));
                    let new = c.annealing().blend(
                        plain_t.clone(),
                        large_margin(c_t, x_norm, c.margin_int),
                        state.iteration,
                    );
                    replace(plain, new, plain_t)
                }
            }
            HeadConfig::LSoftmax(c) => {
                let plain = x.clone().matmul(weight.clone().transpose());
                if c.margin_int == 1 {
                    plain
                } else {
                    let x_norm = l2_norm(x.clone());
                    let w_norm = l2_norm(weight.clone()).reshape([1, cs]).expand([n, cs]);
                    let (c_t, w_t, plain_t) = (target(&cosines()), target(&w_norm), target(&plain));
                    let new = c.annealing().blend(
                        plain_t.clone(),
                        large_margin(c_t, w_t * x_norm, c.margin_int),
                        state.iteration,
                    );
                    replace(plain, new, plain_t)
                }
            }
            _ => {
                check_supported(&self.config)?;
                unreachable!("check_supported rejects every other kind")
            }
        };
        Ok((logits, mask))
    }
}

/// Dynamic AdaCos's scale from every shard's cosines (`cos` `[N, C_s]`, this shard's block,
/// `mask` its target entries) and the previous scale, as
/// [`crate::heads::adacos_dynamic_scale`] computes it on the whole matrix: `B_avg` from a
/// global maximum and a global sum of `exp(s_prev cos)` over the non-target entries of every
/// shard, the median target angle from the N target cosines (each held by one shard, summed
/// into every shard). Every shard gets the same value, held in `[ADACOS_MIN_SCALE,
/// MAX_SCALE]`, the previous one where the update is not a number. With sampling, `B_avg`
/// runs over the sampled classes.
fn dynamic_adacos_scale<B: Backend>(
    cos: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    previous: f64,
    exchange: &impl Exchange<B>,
) -> Result<f64, ShardError> {
    let [n, cs] = cos.dims();
    let cos = cos.detach();
    // Non-target entries only; a shard without columns contributes nothing.
    let z = cos.clone().mul_scalar(previous) - mask.clone().mul_scalar(1e30);
    let local_max = if cs == 0 {
        Tensor::<B, 2>::full([1, 1], -1e30, &cos.device())
    } else {
        z.clone().max().reshape([1, 1])
    };
    let z_max = exchange.all_reduce(local_max, ReduceOp::Max)?;
    let local_sum = if cs == 0 {
        Tensor::<B, 2>::zeros([1, 1], &cos.device())
    } else {
        (z - z_max.clone()).exp().sum().reshape([1, 1])
    };
    let sum = exchange.all_reduce(local_sum, ReduceOp::Sum)?;
    let targets = exchange.all_reduce((cos * mask).sum_dim(1), ReduceOp::Sum)?;
    let host = |t: Tensor<B, 2>| -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .into_vec()
            .unwrap_or_default()
    };
    let (z_max, sum) = (host(z_max)[0], host(sum)[0]);
    let log_b_avg = z_max + sum.ln() - (n as f64).ln();
    let mut angles: Vec<f64> = host(targets)
        .into_iter()
        .map(|c| c.clamp(-1.0, 1.0).acos())
        .collect();
    angles.sort_by(|a, b| a.total_cmp(b));
    let theta_med = angles[(n - 1) / 2];
    let s = log_b_avg / theta_med.min(std::f64::consts::FRAC_PI_4).cos();
    Ok(if s.is_nan() {
        previous
    } else {
        s.clamp(crate::heads::ADACOS_MIN_SCALE, crate::check::MAX_SCALE)
    })
}

/// The cross-entropy of logits spread over the shards, from this shard's block `z` `[N, C_s]`
/// and its target mask (1 at `(i, y_i)` when `y_i` is one of its columns): the value is the
/// global loss, the gradient with respect to `z` the global `(softmax - onehot) / N`.
///
/// # Shapes
/// - `z`, `mask`: `[N, C_s]` -> `[1]`
fn exact_cross_entropy<B: Backend>(
    z: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    exchange: &impl Exchange<B>,
) -> Result<Tensor<B, 1>, ShardError> {
    let n = z.dims()[0];
    let zd = z.clone().detach();
    let max = exchange.all_reduce(zd.clone().max_dim(1), ReduceOp::Max)?;
    let local = Tensor::cat(
        vec![
            (zd.clone() - max.clone()).exp().sum_dim(1),
            (zd.clone() * mask.clone()).sum_dim(1),
        ],
        1,
    );
    let global = exchange.all_reduce(local, ReduceOp::Sum)?;
    let sum = global.clone().slice([0..n, 0..1]);
    let target = global.slice([0..n, 1..2]);
    let lse = max + sum.log();
    let value = (lse.clone() - target).div_scalar(n as f64).sum();
    let grad = ((zd - lse).exp() - mask).div_scalar(n as f64);
    let surrogate = (z * grad).sum();
    Ok(value + surrogate.clone() - surrogate.detach())
}
