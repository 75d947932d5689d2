//! Images to embed: a folder of aligned image files, or a safetensors tensor of normalised
//! images.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{InferError, Result};

/// Largest `images` safetensors file read (bytes): 64 GiB.
pub const MAX_IMAGES_TENSOR_BYTES: u64 = 64 << 30;

/// Folders nested deeper than this under an image folder are an error.
pub const MAX_FOLDER_DEPTH: usize = 64;

/// The images to embed.
#[derive(Debug, Clone)]
pub enum ImageInput {
    /// Image files under `root`, decoded batch by batch.
    Folder {
        /// The folder given.
        root: PathBuf,
        /// Every `.jpg`/`.jpeg`/`.png` file under it, sorted by path.
        files: Vec<PathBuf>,
    },
    /// Normalised images already in memory.
    Tensor {
        /// `[n, C, H, W]` values, row-major.
        data: Vec<f32>,
        /// Image count.
        n: usize,
    },
}

impl ImageInput {
    /// Opens `path`: a folder (listed with [`list_images`]) or a safetensors file whose
    /// tensor `images` is f32 `[N, channels, H, W]` (read with [`read_images_tensor`]).
    ///
    /// # Errors
    /// [`InferError::File`] for a missing path, a pipe or device, an empty folder or
    /// tensor, or a tensor of another name, dtype or shape.
    pub fn open(
        path: &Path,
        channels: usize,
        hw: [usize; 2],
        allow_non_finite: bool,
    ) -> Result<ImageInput> {
        if path.is_dir() {
            Ok(ImageInput::Folder {
                files: list_images(path)?,
                root: path.to_path_buf(),
            })
        } else if path.is_file() {
            let (data, n) = read_images_tensor(path, channels, hw, allow_non_finite)?;
            if n == 0 {
                return Err(file(path, "`images` holds no image"));
            }
            Ok(ImageInput::Tensor { data, n })
        } else if path.exists() {
            Err(file(
                path,
                "not a folder or a regular file (named pipes and devices are not read)",
            ))
        } else {
            Err(file(path, "no such folder or file"))
        }
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        match self {
            ImageInput::Folder { files, .. } => files.len(),
            ImageInput::Tensor { n, .. } => *n,
        }
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The image files relative to the folder (the order of the embeddings); `None` for a
    /// tensor.
    pub fn relative_paths(&self) -> Option<Vec<String>> {
        match self {
            ImageInput::Folder { root, files } => Some(
                files
                    .iter()
                    .map(|p| {
                        p.strip_prefix(root)
                            .unwrap_or(p)
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect(),
            ),
            ImageInput::Tensor { .. } => None,
        }
    }
}

fn file(path: &Path, message: impl Into<String>) -> InferError {
    InferError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Every `.jpg`/`.jpeg`/`.png` regular file under `root`, recursively, sorted by path. Each
/// folder is entered once by its canonical path (a symlink loop ends), pipes and devices are
/// skipped, and nesting is bounded by [`MAX_FOLDER_DEPTH`].
///
/// # Errors
/// [`InferError::File`] for an unreadable or too deep folder, or no image at all.
pub fn list_images(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(
        dir: &Path,
        out: &mut Vec<PathBuf>,
        seen: &mut HashSet<PathBuf>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_FOLDER_DEPTH {
            return Err(file(
                dir,
                format!("folders nested more than {MAX_FOLDER_DEPTH} deep"),
            ));
        }
        let unreadable = |e: std::io::Error| file(dir, format!("cannot read folder: {e}"));
        let canonical = std::fs::canonicalize(dir).map_err(unreadable)?;
        if !seen.insert(canonical) {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            if path.is_dir() {
                walk(&path, out, seen, depth + 1)?;
            } else if path.is_file()
                && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, &mut files, &mut HashSet::new(), 0)?;
    files.sort();
    if files.is_empty() {
        return Err(file(root, "no .jpg/.jpeg/.png images under it"));
    }
    Ok(files)
}

/// Reads and decodes the image file at `path` (under the decoder limits of
/// [`visage_data::sample`]) into the normalised input of a model of `channels` input
/// channels ([`visage_data::channels`]: RGB, or BT.601 luma for 1); the image must already
/// have the input size `hw`.
///
/// # Shapes
/// - returns `channels * H * W` values, CHW
///
/// # Errors
/// [`InferError::Data`] naming the file when it cannot be read or decoded;
/// [`InferError::ImageSize`] when it is not `hw`.
pub fn read_image_input(path: &Path, channels: usize, hw: [usize; 2]) -> Result<Vec<f32>> {
    let sample = visage_data::sample::read_image(path, 0)?;
    if [sample.height, sample.width] != hw {
        return Err(InferError::ImageSize {
            source_name: path.display().to_string(),
            image: "file".into(),
            got: [sample.height, sample.width],
            expected: hw,
            hint: "align/resize the faces first (e.g. `visage align`) or set the input size \
                   (--input-size)",
        });
    }
    Ok(visage_data::to_chw(&sample, channels)?)
}

/// Reads the tensor `images` (f32 `[N, channels, H, W]`, already normalised) of the
/// safetensors file at `path`; NaN or infinite values are errors naming the image unless
/// `allow_non_finite`.
///
/// # Shapes
/// - returns `N * channels * H * W` values and `N`
///
/// # Errors
/// [`InferError::File`] naming the file and tensor: not a regular file, not safetensors,
/// no `images`, another dtype or shape, a non-finite value.
pub fn read_images_tensor(
    path: &Path,
    channels: usize,
    hw: [usize; 2],
    allow_non_finite: bool,
) -> Result<(Vec<f32>, usize)> {
    use safetensors::{Dtype, SafeTensors};
    let bytes = visage_data::read::read_regular(path, MAX_IMAGES_TENSOR_BYTES)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| file(path, format!("not a safetensors file ({e})")))?;
    let view = st.tensor("images").map_err(|_| {
        file(
            path,
            format!("no tensor `images` (it holds: {:?})", st.names()),
        )
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(file(
            path,
            format!("`images` is {:?}, expected F32", view.dtype()),
        ));
    }
    let shape = view.shape().to_vec();
    if shape.len() != 4 || shape[1] != channels || shape[2] != hw[0] || shape[3] != hw[1] {
        return Err(file(
            path,
            format!(
                "`images` has shape {shape:?}, expected [N, {channels}, {}, {}]",
                hw[0], hw[1]
            ),
        ));
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if !allow_non_finite {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            let per = (channels * hw[0] * hw[1]).max(1);
            return Err(file(
                path,
                format!(
                    "tensor `images` holds a non-finite value ({}) at flat index {i} (image {}); \
                     allow non-finite values (--allow-non-finite) to embed it anyway",
                    data[i],
                    i / per
                ),
            ));
        }
    }
    Ok((data, shape[0]))
}
