//! AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019), as
//! `torch.optim.AdamW` without AMSGrad: Burn's [`burn::optim::AdamW`] with a fused update on
//! burn-flex.
//!
//! Per element, at step `t` (1 on the first), with gradient `g`, parameter `p`, moments
//! `m`, `v`, learning rate `lr` and decay `wd`:
//! `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2` (from zero),
//! `p <- p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
//! The state is Burn's [`AdamWState`], so records of Burn's optimiser load here and the
//! other way round.

use burn::optim::{AdamWConfig, AdamWState, LearningRate, SimpleOptimizer};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

#[cfg(feature = "fast-cpu")]
use super::flex;
#[cfg(feature = "fast-cpu")]
use burn::optim::AdaptiveMomentumState;

/// AdamW (see the module docs); on every backend but burn-flex it is Burn's optimiser.
// The scalars are the fused update's (feature `fast-cpu`).
#[cfg_attr(not(feature = "fast-cpu"), allow(dead_code))]
#[derive(Clone)]
pub struct AdamW {
    burn: burn::optim::AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl AdamW {
    /// AdamW with moment decays `betas`, `epsilon` added to the root of the second moment,
    /// and decoupled weight decay `weight_decay` (f32, as Burn keeps them).
    pub fn new(betas: [f32; 2], epsilon: f32, weight_decay: f32) -> Self {
        let burn = AdamWConfig::new()
            .with_beta_1(betas[0])
            .with_beta_2(betas[1])
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        AdamW {
            burn,
            beta_1: betas[0],
            beta_2: betas[1],
            epsilon,
            weight_decay,
        }
    }
}

impl<B: Backend> SimpleOptimizer<B> for AdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        #[cfg(feature = "fast-cpu")]
        if flex::applies(&[&tensor, &grad])
            && tensor.dims() == grad.dims()
            && state.as_ref().is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none()
                    && flex::applies(&[&m.moment_1, &m.moment_2])
                    && m.moment_1.dims() == tensor.dims()
                    && m.moment_2.dims() == tensor.dims()
            })
        {
            return self.step_flex(lr, tensor, grad, state);
        }
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <burn::optim::AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(feature = "fast-cpu")]
impl AdamW {
    fn step_flex<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamWState<B, D>>,
    ) -> (Tensor<B, D>, Option<AdamWState<B, D>>) {
        let mut p = flex::owned(tensor);
        let g = flex::owned(grad);
        let (time, mut m1, mut m2, first) = match state {
            Some(s) => {
                let m = s.momentum;
                (
                    m.time + 1,
                    flex::owned(m.moment_1),
                    flex::owned(m.moment_2),
                    false,
                )
            }
            None => (1, flex::zeros_like(&p), flex::zeros_like(&p), true),
        };
        let t = time as i32;
        // Burn's scalars: f32 moments, the decay factor from f64.
        let k = AdamWKernel {
            b1: self.beta_1,
            b2: self.beta_2,
            f1: 1.0 - self.beta_1,
            f2: 1.0 - self.beta_2,
            c1: 1f32 - self.beta_1.powi(t),
            c2: 1f32 - self.beta_2.powi(t),
            eps: self.epsilon,
            lr: lr as f32,
            decay: {
                let rate = lr * self.weight_decay as f64;
                (rate != 0.0).then_some((1.0 - rate) as f32)
            },
            first,
        };
        flex::update(
            p.storage_mut::<f32>(),
            g.storage::<f32>(),
            [m1.storage_mut::<f32>(), m2.storage_mut::<f32>()],
            |p, g, [m1, m2]| k.run(p, g, m1, m2),
        );
        let momentum = AdaptiveMomentumState::new(time, flex::tensor(m1), flex::tensor(m2));
        (flex::tensor(p), Some(AdamWState::new(momentum)))
    }
}

/// The per-element AdamW update in f32, in Burn's order of operations.
#[cfg(feature = "fast-cpu")]
#[derive(Clone, Copy)]
struct AdamWKernel {
    b1: f32,
    b2: f32,
    /// `1 - b1`, `1 - b2`.
    f1: f32,
    f2: f32,
    /// The bias corrections `1 - b1^t`, `1 - b2^t`.
    c1: f32,
    c2: f32,
    eps: f32,
    lr: f32,
    /// `1 - lr wd`, when the decay is not zero.
    decay: Option<f32>,
    /// The moments start from this step's gradient.
    first: bool,
}

#[cfg(feature = "fast-cpu")]
impl AdamWKernel {
    #[inline]
    fn run(&self, p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]) {
        let k = *self;
        for (((p, &g), m1), m2) in p.iter_mut().zip(g).zip(m1.iter_mut()).zip(m2.iter_mut()) {
            let g2 = g * g;
            if k.first {
                *m1 = g * k.f1;
                *m2 = g2 * k.f2;
            } else {
                *m1 = *m1 * k.b1 + g * k.f1;
                *m2 = *m2 * k.b2 + g2 * k.f2;
            }
            let delta = (*m1 / k.c1) / ((*m2 / k.c2).sqrt() + k.eps);
            let decayed = match k.decay {
                Some(d) => *p * d,
                None => *p,
            };
            *p = decayed - delta * k.lr;
        }
    }
}
