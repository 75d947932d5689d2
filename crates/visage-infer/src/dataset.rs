//! Verification sets to evaluate on: a `.bin` pack, an LFW-layout folder, or synthetic
//! held-out faces, with the description a report records.

use std::path::{Path, PathBuf};

use visage_data::{BinPack, ImageSample, Lfw, SynthConfig, VerificationSet};

use crate::error::{InferError, Result};

/// Synthetic held-out verification pairs (10 folds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticPairs {
    /// Image side; `None`: the backbone's input size (which must then be square).
    pub size: Option<usize>,
    /// Seed of the faces.
    pub seed: u64,
    /// Held-out identities.
    pub identities: usize,
    /// Images per identity.
    pub images_per_identity: usize,
    /// Genuine (and as many impostor) pairs per fold.
    pub pairs_per_fold: usize,
    /// Seed of the pair draw.
    pub pair_seed: u64,
}

impl Default for SyntheticPairs {
    /// 100 identities x 10 images, 30 + 30 pairs per fold, face seed 0, pair seed 7.
    fn default() -> Self {
        SyntheticPairs {
            size: None,
            seed: 0,
            identities: 100,
            images_per_identity: 10,
            pairs_per_fold: 30,
            pair_seed: 7,
        }
    }
}

/// Where the pairs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    /// A `.bin` verification pack, or an LFW-layout folder with `pairs.txt`.
    Path(PathBuf),
    /// Synthetic held-out faces.
    Synthetic(SyntheticPairs),
}

impl DatasetSpec {
    /// `path`, or the synthetic pairs when `path` is the word `synthetic` and no such file
    /// exists.
    pub fn from_path(path: &Path, synthetic: SyntheticPairs) -> DatasetSpec {
        if path.as_os_str() == "synthetic" && !path.exists() {
            DatasetSpec::Synthetic(synthetic)
        } else {
            DatasetSpec::Path(path.to_path_buf())
        }
    }

    /// A short name for titles: the file or folder name, or `synthetic`.
    pub fn name(&self) -> String {
        match self {
            DatasetSpec::Path(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            DatasetSpec::Synthetic(_) => "synthetic".into(),
        }
    }

    /// The path, or `synthetic`, for messages.
    pub fn display(&self) -> String {
        match self {
            DatasetSpec::Path(p) => p.display().to_string(),
            DatasetSpec::Synthetic(_) => "synthetic".into(),
        }
    }
}

/// The dataset description written into a report.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DatasetInfo {
    /// A `.bin` pack.
    Bin {
        /// The file.
        path: String,
        /// Its size in bytes.
        file_size: u64,
        /// Its SHA-256, hex.
        sha256: String,
    },
    /// An LFW-layout folder.
    Lfw {
        /// The folder given.
        path: String,
        /// The images' root.
        images_root: String,
        /// The pair list.
        pairs_file: String,
    },
    /// Synthetic held-out pairs.
    Synthetic {
        /// Image side.
        size: usize,
        /// Face seed.
        seed: u64,
        /// Nuisance strength.
        difficulty: f32,
        /// Identities.
        identities: usize,
        /// Images per identity.
        images_per_identity: usize,
        /// Folds.
        folds: usize,
        /// Genuine (and impostor) pairs per fold.
        pairs_per_fold: usize,
        /// Pair seed.
        pair_seed: u64,
    },
}

impl DatasetInfo {
    /// One sentence for a summary.
    pub fn describe(&self) -> String {
        match self {
            DatasetInfo::Bin {
                path,
                file_size,
                sha256,
            } => format!("`.bin` pack `{path}` ({file_size} bytes, sha256 `{sha256}`)"),
            DatasetInfo::Lfw {
                images_root,
                pairs_file,
                ..
            } => format!("LFW layout: images `{images_root}`, pairs `{pairs_file}`"),
            DatasetInfo::Synthetic {
                size,
                seed,
                difficulty,
                identities,
                images_per_identity,
                folds,
                pairs_per_fold,
                pair_seed,
            } => format!(
                "synthetic held-out faces: {size}x{size}, seed {seed}, difficulty {difficulty}, \
                 {identities} identities x {images_per_identity} images, {folds} folds x \
                 {pairs_per_fold} genuine + {pairs_per_fold} impostor pairs, pair seed {pair_seed}"
            ),
        }
    }
}

