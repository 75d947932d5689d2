//! Verification pairs: the LFW-like pairs list of the synthetic held-out split, the
//! `pairs.txt` format it is written in, and [`VerificationSet`], the images of a pair list in
//! pair order with their `issame` flags (what evaluation consumes).

use std::path::Path;

use crate::error::{DataError, Result};
use crate::rng::SplitMix64;
use crate::sample::{write_atomic, ImageSample};

/// Most pairs a drawn list may hold (16 Mi).
pub const MAX_PAIRS: u64 = 1 << 24;

/// One image reference inside a pair list: identity position and 0-based image index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Identity (class) position.
    pub identity: usize,
    /// Image index within the identity, 0-based.
    pub image: usize,
}

/// A verification pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub a: ImageRef,
    /// Second image.
    pub b: ImageRef,
    /// Whether both images show the same identity.
    pub same: bool,
}

/// A pair list in LFW's layout: `folds` folds, each `per_fold` genuine pairs followed by
/// `per_fold` impostor pairs, drawn with `seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairList {
    /// Number of folds.
    pub folds: usize,
    /// Genuine (and impostor) pairs per fold.
    pub per_fold: usize,
    /// The seed the pairs were drawn with.
    pub seed: u64,
    /// Pairs in file order.
    pub pairs: Vec<Pair>,
}

impl PairList {
    /// Draws `folds` x (`per_fold` genuine + `per_fold` impostor) pairs over `identities`
    /// identities of `images_per_identity` images each, deterministically from `seed`.
    /// Genuine pairs use two different images of one identity; impostor pairs two different
    /// identities. No pair is repeated within the list when enough distinct pairs exist.
    /// More than [`MAX_PAIRS`] pairs, or counts whose product overflows, are errors.
    pub fn draw(
        identities: usize,
        images_per_identity: usize,
        folds: usize,
        per_fold: usize,
        seed: u64,
    ) -> Result<Self> {
        if identities < 2 || images_per_identity < 2 {
            return Err(DataError::Invalid(format!(
                "pairs need at least 2 identities of at least 2 images (got {identities} x {images_per_identity})"
            )));
        }
        let total = (folds as u64)
            .checked_mul(per_fold as u64)
            .filter(|&t| t.saturating_mul(2) <= MAX_PAIRS)
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "{folds} folds x 2 x {per_fold} pairs is more than the {MAX_PAIRS} pairs allowed"
                ))
            })?;
        let mut r = SplitMix64::from_parts(&[seed, 0x9A1B5]);
        let mut seen = std::collections::HashSet::new();
        let n = images_per_identity as u64;
        let (ids, n128) = (identities as u128, n as u128);
        let genuine_space = ids.saturating_mul(n128).saturating_mul(n128 - 1) / 2;
        let impostor_space = (ids.saturating_mul(ids - 1) / 2)
            .saturating_mul(n128)
            .saturating_mul(n128);
        let unique = total as u128 <= genuine_space / 2 && total as u128 <= impostor_space / 2;
        let mut pairs = Vec::with_capacity(2 * total as usize);
        for _ in 0..folds {
            for same in [true, false] {
                let mut k = 0;
                while k < per_fold {
                    let p = if same {
                        let id = r.below(identities as u64) as usize;
                        let i = r.below(n) as usize;
                        let j = (i + 1 + r.below(n - 1) as usize) % images_per_identity;
                        Pair {
                            a: ImageRef {
                                identity: id,
                                image: i.min(j),
                            },
                            b: ImageRef {
                                identity: id,
                                image: i.max(j),
                            },
                            same,
                        }
                    } else {
                        let x = r.below(identities as u64) as usize;
                        let y = (x + 1 + r.below(identities as u64 - 1) as usize) % identities;
                        let a = ImageRef {
                            identity: x.min(y),
                            image: r.below(n) as usize,
                        };
                        let b = ImageRef {
                            identity: x.max(y),
                            image: r.below(n) as usize,
                        };
                        Pair { a, b, same }
                    };
                    if unique && !seen.insert((p.a, p.b)) {
                        continue;
                    }
                    pairs.push(p);
                    k += 1;
                }
            }
        }
        Ok(Self {
            folds,
            per_fold,
            seed,
            pairs,
        })
    }

    /// Number of genuine pairs.
    pub fn genuine(&self) -> usize {
        self.pairs.iter().filter(|p| p.same).count()
    }

    /// Formats the list as LFW's `pairs.txt` (header `folds\tper_fold`, 1-based image
    /// numbers), naming identity `i` by `names[i]`.
    pub fn to_lfw_text(&self, names: &[String]) -> Result<String> {
        let name = |i: usize| {
            names.get(i).cloned().ok_or_else(|| {
                DataError::Invalid(format!("pair refers to identity {i} of {}", names.len()))
            })
        };
        let mut s = format!("{}\t{}\n", self.folds, self.per_fold);
        for p in &self.pairs {
            if p.same {
                s += &format!(
                    "{}\t{}\t{}\n",
                    name(p.a.identity)?,
                    p.a.image + 1,
                    p.b.image + 1
                );
            } else {
                s += &format!(
                    "{}\t{}\t{}\t{}\n",
                    name(p.a.identity)?,
                    p.a.image + 1,
                    name(p.b.identity)?,
                    p.b.image + 1
                );
            }
        }
        Ok(s)
    }

    /// Writes [`PairList::to_lfw_text`] to `path` (temp file then rename).
    pub fn write_lfw(&self, path: &Path, names: &[String]) -> Result<()> {
        write_atomic(path, self.to_lfw_text(names)?.as_bytes())
    }
}

