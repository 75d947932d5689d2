//! Partial FC v2's class sampling (An et al., "Partial FC: Training 10 Million Identities on
//! a Single Machine", ICCVW 2021; arcface_torch's `PartialFC_V2.sample`): each step, each
//! shard keeps the classes of its range that are a label of the batch (the positives) and
//! fills up to `ceil(sample_rate * C_k)` classes with negatives drawn uniformly without
//! replacement; the softmax runs over the sampled classes only.
//!
//! The draw is a function of `(seed, step, shard range)` only, so every run and every world
//! size that gives a shard the same range samples the same classes.

use std::ops::Range;

/// The sampled global class ids of the shard owning `range`, sorted: every label of the batch
/// inside `range` (each once), plus negatives of `range` drawn without replacement until
/// there are `max(ceil(sample_rate * len), 1)` classes (all positives when there are more
/// of them than that). `sample_rate >= 1` keeps the whole range.
///
/// `labels` are global class ids; those outside `range` belong to other shards.
pub fn sample_classes(
    labels: &[i64],
    range: Range<usize>,
    sample_rate: f64,
    seed: u64,
    step: u64,
) -> Vec<usize> {
    let len = range.len();
    if sample_rate >= 1.0 || len == 0 {
        return range.collect();
    }
    let wanted = ((sample_rate * len as f64).ceil() as usize).clamp(1, len);
    let mut positive = vec![false; len];
    for &label in labels {
        if label >= range.start as i64 && label < range.end as i64 {
            positive[label as usize - range.start] = true;
        }
    }
    let mut chosen: Vec<usize> = (0..len).filter(|&j| positive[j]).collect();
    if chosen.len() < wanted {
        // A partial Fisher-Yates shuffle of the negatives.
        let mut negatives: Vec<usize> = (0..len).filter(|&j| !positive[j]).collect();
        let mut rng = SplitMix64::new(seed, step, range.start as u64);
        let take = wanted - chosen.len();
        for i in 0..take {
            let j = i + (rng.next() % (negatives.len() - i) as u64) as usize;
            negatives.swap(i, j);
        }
        chosen.extend_from_slice(&negatives[..take]);
        chosen.sort_unstable();
    }
    chosen.into_iter().map(|j| j + range.start).collect()
}

/// SplitMix64 (Steele, Lea, Flood 2014), keyed by the seed, the step and the shard's first
/// class.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64, step: u64, start: u64) -> Self {
        let mut s = SplitMix64(seed);
        let a = s.next();
        let mut s = SplitMix64(a ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let b = s.next();
        SplitMix64(b ^ start.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positives_kept_count_and_determinism() {
        let labels = [3, 3, 11, 0, 7];
        let s = sample_classes(&labels, 2..12, 0.5, 9, 4);
        assert_eq!(s.len(), 5);
        for c in [3, 11, 7] {
            assert!(s.contains(&c), "{s:?} lacks positive {c}");
        }
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|c| (2..12).contains(c)));
        assert_eq!(s, sample_classes(&labels, 2..12, 0.5, 9, 4));
        assert_eq!(
            sample_classes(&labels, 2..12, 1.0, 9, 4),
            (2..12).collect::<Vec<_>>()
        );
        // More positives than the budget: all of them.
        assert_eq!(sample_classes(&labels, 2..12, 0.1, 9, 4), vec![3, 7, 11]);
    }
}