/// Opens and decodes the pairs of `spec` for a backbone of input size `hw` (the synthetic
/// faces' default side), and checks them: two images per pair, at least one pair, every
/// image of size `hw`.
///
/// # Shapes
/// - returns `2N` images of `[H, W, 3]` (pair `i` is images `2i`, `2i + 1`) and `N` flags
///
/// # Errors
/// A missing path, a malformed pack or folder (naming the file and record), no pairs, or an
/// image of another size ([`InferError::ImageSize`] naming the dataset and the image).
pub fn open_dataset(spec: &DatasetSpec, hw: [usize; 2]) -> Result<(VerificationSet, DatasetInfo)> {
    let (set, info) = match spec {
        DatasetSpec::Synthetic(s) => open_synthetic(s, hw)?,
        DatasetSpec::Path(path) if path.is_dir() => {
            let lfw = Lfw::open(path)?;
            let set = lfw.decode()?;
            let info = DatasetInfo::Lfw {
                path: path.display().to_string(),
                images_root: lfw.images_root.display().to_string(),
                pairs_file: lfw.pairs_file.display().to_string(),
            };
            (set, info)
        }
        DatasetSpec::Path(path) if !path.exists() => {
            return Err(InferError::File {
                path: path.clone(),
                message: "no such file or folder (expected a .bin pack, an LFW folder with \
                          pairs.txt, or `synthetic`)"
                    .into(),
            })
        }
        DatasetSpec::Path(path) => {
            let pack = BinPack::open(path)?;
            let set = pack.decode()?;
            let info = DatasetInfo::Bin {
                path: path.display().to_string(),
                file_size: pack.file_size,
                sha256: pack.sha256.clone(),
            };
            (set, info)
        }
    };
    let name = spec.display();
    if set.samples.len() != 2 * set.issame.len() {
        return Err(InferError::Invalid(format!(
            "{name}: {} images for {} pairs (expected 2 per pair)",
            set.samples.len(),
            set.issame.len()
        )));
    }
    if set.is_empty() {
        return Err(InferError::Invalid(format!("{name}: no pairs")));
    }
    check_sizes(&set.samples, hw, &name)?;
    Ok((set, info))
}

fn open_synthetic(s: &SyntheticPairs, hw: [usize; 2]) -> Result<(VerificationSet, DatasetInfo)> {
    let size = match s.size {
        Some(size) => size,
        None if hw[0] == hw[1] => hw[0],
        None => {
            return Err(InferError::Invalid(format!(
                "synthetic dataset: the backbone input is {}x{} (HxW) but synthetic faces are \
                 square: set the synthetic size (--synthetic-size) and a square input size",
                hw[0], hw[1]
            )))
        }
    };
    let config = SynthConfig {
        size,
        seed: s.seed,
        difficulty: 1.0,
    };
    let (set, _) = visage_data::held_out_verification(
        config,
        s.identities,
        s.images_per_identity,
        10,
        s.pairs_per_fold,
        s.pair_seed,
    )?;
    let info = DatasetInfo::Synthetic {
        size,
        seed: config.seed,
        difficulty: config.difficulty,
        identities: s.identities,
        images_per_identity: s.images_per_identity,
        folds: 10,
        pairs_per_fold: s.pairs_per_fold,
        pair_seed: s.pair_seed,
    };
    Ok((set, info))
}

/// Every image must have the backbone's input size.
fn check_sizes(samples: &[ImageSample], hw: [usize; 2], name: &str) -> Result<()> {
    if let Some((i, s)) = samples
        .iter()
        .enumerate()
        .find(|(_, s)| [s.height, s.width] != hw)
    {
        return Err(InferError::ImageSize {
            source_name: name.to_string(),
            image: format!("{i} (pair {}, image {})", i / 2, i % 2),
            got: [s.height, s.width],
            expected: hw,
            hint: "use a dataset of the right size or set the input size (--input-size)",
        });
    }
    Ok(())
}
