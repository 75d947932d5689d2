//! Run-time choice among the Burn backends compiled into this binary.
//!
//! Every command that computes takes `--backend`; the cargo features `ndarray`, `flex`,
//! `wgpu` and `cuda` decide which backends exist. A job is written once, generic over
//! `B: AutodiffBackend`, and [`dispatch`] monomorphises it for the backend asked for.
//! Inference-only jobs use `B::InnerBackend` (or `module.valid()`).
//!
//! ```
//! use burn::tensor::{backend::AutodiffBackend, Int, Tensor};
//! use visage_parity::backend::{dispatch, BackendJob, BackendKind};
//!
//! /// The sum of 1..=n, computed on a backend.
//! struct Sum(usize);
//!
//! impl BackendJob for Sum {
//!     type Output = f64;
//!     fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<f64> {
//!         let t = Tensor::<B, 1, Int>::arange(1..self.0 as i64 + 1, &device).float();
//!         Ok(visage_io::read_back_scalar(t.sum())?)
//!     }
//! }
//!
//! let kind: BackendKind = "flex".parse()?;
//! assert_eq!(dispatch(kind, Sum(4))?, 10.0);
//! # Ok::<(), anyhow::Error>(())
//! ```

use burn::tensor::backend::AutodiffBackend;

/// A backend that `--backend` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

    /// Every backend, compiled in or not.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Ndarray,
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Cuda,
    ];

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

impl std::str::FromStr for BackendKind {
    type Err = DispatchError;

    /// A backend by the name [`BackendKind::name`] gives (case-insensitive).
    fn from_str(s: &str) -> Result<Self, DispatchError> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DispatchError::UnknownBackend(s.to_string()))
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`dispatch`] did not run a job, or how the job failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The backend's cargo feature is off in this build.
    #[error(
        "this `visage` was built without the `{0}` backend: rebuild with `--features {0}` \
         (e.g. `cargo xtask train --backend {0}`)"
    )]
    NotCompiled(BackendKind),
    /// A name that is not a backend.
    #[error("unknown backend `{0}` (one of ndarray, flex, wgpu, cuda)")]
    UnknownBackend(String),
    /// The job ran and returned an error.
    #[error(transparent)]
    Job(#[from] anyhow::Error),
}

/// A computation written once for every backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` (autodiff-enabled) and its default device.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Runs `job` on the backend `kind` and its default device, or explains which cargo feature
/// is missing ([`DispatchError::NotCompiled`]).
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, DispatchError> {
    if !kind.compiled() {
        return Err(DispatchError::NotCompiled(kind));
    }
    let output: anyhow::Result<J::Output> = match kind {
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
    };
    Ok(output?)
}
