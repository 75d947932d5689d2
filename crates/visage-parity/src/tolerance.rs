//! The tolerances of `visage parity`, per backend pair and per quantity, with their reasons.
//!
//! Every tolerance bounds the relative difference of [`super::diff::Diff`] (the largest
//! element difference over the largest reference magnitude). Every backend computes in f32;
//! what differs is how:
//!
//! | backend | why its f32 differs from another CPU's |
//! |---|---|
//! | `ndarray`, `flex` | summation order and blocking of matrix products and convolutions (gemm kernels, im2col vs direct): a few f32 ulps per reduction |
//! | `wgpu` | WGSL shaders: tiled reductions in another order, `acos` accurate to about 1.6e-4 on Mesa's lavapipe (combined margin, psi's interval, AdaCos's median), approximate `exp`/`log` on some drivers |
//! | `cuda` | matrix products staged as TF32 (10-bit mantissa, about 5e-4 relative per product) whenever CubeCL picks a tensor-core kernel: `cubek-matmul` 0.2 stages f32 operands as TF32 on every device that supports it, and Burn 0.21 has no switch to turn it off, so the budget is TF32's |
//!
//! A pair's tolerance is the looser of its two backends' budgets. Quantities after training
//! steps get more room than one forward pass, because N optimiser steps compound each step's
//! rounding (and a step's gradient is a function of the previous step's weights).

use serde::Serialize;

use crate::backend::BackendKind;

/// What is compared, for the purpose of its tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// A head's loss or logits on fixed inputs.
    HeadOutput,
    /// A head's gradients (embeddings, class weights) or updated centres.
    HeadGradient,
    /// The backbone's output embeddings (training or inference mode).
    BackboneOutput,
    /// The backbone's input gradient and parameter gradients.
    BackboneGradient,
    /// The training loss at every step.
    TrainLoss,
    /// Every weight (and running statistic) after the training steps.
    TrainWeights,
}

/// How precise a backend's f32 arithmetic is, for tolerances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Precision {
    /// A CPU backend: IEEE f32, another summation order.
    Cpu,
    /// wgpu shaders (software Vulkan on a CPU, or a GPU driver).
    Shader,
    /// CUDA with TF32 matrix products.
    Tf32,
}

fn precision(kind: BackendKind) -> Precision {
    match kind {
        BackendKind::Ndarray | BackendKind::Flex | BackendKind::Tch => Precision::Cpu,
        BackendKind::Wgpu => Precision::Shader,
        BackendKind::Cuda => Precision::Tf32,
    }
}

/// A tolerance and why it is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Largest relative difference allowed.
    pub max_rel: f64,
    /// The reason, for the report.
    pub reason: &'static str,
}

fn budget(p: Precision, q: Quantity) -> Tolerance {
    use Quantity::*;
    let t = |max_rel, reason| Tolerance { max_rel, reason };
    match (p, q) {
        (Precision::Cpu, HeadOutput | HeadGradient) => t(
            1e-5,
            "f32 on two CPU implementations: reduction order only",
        ),
        (Precision::Cpu, BackboneOutput | BackboneGradient) => t(
            1e-4,
            "f32 on two CPU implementations: convolution and batch-norm reductions in another order",
        ),
        (Precision::Cpu, TrainLoss | TrainWeights) => t(
            1e-4,
            "f32 on two CPU implementations, compounded over the training steps",
        ),
        (Precision::Shader, HeadOutput | HeadGradient) => t(
            5e-4,
            "wgpu shaders: acos to about 1.6e-4 on lavapipe (combined margin, psi, AdaCos median)",
        ),
        (Precision::Shader, BackboneOutput | BackboneGradient) => t(
            1e-3,
            "wgpu shaders: tiled convolution reductions in another order",
        ),
        (Precision::Shader, TrainLoss | TrainWeights) => t(
            1e-3,
            "wgpu shaders, compounded over the training steps",
        ),
        (Precision::Tf32, HeadOutput | HeadGradient) => t(
            5e-3,
            "CUDA: matrix products in TF32 (10-bit mantissa), no switch in Burn 0.21",
        ),
        (Precision::Tf32, BackboneOutput | BackboneGradient) => t(
            2e-2,
            "CUDA: convolutions and matrix products in TF32 through every layer",
        ),
        (Precision::Tf32, TrainLoss | TrainWeights) => t(
            2e-2,
            "CUDA: TF32 products, compounded over the training steps",
        ),
    }
}

/// The tolerance of quantity `q` between backends `a` and `b`: the looser of their budgets.
pub fn tolerance(a: BackendKind, b: BackendKind, q: Quantity) -> Tolerance {
    budget(precision(a).max(precision(b)), q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_takes_the_looser_budget_and_order_does_not_matter() {
        use BackendKind::*;
        for q in [Quantity::HeadOutput, Quantity::TrainWeights] {
            assert_eq!(tolerance(Ndarray, Wgpu, q), tolerance(Wgpu, Ndarray, q));
            assert_eq!(tolerance(Wgpu, Cuda, q), tolerance(Ndarray, Cuda, q));
            assert!(tolerance(Ndarray, Flex, q).max_rel < tolerance(Ndarray, Wgpu, q).max_rel);
            assert!(tolerance(Ndarray, Wgpu, q).max_rel < tolerance(Ndarray, Cuda, q).max_rel);
        }
    }

    #[test]
    fn training_gets_at_least_the_room_of_one_step() {
        use BackendKind::*;
        for other in [Flex, Wgpu, Cuda] {
            let head = tolerance(Ndarray, other, Quantity::HeadOutput).max_rel;
            let train = tolerance(Ndarray, other, Quantity::TrainLoss).max_rel;
            assert!(train >= head, "{other}");
        }
    }
}
