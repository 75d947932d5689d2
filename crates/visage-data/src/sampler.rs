//! Batch plans: which sample indices form each batch of an epoch, deterministic in
//! (seed, epoch). Plain shuffling for classification losses and P identities x K images for
//! pair and triplet losses.

use crate::error::{DataError, Result};
use crate::rng::SplitMix64;

/// How an epoch is cut into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchPlan {
    /// Every sample once per epoch, shuffled, `batch_size` per batch; the last short batch is
    /// dropped when `drop_last`.
    Shuffled {
        /// Samples per batch.
        batch_size: usize,
        /// Drop a final batch smaller than `batch_size`.
        drop_last: bool,
    },
    /// `p` distinct identities x `k` images each per batch (see [`pk_batches`]).
    IdentitiesTimesImages {
        /// Identities per batch.
        p: usize,
        /// Images per identity.
        k: usize,
    },
}

/// The shuffled order of `n` samples for `epoch`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::from_parts(&[seed, 0x5A4, epoch]).shuffle(&mut order);
    order
}

/// Shuffled batches of `batch_size`.
pub fn shuffled_batches(
    n: usize,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
    epoch: u64,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(DataError::Invalid("batch_size must be positive".into()));
    }
    let order = epoch_order(n, seed, epoch);
    Ok(order
        .chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(|c| c.to_vec())
        .collect())
}

/// P x K batches: identities are shuffled and taken `p` at a time (each identity at most once
/// per epoch, a final group of fewer than `p` dropped); from each, `k` images are drawn without
/// replacement when it has at least `k`, with replacement otherwise. Batch layout:
/// identity-major (`k` images of the first identity, then the next ...).
pub fn pk_batches(
    labels: &[usize],
    p: usize,
    k: usize,
    seed: u64,
    epoch: u64,
) -> Result<Vec<Vec<usize>>> {
    if p == 0 || k == 0 {
        return Err(DataError::Invalid(format!(
            "P x K sampler needs positive P and K (got {p} x {k})"
        )));
    }
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut ids: Vec<usize> = (0..classes).filter(|&c| !by_class[c].is_empty()).collect();
    if ids.len() < p {
        return Err(DataError::Invalid(format!(
            "P x K sampler needs {p} identities, the data has {}",
            ids.len()
        )));
    }
    let mut r = SplitMix64::from_parts(&[seed, 0x9B, epoch]);
    r.shuffle(&mut ids);
    let mut batches = Vec::with_capacity(ids.len() / p);
    for group in ids.chunks_exact(p) {
        let mut batch = Vec::with_capacity(p * k);
        for &c in group {
            let members = &mut by_class[c];
            if members.len() >= k {
                r.shuffle(members);
                batch.extend_from_slice(&members[..k]);
            } else {
                for _ in 0..k {
                    batch.push(members[r.below(members.len() as u64) as usize]);
                }
            }
        }
        batches.push(batch);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_is_a_permutation_and_depends_on_epoch() {
        let b = shuffled_batches(10, 4, false, 1, 0).unwrap();
        assert_eq!(b.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(shuffled_batches(10, 4, true, 1, 0).unwrap().len(), 2);
        assert_eq!(b, shuffled_batches(10, 4, false, 1, 0).unwrap());
        assert_ne!(b, shuffled_batches(10, 4, false, 1, 1).unwrap());
        assert!(shuffled_batches(10, 0, false, 1, 0).is_err());
    }

    #[test]
    fn pk_batches_have_p_distinct_identities_of_k_images() {
        // 7 identities: identity c has c + 1 images (so 0..2 need replacement for k = 3).
        let labels: Vec<usize> = (0..7).flat_map(|c| std::iter::repeat_n(c, c + 1)).collect();
        let b = pk_batches(&labels, 3, 3, 5, 2).unwrap();
        assert_eq!(b.len(), 2);
        let mut seen = std::collections::HashSet::new();
        for batch in &b {
            assert_eq!(batch.len(), 9);
            for g in batch.chunks(3) {
                let c = labels[g[0]];
                assert!(g.iter().all(|&i| labels[i] == c));
                assert!(seen.insert(c), "identity {c} twice in an epoch");
                if c + 1 >= 3 {
                    let set: std::collections::HashSet<_> = g.iter().collect();
                    assert_eq!(set.len(), 3, "without replacement");
                }
            }
        }
        assert!(pk_batches(&labels, 8, 2, 0, 0).is_err());
        assert!(pk_batches(&labels, 0, 2, 0, 0).is_err());
    }
}
