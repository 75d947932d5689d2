//! `inspect`: recognise a dataset path (RecordIO prefix or file, `.bin` pack, LFW directory,
//! image folder, MNIST IDX file, single image) and summarise it, reporting what disagrees
//! (a `property` file against the labels, bytes after the last record, undecodable or
//! mixed-size images) under `problems` instead of passing it.

use std::path::{Path, PathBuf};

use crate::bin_pack::{sha256_file, BinPack};
use crate::error::{DataError, Result};
use crate::image_folder::ImageFolder;
use crate::lfw::Lfw;
use crate::mnist::{
    parse_idx_images, parse_idx_labels, read_maybe_gz, Mnist, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use crate::recordio::{PackLayout, PackPaths, RecordIo};
use crate::sample::{read_image, ImageSample};
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
    /// Whether every image was decoded (`--deep`), or only the first and the last.
    pub deep: bool,
    /// What is wrong with the data, one message each naming the file and record: empty when
    /// the data is consistent as far as it was read.
    pub problems: Vec<String>,
}

/// Options of [`inspect_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectOptions {
    /// Decode every image (slow on big packs) instead of the first and the last only.
    pub deep: bool,
}

/// At most this many undecodable images are listed one by one under `problems`.
const LISTED_FAILURES: usize = 10;

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
            deep: false,
            problems: Vec::new(),
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

/// Inspects `path` (first and last images decoded), recognising the format from its layout
/// and magic bytes; see [`inspect_with`].
pub fn inspect(path: &Path) -> Result<Inspection> {
    inspect_with(path, InspectOptions::default())
}

/// Inspects `path`, recognising the format from its layout and magic bytes. What makes the data
/// unreadable is an error; what is readable but wrong (labels beyond the `property` class
/// count, bytes after the last record, undecodable or mixed-size images) is listed in
/// [`Inspection::problems`].
pub fn inspect_with(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let mut i = inspect_format(path, options)?;
    i.deep = options.deep;
    Ok(i)
}

