//! `inspect`: recognise a dataset path (RecordIO prefix or file, `.bin` pack, LFW directory,
//! image folder, MNIST IDX file, single image) and summarise it.

use std::path::{Path, PathBuf};

use crate::bin_pack::{sha256_file, BinPack};
use crate::error::{DataError, Result};
use crate::image_folder::ImageFolder;
use crate::lfw::Lfw;
use crate::mnist::{
    parse_idx_images, parse_idx_labels, read_maybe_gz, Mnist, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use crate::recordio::{PackLayout, PackPaths, RecordIo};
use crate::sample::read_image;
use crate::source::SampleSource;

/// Summary of a dataset. Fields that do not apply to a format are `None` (JSON `null`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// `recordio`, `bin`, `lfw`, `image_folder`, `mnist_images`, `mnist_labels` or `image`.
    pub format: String,
    /// The path inspected (for RecordIO, the `.rec` file).
    pub path: PathBuf,
    /// Number of images.
    pub images: Option<usize>,
    /// Number of identities (classes).
    pub identities: Option<usize>,
    /// Size of the first image, [height, width, channels].
    pub image_size: Option<[usize; 3]>,
    /// Smallest class label.
    pub label_min: Option<usize>,
    /// Largest class label.
    pub label_max: Option<usize>,
    /// Number of pairs (pair sets).
    pub pairs: Option<usize>,
    /// Number of genuine pairs (pair sets).
    pub genuine_pairs: Option<usize>,
    /// SHA-256 of the file (packs: the `.rec`, the `.bin`, the IDX file).
    pub sha256: Option<String>,
    /// Size of that file in bytes.
    pub file_size: Option<u64>,
    /// Format-specific details (layout, side files).
    pub details: serde_json::Value,
}

impl Inspection {
    fn new(format: &str, path: &Path) -> Self {
        Self {
            format: format.into(),
            path: path.to_path_buf(),
            images: None,
            identities: None,
            image_size: None,
            label_min: None,
            label_max: None,
            pairs: None,
            genuine_pairs: None,
            sha256: None,
            file_size: None,
            details: serde_json::Value::Null,
        }
    }

    fn hash(&mut self, file: &Path) -> Result<()> {
        self.sha256 = Some(sha256_file(file)?);
        self.file_size = Some(
            std::fs::metadata(file)
                .map_err(|e| DataError::io(file, e))?
                .len(),
        );
        Ok(())
    }
}

fn min_max(labels: impl Iterator<Item = usize>) -> (Option<usize>, Option<usize>) {
    labels.fold((None, None), |(lo, hi), l| {
        (
            Some(lo.map_or(l, |m: usize| m.min(l))),
            Some(hi.map_or(l, |m: usize| m.max(l))),
        )
    })
}

fn distinct(labels: impl Iterator<Item = usize>) -> usize {
    let mut v: Vec<usize> = labels.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Inspects `path`, recognising the format from its layout and magic bytes.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let s = path.to_string_lossy();
    if s.ends_with(".rec")
        || s.ends_with(".idx")
        || (!path.exists() && PackPaths::resolve(path).rec.is_file())
    {
        return inspect_recordio(path);
    }
    if path.is_dir() {
        if path.join("train.rec").is_file() && path.join("train.idx").is_file() {
            return inspect_recordio(&path.join("train"));
        }
        if path.join("pairs.txt").is_file() {
            return inspect_lfw(path);
        }
        if path.join("..").join("pairs.txt").is_file() {
            if let Ok(i) = inspect_lfw(path) {
                return Ok(i);
            }
        }
        return inspect_folder(path);
    }
    if !path.is_file() {
        return Err(DataError::format(
            path,
            "no such file or directory (nor a RecordIO prefix with .rec/.idx)",
        ));
    }
    let head = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut b = [0u8; 4];
        let n = f.read(&mut b).map_err(|e| DataError::io(path, e))?;
        b[..n].to_vec()
    };
    if head.first() == Some(&0x80) || s.ends_with(".bin") || s.ends_with(".pkl") {
        return inspect_bin(path);
    }
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0, 0, 8]) {
        return inspect_mnist(path);
    }
    let img = read_image(path, 0)?;
    let mut i = Inspection::new("image", path);
    i.images = Some(1);
    i.image_size = Some([img.height, img.width, 3]);
    Ok(i)
}

