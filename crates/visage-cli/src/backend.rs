//! Run-time choice among the Burn backends compiled into this binary.
//!
//! Every command that computes takes `--backend`; the cargo features `ndarray`, `flex`,
//! `wgpu` and `cuda` decide which backends exist. A job is written once, generic over
//! `B: AutodiffBackend`, and [`dispatch`] monomorphises it for the backend asked for.
//! Inference-only jobs use `B::InnerBackend` (or `module.valid()`).

use anyhow::bail;
use burn::tensor::backend::AutodiffBackend;

/// A backend that `--backend` can name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's ndarray CPU backend.
    Ndarray,
    /// Burn's Flex pure-Rust CPU backend.
    Flex,
    /// wgpu: Vulkan, Metal or DX12 (Mesa lavapipe on a machine without a GPU).
    Wgpu,
    /// CUDA (needs the NVIDIA driver at run time).
    Cuda,
    /// Burn's LibTorch backend on the CPU (feature `tch`, off by default: libtorch at build
    /// and run time).
    Tch,
}

impl BackendKind {
    /// The backend's name as `--backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Tch => "tch",
        }
    }

    /// Whether this binary was built with the backend's cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
            BackendKind::Tch => cfg!(feature = "tch"),
        }
    }

    /// The default: the faster CPU backend when compiled in (flex, then ndarray), else the
    /// first GPU backend compiled in.
    pub fn default_compiled() -> BackendKind {
        [
            BackendKind::Flex,
            BackendKind::Ndarray,
            BackendKind::Wgpu,
            BackendKind::Cuda,
        ]
        .into_iter()
        .find(|k| k.compiled())
        .unwrap_or(BackendKind::Flex)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A computation written once for every backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` (autodiff-enabled) and its default device.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Runs `job` on the backend `kind`, or explains which cargo feature is missing.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> anyhow::Result<J::Output> {
    if !kind.compiled() {
        bail!(
            "this `visage` was built without the `{0}` backend: rebuild with `--features {0}` \
             (e.g. `cargo xtask train --backend {0}`)",
            kind.name()
        );
    }
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => job.run::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(
            burn::backend::ndarray::NdArrayDevice::Cpu,
        ),
        #[cfg(feature = "flex")]
        BackendKind::Flex => {
            job.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default())
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            job.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(Default::default())
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            job.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default())
        }
        #[cfg(feature = "tch")]
        BackendKind::Tch => job.run::<burn::backend::Autodiff<burn::backend::LibTorch<f32>>>(
            burn::backend::libtorch::LibTorchDevice::Cpu,
        ),
        #[allow(unreachable_patterns)]
        _ => unreachable!("checked by BackendKind::compiled"),
    }
}
