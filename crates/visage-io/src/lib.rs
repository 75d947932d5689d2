//! visage's file layer, shared by every crate of the workspace so that each helper exists
//! once:
//!
//! - [`fs`]: whole-file writes through a temporary sibling, fsync and rename
//!   ([`write_atomic`]), and bounded reads of regular files only ([`read_regular_file`]);
//! - [`safetensors`]: named host tensors in safetensors files, read with every name, dtype
//!   and shape checked ([`TensorFile`]) and written atomically ([`write_tensors`]);
//! - [`npy`]: NumPy `.npy` arrays, their header checked against the file's size before any
//!   allocation;
//! - [`progress`]: the [`Progress`] trait through which libraries report long work;
//! - [`readback`] (feature `burn`): a Burn tensor read back to the host, one error policy.
//!
//! Errors are [`IoError`], and every one names the file (and the tensor or field) at fault.

pub mod error;
pub mod fs;
pub mod npy;
pub mod progress;
#[cfg(feature = "burn")]
pub mod readback;
pub mod safetensors;

pub use error::IoError;
pub use fs::{
    create_parent_dir, read_regular_file, regular_file_metadata, temporary_sibling, write_atomic,
    write_atomic_by_path, write_atomic_with, ByPathError,
};
pub use npy::{ElementType, RawArray};
pub use progress::{NoProgress, Progress, SharedProgress};
#[cfg(feature = "burn")]
pub use readback::{read_back, read_back_scalar, ReadBackError};
pub use safetensors::{encode_tensors, write_tensors, HostTensor, ShapeSpec, TensorFile};