fn inspect_recordio(path: &Path) -> Result<Inspection> {
    let r = RecordIo::open(path)?;
    let mut i = Inspection::new("recordio", &r.paths.rec);
    let labels = r.labels()?;
    i.images = Some(r.len());
    let (lo, hi) = min_max(labels.iter().copied());
    (i.label_min, i.label_max) = (lo, hi);
    i.identities = Some(match (r.property, r.layout) {
        (Some(p), _) => p.num_classes,
        (
            None,
            PackLayout::InsightFace {
                first_identity,
                end_identity,
            },
        ) => (end_identity - first_identity) as usize,
        _ => distinct(labels.iter().copied()),
    });
    if !r.is_empty() {
        let s = r.get(0)?;
        i.image_size = Some([s.height, s.width, 3]);
    }
    i.hash(&r.paths.rec)?;
    i.details = serde_json::json!({
        "idx": r.paths.idx,
        "layout": match r.layout {
            PackLayout::InsightFace { first_identity, end_identity } => serde_json::json!({"insightface_header0": [first_identity, end_identity]}),
            PackLayout::Plain => serde_json::json!("im2rec (no header record)"),
        },
        "property": r.property.map(|p| [p.num_classes, p.height, p.width]),
        "distinct_labels": distinct(labels.iter().copied()),
    });
    Ok(i)
}

fn inspect_bin(path: &Path) -> Result<Inspection> {
    let p = BinPack::open(path)?;
    let mut i = Inspection::new("bin", path);
    i.images = Some(p.images.len());
    i.pairs = Some(p.pairs());
    i.genuine_pairs = Some(p.issame.iter().filter(|&&b| b).count());
    if let Some(first) = p.images.first() {
        let s = crate::sample::decode_image(first, 0, path, "bins[0]")?;
        i.image_size = Some([s.height, s.width, 3]);
    }
    i.sha256 = Some(p.sha256.clone());
    i.file_size = Some(p.file_size);
    Ok(i)
}

fn inspect_lfw(path: &Path) -> Result<Inspection> {
    let l = Lfw::open(path)?;
    let f = ImageFolder::open(&l.images_root)?;
    let mut i = Inspection::new("lfw", path);
    i.images = Some(f.len());
    i.identities = Some(f.num_classes());
    (i.label_min, i.label_max) = min_max(f.items.iter().map(|x| x.1));
    i.pairs = Some(l.pairs.len());
    i.genuine_pairs = Some(l.genuine());
    if let Some(p) = l.pairs.first() {
        let s = read_image(&p.a.path, 0)?;
        i.image_size = Some([s.height, s.width, 3]);
    }
    i.details = serde_json::json!({
        "images_root": l.images_root,
        "pairs_file": l.pairs_file,
        "pairs_sha256": sha256_file(&l.pairs_file)?,
        "folds": l.folds,
        "pairs_per_fold_per_class": l.per_fold,
        "identities_in_pairs": l.names().len(),
    });
    Ok(i)
}

fn inspect_folder(path: &Path) -> Result<Inspection> {
    let f = ImageFolder::open(path)?;
    let mut i = Inspection::new("image_folder", path);
    i.images = Some(f.len());
    i.identities = Some(f.num_classes());
    (i.label_min, i.label_max) = min_max(f.items.iter().map(|x| x.1));
    let s = f.get(0)?;
    i.image_size = Some([s.height, s.width, 3]);
    let empty = (0..f.num_classes())
        .filter(|c| !f.items.iter().any(|x| x.1 == *c))
        .count();
    i.details = serde_json::json!({"empty_identity_folders": empty});
    Ok(i)
}

fn inspect_mnist(path: &Path) -> Result<Inspection> {
    let bytes = read_maybe_gz(path)?;
    let magic = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mut i;
    if magic == Some(IDX_LABELS_MAGIC) {
        let labels = parse_idx_labels(&bytes, path)?;
        i = Inspection::new("mnist_labels", path);
        (i.label_min, i.label_max) = min_max(labels.iter().map(|&l| l as usize));
        i.identities = Some(distinct(labels.iter().map(|&l| l as usize)));
        i.details = serde_json::json!({"labels": labels.len()});
    } else if magic == Some(IDX_IMAGES_MAGIC) {
        let (_, count, rows, cols) = parse_idx_images(&bytes, path)?;
        i = Inspection::new("mnist_images", path);
        i.images = Some(count);
        i.image_size = Some([rows, cols, 1]);
        let labels_file = Mnist::labels_path_for(path).filter(|p| p.is_file());
        if let Some(lp) = &labels_file {
            let labels = parse_idx_labels(&read_maybe_gz(lp)?, lp)?;
            if labels.len() != count {
                return Err(DataError::format(
                    lp,
                    format!(
                        "{} labels for {count} images in {}",
                        labels.len(),
                        path.display()
                    ),
                ));
            }
            (i.label_min, i.label_max) = min_max(labels.iter().map(|&l| l as usize));
            i.identities = Some(distinct(labels.iter().map(|&l| l as usize)));
        }
        i.details = serde_json::json!({"labels_file": labels_file});
    } else {
        return Err(DataError::format(
            path,
            format!("unknown IDX magic {:#010x}: expected {IDX_IMAGES_MAGIC:#010x} (images) or {IDX_LABELS_MAGIC:#010x} (labels)", magic.unwrap_or(0)),
        ));
    }
    i.hash(path)?;
    Ok(i)
}
