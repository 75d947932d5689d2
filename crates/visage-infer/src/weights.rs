//! Weights files: which format a file is, and what a state dict says about its backbone.

use std::path::{Path, PathBuf};

use visage_backbones::{BackboneKind, ReadOptions, StateDict};

use crate::error::{InferError, Result};

/// The formats a backbone's weights are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum WeightsFormat {
    /// An InsightFace-style state dict: PyTorch `.pth` (`torch.save`) or `.safetensors`.
    StateDict,
    /// A Burn record (`BinFileRecorder`, full precision) as `visage train` writes
    /// `RUN/backbone.bin`.
    BurnRecord,
}

impl WeightsFormat {
    /// The format of the file at `path`, from its extension: `.bin` is a Burn record,
    /// anything else a state dict (`.pth`, `.pt`, `.safetensors`; the reader tells them apart
    /// by content).
    pub fn of(path: &Path) -> WeightsFormat {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
        {
            WeightsFormat::BurnRecord
        } else {
            WeightsFormat::StateDict
        }
    }

    /// How the report describes the format.
    pub fn describe(self) -> &'static str {
        match self {
            WeightsFormat::StateDict => "PyTorch/safetensors state dict",
            WeightsFormat::BurnRecord => "Burn record (BinFileRecorder, full precision)",
        }
    }
}

/// An opened weights file.
#[derive(Debug, Clone)]
pub enum Weights {
    /// A state dict with InsightFace keys, read whole.
    StateDict(StateDict),
    /// A Burn record, read when the backbone is built (it needs the backend).
    Record(PathBuf),
}

impl Weights {
    /// Opens the weights at `path` ([`WeightsFormat::of`]); a state dict is read now (NaN or
    /// infinite values are errors naming the tensor unless `allow_non_finite`).
    ///
    /// # Errors
    /// [`InferError::File`] when `path` is not a regular file; the reader's error naming the
    /// tensor or offset for a malformed state dict.
    pub fn open(path: &Path, allow_non_finite: bool) -> Result<Weights> {
        if !path.exists() {
            return Err(InferError::File {
                path: path.to_path_buf(),
                message: "no such weights file".into(),
            });
        }
        Ok(match WeightsFormat::of(path) {
            WeightsFormat::BurnRecord => {
                if !path.is_file() {
                    return Err(InferError::File {
                        path: path.to_path_buf(),
                        message: "not a regular file (folders, named pipes and devices are not \
                                  read)"
                            .into(),
                    });
                }
                Weights::Record(path.to_path_buf())
            }
            WeightsFormat::StateDict => Weights::StateDict(StateDict::read_with(
                path,
                ReadOptions { allow_non_finite },
            )?),
        })
    }

    /// The file's format.
    pub fn format(&self) -> WeightsFormat {
        match self {
            Weights::StateDict(_) => WeightsFormat::StateDict,
            Weights::Record(_) => WeightsFormat::BurnRecord,
        }
    }
}

/// The embedding size a state dict stores, read from the shape of the architecture's last
/// layer (`features.weight` of IResNets, `features.layers.3.weight` of MobileFaceNets,
/// `fc.bias` of sphere nets and LeNets++); `None` when the key is absent.
pub fn embedding_dim_of(kind: BackboneKind, state: &StateDict) -> Option<usize> {
    let key = match kind {
        BackboneKind::IResNet(_) => "features.weight",
        BackboneKind::MobileFaceNet => "features.layers.3.weight",
        BackboneKind::SphereNet(_) | BackboneKind::LeNetPP => "fc.bias",
    };
    state.tensors.get(key).map(|t| t.shape.num_elements())
}

/// The input channels of a LeNets++ state dict, from its first convolution's weight
/// `[32, C, 5, 5]`; `None` when absent.
pub fn lenet_in_channels_of(state: &StateDict) -> Option<usize> {
    state
        .tensors
        .get("convs.0.conv.weight")
        .map(|t| t.shape.num_elements() / (32 * 5 * 5))
        .filter(|&c| c > 0)
}