fn inspect_format(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let s = path.to_string_lossy();
    if s.ends_with(".rec")
        || s.ends_with(".idx")
        || (!path.exists() && PackPaths::resolve(path).rec.is_file())
    {
        return inspect_recordio(path, options);
    }
    if path.is_dir() {
        if path.join("train.rec").is_file() && path.join("train.idx").is_file() {
            return inspect_recordio(&path.join("train"), options);
        }
        let pairs = path.join("pairs.txt");
        if std::fs::metadata(&pairs).is_ok() {
            // A pairs.txt that is a folder or a FIFO is an error, not an identity folder.
            crate::read::regular_file_len(&pairs)?;
            return inspect_lfw(path, options);
        }
        if path.join("..").join("pairs.txt").is_file() {
            if let Ok(i) = inspect_lfw(path, options) {
                return Ok(i);
            }
        }
        return inspect_folder(path, options);
    }
    if std::fs::metadata(path).is_ok() {
        crate::read::regular_file_len(path)?;
    }
    if !path.is_file() {
        return Err(DataError::format(
            path,
            "no such file or directory (nor a RecordIO prefix with .rec/.idx)",
        ));
    }
    let head = {
        use std::io::Read;
        let (mut f, _) = crate::read::open_regular(path, u64::MAX)?;
        let mut b = [0u8; 4];
        let n = f.read(&mut b).map_err(|e| DataError::io(path, e))?;
        b[..n].to_vec()
    };
    if head.first() == Some(&0x80) || s.ends_with(".bin") || s.ends_with(".pkl") {
        return inspect_bin(path, options);
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

/// Decodes images `0..n` with `decode` (all of them when `deep`, else the first and the last),
/// in parallel; lists undecodable images and mixed sizes in `problems` and returns the size of
/// image 0 when it decodes.
fn survey(
    n: usize,
    deep: bool,
    decode: impl Fn(usize) -> Result<ImageSample> + Sync,
    name: impl Fn(usize) -> String,
    problems: &mut Vec<String>,
) -> Option<[usize; 3]> {
    use rayon::prelude::*;
    let indices: Vec<usize> = if deep {
        (0..n).collect()
    } else {
        let mut v = vec![0, n.saturating_sub(1)];
        v.dedup();
        v.retain(|&i| i < n);
        v
    };
    // (index, decoded (height, width) or the error message)
    type Decoded = (usize, std::result::Result<(usize, usize), String>);
    let results: Vec<Decoded> = indices
        .par_iter()
        .map(|&i| {
            (
                i,
                decode(i)
                    .map(|s| (s.height, s.width))
                    .map_err(|e| e.to_string()),
            )
        })
        .collect();
    let mut failures = 0;
    let mut sizes: Vec<((usize, usize), usize, usize)> = Vec::new();
    for (i, r) in &results {
        match r {
            Err(e) => {
                failures += 1;
                if failures <= LISTED_FAILURES {
                    problems.push(format!("cannot decode {}: {e}", name(*i)));
                }
            }
            Ok(hw) => match sizes.iter_mut().find(|s| s.0 == *hw) {
                Some(s) => s.1 += 1,
                None => sizes.push((*hw, 1, *i)),
            },
        }
    }
    if failures > LISTED_FAILURES {
        problems.push(format!(
            "{} more images cannot be decoded ({failures} of {} decoded)",
            failures - LISTED_FAILURES,
            results.len()
        ));
    }
    if sizes.len() > 1 {
        let list: Vec<String> = sizes
            .iter()
            .map(|((h, w), c, first)| format!("{c} of {h}x{w} (first: {})", name(*first)))
            .collect();
        problems.push(format!("mixed image sizes: {}", list.join(", ")));
    }
    results
        .iter()
        .find(|(i, _)| *i == 0)
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|&(h, w)| [h, w, 3])
}

fn inspect_recordio(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let r = RecordIo::open(path)?;
    let mut i = Inspection::new("recordio", &r.paths.rec);
    let labels = r.labels()?;
    i.images = Some(r.len());
    let (lo, hi) = min_max(labels.iter().copied());
    (i.label_min, i.label_max) = (lo, hi);
    let distinct_labels = distinct(labels.iter().copied());
    i.identities = Some(match (r.property, r.layout) {
        (Some(p), _) => p.num_classes,
        (
            None,
            PackLayout::InsightFace {
                first_identity,
                end_identity,
            },
        ) => (end_identity - first_identity) as usize,
        _ => distinct_labels,
    });
    let rec = r.paths.rec.display().to_string();
    let key = |s: usize| format!("record key {} of {rec}", r.image_keys[s]);
    i.image_size = survey(r.len(), options.deep, |s| r.get(s), key, &mut i.problems);
    // The property file against the labels, the header record and the first image.
    let prop = r.paths.property.display().to_string();
    if let Some(p) = r.property {
        if let Some(s) = labels.iter().position(|&l| l >= p.num_classes) {
            i.problems.push(format!(
                "{prop}: says {} classes, but {} has label {} (labels run to {})",
                p.num_classes,
                key(s),
                labels[s],
                hi.unwrap_or(0)
            ));
        } else if hi.map_or(0, |h| h + 1) != p.num_classes {
            i.problems.push(format!(
                "{prop}: says {} classes, but the labels run to {} ({distinct_labels} distinct)",
                p.num_classes,
                hi.map_or("nothing".to_string(), |h| h.to_string())
            ));
        }
        if let PackLayout::InsightFace {
            first_identity,
            end_identity,
        } = r.layout
        {
            let ids = (end_identity - first_identity) as usize;
            if ids != p.num_classes {
                i.problems.push(format!(
                    "{prop}: says {} classes, header record 0 of {rec} declares {ids} identity records",
                    p.num_classes
                ));
            }
        }
        if let Some([h, w, _]) = i.image_size {
            if (p.height, p.width) != (h, w) && (p.height, p.width) != (0, 0) {
                i.problems.push(format!(
                    "{prop}: says images of {}x{}, {} is {h}x{w}",
                    p.height,
                    p.width,
                    key(0)
                ));
            }
        }
    } else if let PackLayout::InsightFace {
        first_identity,
        end_identity,
    } = r.layout
    {
        let ids = (end_identity - first_identity) as usize;
        if let Some(s) = labels.iter().position(|&l| l >= ids) {
            i.problems.push(format!(
                "{}: label {} is outside the {ids} identity records header record 0 declares",
                key(s),
                labels[s]
            ));
        }
    }
    // InsightFace identity records against the image labels.
    if let PackLayout::InsightFace { first_identity, .. } = r.layout {
        for (c, (start, end)) in r.identity_ranges()?.into_iter().enumerate() {
            let id_key = first_identity + c as u64;
            if start > end || end > first_identity || (start == 0 && end > 0) {
                i.problems.push(format!(
                    "identity record key {id_key} of {rec}: image range {start}..{end} is outside the images 1..{first_identity}"
                ));
            } else if let Some(k) = (start..end).find(|&k| labels[k as usize - 1] != c) {
                i.problems.push(format!(
                    "identity record key {id_key} of {rec}: covers record key {k}, whose label is {}, not {c}",
                    labels[k as usize - 1]
                ));
            }
        }
    }
    // Bytes after the last record: a partial record or data the index does not list.
    let (last_key, end) = r.end_of_records()?;
    if end < r.file_len() {
        i.problems.push(format!(
            "{rec}: {} bytes after the end of the last indexed record (key {last_key}, ending at offset {end}): a truncated or unindexed record",
            r.file_len() - end
        ));
    }
    i.hash(&r.paths.rec)?;
    i.details = serde_json::json!({
        "idx": r.paths.idx,
        "layout": match r.layout {
            PackLayout::InsightFace { first_identity, end_identity } => serde_json::json!({"insightface_header0": [first_identity, end_identity]}),
            PackLayout::Plain => serde_json::json!("im2rec (no header record)"),
        },
        "property": r.property.map(|p| [p.num_classes, p.height, p.width]),
        "distinct_labels": distinct_labels,
    });
    Ok(i)
}

fn inspect_bin(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let p = BinPack::open(path)?;
    let mut i = Inspection::new("bin", path);
    i.images = Some(p.images.len());
    i.pairs = Some(p.pairs());
    i.genuine_pairs = Some(p.issame.iter().filter(|&&b| b).count());
    let name = |k: usize| format!("bins[{k}] of {}", path.display());
    i.image_size = survey(
        p.images.len(),
        options.deep,
        |k| crate::sample::decode_image(&p.images[k], 0, path, &format!("bins[{k}]")),
        name,
        &mut i.problems,
    );
    i.sha256 = Some(p.sha256.clone());
    i.file_size = Some(p.file_size);
    Ok(i)
}

fn inspect_lfw(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let l = Lfw::open(path)?;
    let f = ImageFolder::open(&l.images_root)?;
    let mut i = Inspection::new("lfw", path);
    i.images = Some(f.len());
    i.identities = Some(f.num_classes());
    (i.label_min, i.label_max) = min_max(f.items.iter().map(|x| x.1));
    i.pairs = Some(l.pairs.len());
    i.genuine_pairs = Some(l.genuine());
    let refs: Vec<&Path> = l
        .pairs
        .iter()
        .flat_map(|p| [p.a.path.as_path(), p.b.path.as_path()])
        .collect();
    i.image_size = survey(
        refs.len(),
        options.deep,
        |k| read_image(refs[k], 0),
        |k| format!("pair {} image {}", k / 2, k % 2),
        &mut i.problems,
    );
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

fn inspect_folder(path: &Path, options: InspectOptions) -> Result<Inspection> {
    let f = ImageFolder::open(path)?;
    let mut i = Inspection::new("image_folder", path);
    i.images = Some(f.len());
    i.identities = Some(f.num_classes());
    (i.label_min, i.label_max) = min_max(f.items.iter().map(|x| x.1));
    i.image_size = survey(
        f.len(),
        options.deep,
        |k| f.get(k),
        |k| f.items[k].0.display().to_string(),
        &mut i.problems,
    );
    let mut used = vec![false; f.num_classes()];
    for x in &f.items {
        used[x.1] = true;
    }
    let empty = used.iter().filter(|u| !**u).count();
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
