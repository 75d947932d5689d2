//! Image folders (CASIA-WebFace, VGGFace2, custom data): `root/<identity>/<image>.{jpg,png}`.
//! The class index of an identity is the position of its folder among the sorted folder names
//! (byte order of the names, hidden folders skipped); images inside a folder are sorted too.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::sample::{read_image, ImageSample};
use crate::source::SampleSource;

/// True for file names with an image extension this crate decodes (jpg, jpeg, png).
pub fn is_image_file(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Sorted entries of `dir` that are directories (`dirs`) or image files (`!dirs`), hidden
/// names skipped.
pub(crate) fn sorted_entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let is_dir = path.is_dir();
        if (dirs && is_dir) || (!dirs && !is_dir && is_image_file(&path)) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// An image folder dataset.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The root directory.
    pub root: PathBuf,
    /// Identity folder names; index = class label.
    pub classes: Vec<String>,
    /// Every image path with its class label, class-major.
    pub items: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    /// Lists `root`; errors when it holds no identity folder or no image.
    pub fn open(root: &Path) -> Result<Self> {
        let dirs = sorted_entries(root, true)?;
        if dirs.is_empty() {
            return Err(DataError::format(
                root,
                "no identity folder found (expected root/<identity>/<image>.jpg)",
            ));
        }
        let mut classes = Vec::with_capacity(dirs.len());
        let mut items = Vec::new();
        for (label, d) in dirs.iter().enumerate() {
            classes.push(
                d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            for f in sorted_entries(d, false)? {
                items.push((f, label));
            }
        }
        if items.is_empty() {
            return Err(DataError::format(
                root,
                format!(
                    "{} identity folders but no .jpg/.jpeg/.png image",
                    classes.len()
                ),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes,
            items,
        })
    }
}

impl SampleSource for ImageFolder {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn label(&self, index: usize) -> Result<usize> {
        self.items.get(index).map(|x| x.1).ok_or_else(|| {
            DataError::Invalid(format!(
                "{}: index {index} out of {}",
                self.root.display(),
                self.items.len()
            ))
        })
    }

    fn get(&self, index: usize) -> Result<ImageSample> {
        let label = self.label(index)?;
        read_image(&self.items[index].0, label)
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }
}
