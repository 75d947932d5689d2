//! The optimisers with PyTorch's semantics, one per parameter group (backbone, head class
//! weights, so each has its own learning rate and decay), and global gradient-norm clipping.
//!
//! Burn's defaults differ from PyTorch's (momentum dampening 0.1, AdamW eps 1e-5 and decay
//! 1e-4): every value is set here explicitly from the config.
//!
//! [`Sgd`] and [`AdamW`] are Burn's optimisers (and Burn's state records) with the update of
//! a parameter fused into one multi-threaded pass on burn-flex (`flex`, feature `fast-cpu`;
//! `VISAGE_FAST_CPU` without `optim` switches it off at run time).

mod adamw;
#[cfg(feature = "fast-cpu")]
mod flex;
mod sgd;

pub use adamw::AdamW;
pub(crate) use sgd::velocity;
pub use sgd::{Sgd, SgdMomentum};

use std::path::Path;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{adaptor::OptimizerAdaptor, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};

use crate::record_file::{decode_record, read_record};
use burn::tensor::{backend::AutodiffBackend, Tensor};

use crate::config::{OptimConfig, OptimKind};
use crate::TrainError;

/// One parameter group's optimiser.
pub enum GroupOptimizer<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// SGD.
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
    /// AdamW.
    AdamW(OptimizerAdaptor<AdamW, M, B>),
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> GroupOptimizer<M, B> {
    /// The optimiser of `config` with weight decay `decay`.
    pub fn new(config: &OptimConfig, decay: f64) -> Self {
        match config.kind {
            OptimKind::Sgd => {
                let momentum = config.momentum.unwrap_or(0.9);
                let momentum = (momentum > 0.0).then_some(SgdMomentum {
                    momentum,
                    dampening: 0.0,
                    nesterov: config.nesterov.unwrap_or(false),
                });
                GroupOptimizer::Sgd(OptimizerAdaptor::from(Sgd::new(momentum, decay)))
            }
            OptimKind::Adamw => {
                let [b1, b2] = config.betas.unwrap_or([0.9, 0.999]);
                let eps = config.eps.unwrap_or(1e-8) as f32;
                let o = AdamW::new([b1 as f32, b2 as f32], eps, decay as f32);
                GroupOptimizer::AdamW(OptimizerAdaptor::from(o))
            }
        }
    }

    /// One step of `module` with `grads` at learning rate `lr`.
    pub fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        match self {
            GroupOptimizer::Sgd(o) => o.step(lr, module, grads),
            GroupOptimizer::AdamW(o) => o.step(lr, module, grads),
        }
    }

    /// The optimiser state (momentum buffers, moments) as a Burn record (bincode, full
    /// precision): the bytes of a `.bin` file that [`GroupOptimizer::load`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        match self {
            GroupOptimizer::Sgd(o) => Recorder::<B>::record(&recorder, o.to_record(), ()),
            GroupOptimizer::AdamW(o) => Recorder::<B>::record(&recorder, o.to_record(), ()),
        }
        .expect("an optimiser record encodes")
    }

    /// Loads the optimiser state from the bytes [`GroupOptimizer::to_bytes`] wrote; an error
    /// says what does not decode.
    pub fn load_bytes(self, bytes: &[u8], device: &B::Device) -> Result<Self, String> {
        Ok(match self {
            GroupOptimizer::Sgd(o) => {
                GroupOptimizer::Sgd(o.load_record(decode_record::<B, _>(bytes, device)?))
            }
            GroupOptimizer::AdamW(o) => {
                GroupOptimizer::AdamW(o.load_record(decode_record::<B, _>(bytes, device)?))
            }
        })
    }

    /// Loads the optimiser state written from [`GroupOptimizer::to_bytes`] to `path`.
    pub fn load(self, path: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let path = path.with_extension("bin");
        Ok(match self {
            GroupOptimizer::Sgd(o) => {
                GroupOptimizer::Sgd(o.load_record(read_record::<B, _>(&path, device)?))
            }
            GroupOptimizer::AdamW(o) => {
                GroupOptimizer::AdamW(o.load_record(read_record::<B, _>(&path, device)?))
            }
        })
    }
}

/// Sums the squares of the gradients of a module's parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s: f64 = g
                .square()
                .sum()
                .into_data()
                .convert::<f64>()
                .into_vec::<f64>()
                .map(|v| v[0])
                .unwrap_or(0.0);
            self.total += s;
        }
    }
}

/// Multiplies the gradients of a module's parameters by a factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The sum of the squares of `grads`' gradients of `module`'s parameters.
pub fn squared_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut n = SquaredNorm { grads, total: 0.0 };
    module.visit(&mut n);
    n.total
}

/// Multiplies `grads`' gradients of `module`'s parameters by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    module.visit(&mut Scale { grads, factor });
}

/// The factor `clip_grad_norm_` multiplies every gradient by at global norm `norm`:
/// `max_norm / (norm + 1e-6)` past `max_norm` (PyTorch's formula), else none.
pub fn clip_factor(norm: f64, max_norm: f64) -> Option<f64> {
    (norm > max_norm).then(|| max_norm / (norm + 1e-6))
}

/// The global L2 norm of the gradients of several parameter groups.
pub fn global_grad_norm<B: AutodiffBackend, M1: AutodiffModule<B>, M2: AutodiffModule<B>>(
    a: (&M1, &GradientsParams),
    b: (&M2, &GradientsParams),
) -> f64 {
    (squared_grad_norm::<B, M1>(a.0, a.1) + squared_grad_norm::<B, M2>(b.0, b.1)).sqrt()
}

/// `clip_grad_norm_` over both groups: when the global norm exceeds `max_norm`, every
/// gradient is multiplied by `max_norm / (norm + 1e-6)` (PyTorch's formula). Returns the norm.
pub fn clip_global_norm<B: AutodiffBackend, M1: AutodiffModule<B>, M2: AutodiffModule<B>>(
    a: (&M1, &mut GradientsParams),
    b: (&M2, &mut GradientsParams),
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm::<B, M1, M2>((a.0, &*a.1), (b.0, &*b.1));
    if let Some(factor) = clip_factor(norm, max_norm) {
        scale_grads::<B, M1>(a.0, a.1, factor);
        scale_grads::<B, M2>(b.0, b.1, factor);
    }
    norm
}