/// The images of a pair list in pair order (`samples[2i]`, `samples[2i + 1]` form pair `i`) and
/// whether each pair is genuine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationSet {
    /// 2N images.
    pub samples: Vec<ImageSample>,
    /// N flags.
    pub issame: Vec<bool>,
}

impl VerificationSet {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.issame.len()
    }

    /// True when there is no pair.
    pub fn is_empty(&self) -> bool {
        self.issame.is_empty()
    }

    /// The two images of pair `i` and its flag.
    pub fn pair(&self, i: usize) -> (&ImageSample, &ImageSample, bool) {
        (
            &self.samples[2 * i],
            &self.samples[2 * i + 1],
            self.issame[i],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_is_balanced_valid_and_deterministic() {
        let l = PairList::draw(20, 5, 10, 6, 42).unwrap();
        assert_eq!(l.pairs.len(), 120);
        assert_eq!(l.genuine(), 60);
        for (i, p) in l.pairs.iter().enumerate() {
            // Fold layout: 6 genuine then 6 impostor.
            assert_eq!(p.same, (i % 12) < 6);
            assert!(p.a.identity < 20 && p.b.identity < 20 && p.a.image < 5 && p.b.image < 5);
            if p.same {
                assert_eq!(p.a.identity, p.b.identity);
                assert_ne!(p.a.image, p.b.image);
            } else {
                assert_ne!(p.a.identity, p.b.identity);
            }
        }
        assert_eq!(l, PairList::draw(20, 5, 10, 6, 42).unwrap());
        assert_ne!(l, PairList::draw(20, 5, 10, 6, 43).unwrap());
        let set: std::collections::HashSet<_> = l.pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(set.len(), 120);
    }

    #[test]
    fn lfw_text_layout() {
        let l = PairList {
            folds: 1,
            per_fold: 1,
            seed: 0,
            pairs: vec![
                Pair {
                    a: ImageRef {
                        identity: 1,
                        image: 0,
                    },
                    b: ImageRef {
                        identity: 1,
                        image: 2,
                    },
                    same: true,
                },
                Pair {
                    a: ImageRef {
                        identity: 0,
                        image: 3,
                    },
                    b: ImageRef {
                        identity: 1,
                        image: 1,
                    },
                    same: false,
                },
            ],
        };
        let names = vec!["A".to_string(), "B".to_string()];
        assert_eq!(
            l.to_lfw_text(&names).unwrap(),
            "1\t1\nB\t1\t3\nA\t4\tB\t2\n"
        );
        assert!(l.to_lfw_text(&names[..1]).is_err());
        assert!(PairList::draw(1, 5, 1, 1, 0).is_err());
    }
}
