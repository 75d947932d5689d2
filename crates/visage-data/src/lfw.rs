//! LFW in its original layout: `lfw/<Name>/<Name>_<NNNN>.jpg` and `pairs.txt` (header
//! `folds\tper_fold`, then per fold `per_fold` matched lines `Name\tn1\tn2` and `per_fold`
//! mismatched lines `Name1\tn1\tName2\tn2`, image numbers 1-based). Aligned variants (112x112,
//! 112x96, PNG) keep the layout; the synthetic held-out folders are written in it too.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::pairs::VerificationSet;
use crate::sample::read_image;

/// One image of a pair: identity name and 1-based image number, resolved to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfwImage {
    /// Identity folder name.
    pub name: String,
    /// 1-based image number.
    pub number: usize,
    /// The file found for it.
    pub path: PathBuf,
}

/// A pair of `pairs.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfwPair {
    /// First image.
    pub a: LfwImage,
    /// Second image.
    pub b: LfwImage,
    /// Matched (same identity) pair.
    pub same: bool,
}

/// An LFW-layout pair set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lfw {
    /// Directory holding the identity folders.
    pub images_root: PathBuf,
    /// The pairs file.
    pub pairs_file: PathBuf,
    /// Folds declared by the header.
    pub folds: usize,
    /// Matched (and mismatched) pairs per fold declared by the header.
    pub per_fold: usize,
    /// Pairs in file order.
    pub pairs: Vec<LfwPair>,
}

const EXTENSIONS: [&str; 4] = ["jpg", "png", "jpeg", "JPG"];

fn find_image(root: &Path, name: &str, number: usize) -> Option<PathBuf> {
    EXTENSIONS
        .iter()
        .map(|e| root.join(name).join(format!("{name}_{number:04}.{e}")))
        .find(|p| p.is_file())
}

impl Lfw {
    /// Opens an LFW directory: the pairs file is `dir/pairs.txt` or `dir/../pairs.txt`; the
    /// identity folders are in `dir` or in one of `dir/lfw`, `dir/lfw_funneled`,
    /// `dir/lfw-deepfunneled`. A `pairs.txt` that exists but is not a regular file (a
    /// folder, a FIFO) is an error naming it, not skipped.
    pub fn open(dir: &Path) -> Result<Self> {
        let pairs_file = [dir.join("pairs.txt"), dir.join("..").join("pairs.txt")]
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok())
            .ok_or_else(|| DataError::format(dir, "no pairs.txt in the directory or its parent"))?;
        let text = crate::read::read_regular_text(&pairs_file, crate::read::MAX_TEXT_BYTES)?;
        let first_name = text
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("");
        let images_root = ["", "lfw", "lfw_funneled", "lfw-deepfunneled"]
            .iter()
            .map(|s| {
                if s.is_empty() {
                    dir.to_path_buf()
                } else {
                    dir.join(s)
                }
            })
            .find(|r| r.join(first_name).is_dir())
            .unwrap_or_else(|| dir.to_path_buf());
        Self::open_with(&images_root, &pairs_file)
    }

    /// Reads `pairs_file` (a regular file of at most [`crate::read::MAX_TEXT_BYTES`]) and
    /// resolves every image under `images_root`. The header's pair count is checked (no
    /// overflow) against the lines the file holds before anything is allocated for it.
    pub fn open_with(images_root: &Path, pairs_file: &Path) -> Result<Self> {
        let text = crate::read::read_regular_text(pairs_file, crate::read::MAX_TEXT_BYTES)?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let bad =
            |n: usize, m: String| DataError::format(pairs_file, format!("line {}: {m}", n + 1));
        let (hn, header) = lines
            .next()
            .ok_or_else(|| DataError::format(pairs_file, "empty pairs file"))?;
        let h: Vec<usize> = header
            .split_whitespace()
            .map(|x| {
                x.parse().map_err(|_| {
                    bad(
                        hn,
                        format!("header {header:?}: expected `folds\\tpairs_per_fold` (two non-negative integers)"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let (folds, per_fold) = match h.as_slice() {
            [f, p] => (*f, *p),
            [p] => (1, *p),
            _ => {
                return Err(bad(
                    hn,
                    format!("header {header:?}: expected `folds\\tpairs_per_fold`"),
                ))
            }
        };
        let image = |n: usize, name: &str, num: &str| -> Result<LfwImage> {
            let number: usize = num
                .parse()
                .map_err(|_| bad(n, format!("image number {num:?} is not a positive integer")))?;
            if number == 0 {
                return Err(bad(n, "image numbers are 1-based, found 0".into()));
            }
            let path = find_image(images_root, name, number).ok_or_else(|| {
                bad(
                    n,
                    format!(
                        "image {name}/{name}_{number:04}.(jpg|png|jpeg) not found under {}",
                        images_root.display()
                    ),
                )
            })?;
            Ok(LfwImage {
                name: name.to_string(),
                number,
                path,
            })
        };
        let lines: Vec<(usize, &str)> = lines.collect();
        let declared = match folds.checked_mul(per_fold).and_then(|x| x.checked_mul(2)) {
            Some(d) if d <= lines.len() => d,
            Some(d) => {
                return Err(DataError::format(
                    pairs_file,
                    format!(
                        "header declares {folds} folds x 2 x {per_fold} = {d} pairs, the file lists {}",
                        lines.len()
                    ),
                ))
            }
            None => {
                return Err(bad(
                    hn,
                    format!(
                        "header declares {folds} folds x 2 x {per_fold} pairs, more than a count can hold; the file lists {}",
                        lines.len()
                    ),
                ))
            }
        };
        let mut pairs = Vec::with_capacity(declared);
        for (n, line) in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            let pair = match f.as_slice() {
                [name, i, j] => LfwPair {
                    a: image(n, name, i)?,
                    b: image(n, name, j)?,
                    same: true,
                },
                [n1, i, n2, j] => LfwPair {
                    a: image(n, n1, i)?,
                    b: image(n, n2, j)?,
                    same: false,
                },
                _ => {
                    return Err(bad(
                        n,
                        format!(
                        "expected `Name\\tn1\\tn2` or `Name1\\tn1\\tName2\\tn2`, found {line:?}"
                    ),
                    ))
                }
            };
            pairs.push(pair);
        }
        if pairs.len() != declared {
            return Err(DataError::format(
                pairs_file,
                format!(
                    "header declares {folds} folds x 2 x {per_fold} = {declared} pairs, the file lists {}",
                    pairs.len()
                ),
            ));
        }
        Ok(Self {
            images_root: images_root.to_path_buf(),
            pairs_file: pairs_file.to_path_buf(),
            folds,
            per_fold,
            pairs,
        })
    }

    /// Number of matched pairs.
    pub fn genuine(&self) -> usize {
        self.pairs.iter().filter(|p| p.same).count()
    }

    /// Identity names appearing in the pairs, sorted; a sample's label is its name's position.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .pairs
            .iter()
            .flat_map(|p| [p.a.name.clone(), p.b.name.clone()])
            .collect();
        n.sort();
        n.dedup();
        n
    }

    /// Decodes the images in pair order, in parallel.
    pub fn decode(&self) -> Result<VerificationSet> {
        let names = self.names();
        let label = |n: &str| names.binary_search_by(|x| x.as_str().cmp(n)).unwrap_or(0);
        let refs: Vec<&LfwImage> = self.pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
        let samples = refs
            .par_iter()
            .map(|r| read_image(&r.path, label(&r.name)))
            .collect::<Result<Vec<_>>>()?;
        Ok(VerificationSet {
            samples,
            issame: self.pairs.iter().map(|p| p.same).collect(),
        })
    }
}
