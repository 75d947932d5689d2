//! SGD with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`:
//! Burn's [`burn::optim::Sgd`] with a fused update on burn-flex.
//!
//! Per element, with gradient `g`, parameter `p`, velocity `v`, learning rate `lr`:
//! `g <- g + wd p`; `v <- g` on the first step, else `v <- m v + (1 - d) g`;
//! `g <- g + m v` (Nesterov) or `g <- v`; `p <- p - lr g`. The state is Burn's
//! [`SgdState`], so records written by Burn's optimiser load here and the other way round.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::{MomentumConfig, MomentumState};
use burn::optim::{LearningRate, SgdConfig, SgdState, SimpleOptimizer};
use burn::record::{FullPrecisionSettings, Record};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

#[cfg(feature = "fast-cpu")]
use super::flex;

/// Momentum settings of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdMomentum {
    /// Momentum factor `m` (PyTorch's `momentum`).
    pub momentum: f64,
    /// Dampening `d` of the gradient added to the velocity (PyTorch's default 0).
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// SGD (see the module docs); on every backend but burn-flex it is Burn's optimiser.
// The scalars are the fused update's (feature `fast-cpu`).
#[cfg_attr(not(feature = "fast-cpu"), allow(dead_code))]
#[derive(Clone)]
pub struct Sgd<B: Backend> {
    burn: burn::optim::Sgd<B>,
    momentum: Option<SgdMomentum>,
    weight_decay: Option<f32>,
}

impl<B: Backend> Sgd<B> {
    /// SGD with `momentum` (none: plain SGD) and L2 weight decay `weight_decay` added to the
    /// gradient (0: none).
    pub fn new(momentum: Option<SgdMomentum>, weight_decay: f64) -> Self {
        let mut c = SgdConfig::new();
        if let Some(m) = momentum {
            c = c.with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(m.momentum)
                    .with_dampening(m.dampening)
                    .with_nesterov(m.nesterov),
            ));
        }
        // Burn keeps the penalty as an f32, so the fused update does too.
        let weight_decay = (weight_decay > 0.0).then_some(weight_decay as f32);
        if let Some(wd) = weight_decay {
            c = c.with_weight_decay(Some(WeightDecayConfig::new(wd)));
        }
        Sgd {
            burn: c.build(),
            momentum,
            weight_decay,
        }
    }
}

/// The velocity of a momentum state (the field is private to burn-optim; its record item is
/// not). No copy on burn-flex when the state holds the only reference.
pub(crate) fn velocity<B: Backend, const D: usize>(
    m: MomentumState<B, D>,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_item(m.into_item::<FullPrecisionSettings>().velocity, device)
}

impl<B: Backend> SimpleOptimizer<B> for Sgd<B> {
    type State<const D: usize> = SgdState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        #[cfg(feature = "fast-cpu")]
        if flex::applies(&[&tensor, &grad]) && tensor.dims() == grad.dims() {
            return self.step_flex(lr, tensor, grad, state);
        }
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <burn::optim::Sgd<B> as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(feature = "fast-cpu")]
impl<B: Backend> Sgd<B> {
    fn step_flex<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<SgdState<B, D>>,
    ) -> (Tensor<B, D>, Option<SgdState<B, D>>) {
        let device = tensor.device();
        let dims = tensor.dims();
        let mut p = flex::owned(tensor);
        let g = flex::owned(grad);
        let k = SgdKernel {
            lr: lr as f32,
            weight_decay: self.weight_decay,
            momentum: self
                .momentum
                .map(|m| (m.momentum as f32, (1.0 - m.dampening) as f32, m.nesterov)),
        };
        let velocity = match self.momentum {
            None => {
                flex::update(
                    p.storage_mut::<f32>(),
                    g.storage::<f32>(),
                    [],
                    |p, g, []| k.run(p, g, None),
                );
                None
            }
            Some(_) => {
                let old = state.and_then(|s| s.momentum).map(|m| velocity(m, &device));
                let first = old.is_none();
                let mut v = match old {
                    Some(v) if flex::applies(&[&v]) && v.dims() == dims => flex::owned(v),
                    Some(v) => {
                        // A state that does not fit the parameter: Burn's op reports it.
                        return self.burn.step(
                            lr,
                            flex::tensor(p),
                            flex::tensor(g),
                            Some(SgdState::new(Some(MomentumState::new(v)))),
                        );
                    }
                    None => flex::zeros_like(&p),
                };
                flex::update(
                    p.storage_mut::<f32>(),
                    g.storage::<f32>(),
                    [v.storage_mut::<f32>()],
                    |p, g, [v]| k.run(p, g, Some((v, first))),
                );
                Some(MomentumState::new(flex::tensor::<B, D>(v)))
            }
        };
        (flex::tensor(p), Some(SgdState::new(velocity)))
    }
}

/// The per-element SGD update in f32, in Burn's order of operations.
#[cfg(feature = "fast-cpu")]
#[derive(Clone, Copy)]
struct SgdKernel {
    lr: f32,
    weight_decay: Option<f32>,
    /// `(m, 1 - d, nesterov)`.
    momentum: Option<(f32, f32, bool)>,
}

#[cfg(feature = "fast-cpu")]
impl SgdKernel {
    /// Updates `p` (and the velocity `v`, `first`: its first step) with the gradient `g`.
    #[inline]
    fn run(&self, p: &mut [f32], g: &[f32], v: Option<(&mut [f32], bool)>) {
        let lr = self.lr;
        let wd = |p: f32, g: f32| match self.weight_decay {
            Some(wd) => p * wd + g,
            None => g,
        };
        match (v, self.momentum) {
            (Some((v, first)), Some((m, keep, nesterov))) => {
                for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                    let g = wd(*p, g);
                    *v = if first { g } else { g * keep + *v * m };
                    let step = if nesterov { *v * m + g } else { *v };
                    *p -= step * lr;
                }
            }
            _ => {
                for (p, &g) in p.iter_mut().zip(g) {
                    let g = wd(*p, g);
                    *p -= g * lr;
                }
            }
        }
    }
}
