//! The optimisers' parameter update on burn-flex (the CPU backend): one pass over the
//! parameter, its gradient and its state, in place, spread over rayon's threads.
//!
//! Burn's optimisers run each update as five to twelve element-wise tensor ops (every one a
//! pass over the parameter's size, on the calling thread, most allocating a new buffer). A
//! training step of a small network spends about a sixth of its wall time there with the
//! other threads idle (sphere4, flex, 2 threads; see docs/benchmarks.md). The fused update
//! computes the same f32 expressions in the same order, so it gives the same values.

use std::any::TypeId;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;
use visage_backbones::ops::{downcast, fast_cpu_enabled};

/// Elements one rayon task updates; a parameter of at most this many is updated on the
/// calling thread (a bias is not worth a hand-off).
pub(super) const PER_TASK: usize = 1 << 15;

/// Whether the fused update applies: `B` is burn-flex, every tensor is f32 and the
/// `optim` kernel is on (`VISAGE_FAST_CPU`).
pub(super) fn applies<B: Backend, const D: usize>(tensors: &[&Tensor<B, D>]) -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
        && tensors.iter().all(|t| t.dtype() == DType::F32)
        && fast_cpu_enabled("optim")
}

/// A tensor [`applies`] accepted, as a contiguous f32 buffer it owns alone: no copy when it
/// already is one (a parameter, gradient or state between steps), else a copy.
pub(super) fn owned<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    let t: Tensor<Flex, D> = downcast(t).unwrap_or_else(|_| unreachable!("checked B == Flex"));
    FlexTensor::from_data(t.into_primitive().tensor().into_data())
}

/// `t` back as a `Tensor<B, D>` (`B` is Flex, checked by [`applies`]).
pub(super) fn tensor<B: Backend, const D: usize>(t: FlexTensor) -> Tensor<B, D> {
    let t = Tensor::<Flex, D>::from_primitive(TensorPrimitive::Float(t));
    downcast(t).unwrap_or_else(|_| unreachable!("checked B == Flex"))
}

/// A zeroed f32 tensor of `like`'s shape (a state's first step).
pub(super) fn zeros_like(like: &FlexTensor) -> FlexTensor {
    FlexTensor::zeros(like.layout().shape().clone(), DType::F32)
}

/// One task's chunks of the parameter, the gradient and the state buffers.
type Task<'a, const S: usize> = (&'a mut [f32], &'a [f32], [&'a mut [f32]; S]);

/// Runs `f` over matching chunks of the parameter `p` (written), the gradient `g` and the
/// state buffers `s` (written), on rayon's threads when the parameter is large.
pub(super) fn update<const S: usize>(
    p: &mut [f32],
    g: &[f32],
    s: [&mut [f32]; S],
    f: impl Fn(&mut [f32], &[f32], [&mut [f32]; S]) + Sync,
) {
    let n = p.len();
    debug_assert!(g.len() == n && s.iter().all(|x| x.len() == n));
    if n <= PER_TASK {
        f(p, g, s);
        return;
    }
    // Split every buffer at the same task boundaries.
    let mut tasks: Vec<Task<'_, S>> = Vec::with_capacity(n / PER_TASK + 1);
    let (mut p, mut g, mut s) = (p, g, s);
    while !p.is_empty() {
        let k = PER_TASK.min(p.len());
        let (ph, pt) = p.split_at_mut(k);
        let (gh, gt) = g.split_at(k);
        let mut heads: [&mut [f32]; S] = std::array::from_fn(|_| <&mut [f32]>::default());
        let mut tails: [&mut [f32]; S] = std::array::from_fn(|_| <&mut [f32]>::default());
        for (i, x) in s.into_iter().enumerate() {
            let (h, t) = x.split_at_mut(k);
            heads[i] = h;
            tails[i] = t;
        }
        tasks.push((ph, gh, heads));
        (p, g, s) = (pt, gt, tails);
    }
    tasks.into_par_iter().for_each(|(p, g, s)| f(p, g, s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_visits_every_element_once_with_matching_chunks() {
        for n in [0, 1, PER_TASK, PER_TASK + 1, 3 * PER_TASK + 17] {
            let mut p: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let g: Vec<f32> = (0..n).map(|i| 2.0 * i as f32).collect();
            let mut s: Vec<f32> = vec![0.0; n];
            update(&mut p, &g, [&mut s], |p, g, [s]| {
                for ((p, g), s) in p.iter_mut().zip(g).zip(s.iter_mut()) {
                    // Chunks line up: g = 2 p at every element.
                    assert_eq!(*g, 2.0 * *p);
                    *p += 1.0;
                    *s += 1.0;
                }
            });
            for i in 0..n {
                assert_eq!(p[i], i as f32 + 1.0);
                assert_eq!(s[i], 1.0);
            }
        }
    }
}
