//! MegaFace-style identification on a hand-worked case (ties, a single-image identity) and
//! against a brute-force f64 reimplementation on random data (rank-k and TAR@FAR=1e-6).

use visage_eval::identification::allowed_false_accepts;
use visage_eval::{identify, Embeddings, EvalError, IdentificationConfig};

fn at_degrees(angles: &[f64]) -> Embeddings {
    let data = angles
        .iter()
        .flat_map(|a| {
            let r = a.to_radians();
            [r.cos() as f32, r.sin() as f32]
        })
        .collect();
    Embeddings::new(angles.len(), 2, data).unwrap()
}

fn config(ranks: &[usize]) -> IdentificationConfig {
    IdentificationConfig {
        ranks: ranks.to_vec(),
        ..Default::default()
    }
}

/// Probes (degrees): A = {0, 30}, B = {90, 93}, C = {200} (single image, skipped).
/// Distractors: 10, 30 (the same f32 vector as probe 30: an exact tie), 95, 250.
/// - (0 -> 30): sim cos30; probe 0's distractor scores cos10, cos30 (tie), cos95, ...:
///   fails rank 1, fails rank 2 (tie counts as failure), succeeds rank 3.
/// - (30 -> 0): cos30 vs cos0 = 1, cos20, cos65: succeeds only at rank 3.
/// - (90 -> 93): cos3 vs cos5 (95), cos60, cos80: rank 1.
/// - (93 -> 90): cos3 vs cos2 (95), cos63, cos83: rank 2.
///
/// CMC = 1/4, 2/4, 4/4 (counting the tie as a success would give 3/4 at rank 2).
/// 4 probes x 4 distractors = 16 impostors: TAR@1e-6 undefined.
#[test]
fn hand_case_with_tie_and_single_image_identity() {
    let probes = at_degrees(&[0.0, 30.0, 90.0, 93.0, 200.0]);
    let labels = [7, 7, 3, 3, 11];
    let distractors = at_degrees(&[10.0, 30.0, 95.0, 250.0]);
    assert_eq!(probes.row(1), distractors.row(1));
    let r = identify(&probes, &labels, &distractors, &config(&[1, 2, 3])).unwrap();
    assert_eq!(r.cmc, vec![0.25, 0.5, 1.0]);
    assert_eq!(r.rank.get(1), Some(0.25));
    assert_eq!(r.rank.get(2), Some(0.5));
    assert_eq!(r.pairs, 4);
    assert_eq!(r.skipped_single_image_probes, 1);
    assert_eq!((r.probes, r.probe_identities, r.distractors), (4, 2, 4));
    assert_eq!(r.tar_at_far_1e_6, None);
    assert_eq!(r.impostor_pairs, 16);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["tar_at_far_1e-6"].is_null());
    assert_eq!(json["rank"]["3"], 1.0);
    let text = serde_json::to_string(&r.rank).unwrap();
    assert_eq!(text, r#"{"1":0.25,"2":0.5,"3":1.0}"#);
}

#[test]
fn fewer_distractors_than_rank_means_success() {
    let probes = at_degrees(&[0.0, 40.0]);
    let distractors = at_degrees(&[10.0]);
    let r = identify(&probes, &[1, 1], &distractors, &config(&[1, 5])).unwrap();
    // Rank 1: cos40 < cos10 and cos40 < cos30 -> both fail. Rank 5: only one distractor.
    assert_eq!(r.rank.get(1), Some(0.0));
    assert_eq!(r.rank.get(5), Some(1.0));
}

#[test]
fn allowed_false_accepts_matches_float_definition() {
    assert_eq!(allowed_false_accepts(1e-6, 1_000_000), 1);
    assert_eq!(allowed_false_accepts(1e-6, 999_999), 0);
    assert_eq!(allowed_false_accepts(1e-6, 3_500_000_000), 3500);
    assert_eq!(allowed_false_accepts(0.1, 10), 1);
    assert_eq!(allowed_false_accepts(0.5, 3), 1);
}

#[test]
fn bad_identification_inputs_are_typed_errors() {
    let p = at_degrees(&[0.0, 10.0]);
    let d = at_degrees(&[50.0]);
    assert!(matches!(
        identify(&p, &[1], &d, &config(&[1])),
        Err(EvalError::Shape(_))
    ));
    assert!(matches!(
        identify(&p, &[1, 2], &d, &config(&[1])),
        Err(EvalError::Protocol(_))
    ));
    assert!(matches!(
        identify(&p, &[1, 1], &d, &config(&[0, 1])),
        Err(EvalError::Protocol(_))
    ));
    let d3 = Embeddings::new(1, 3, vec![1.0, 0.0, 0.0]).unwrap();
    assert!(matches!(
        identify(&p, &[1, 1], &d3, &config(&[1])),
        Err(EvalError::Shape(_))
    ));
    let nan = Embeddings::new(1, 2, vec![0.0, f32::NAN]).unwrap();
    assert!(matches!(
        identify(&p, &[1, 1], &nan, &config(&[1])),
        Err(EvalError::NonFinite { .. })
    ));
    let empty = Embeddings::new(0, 2, vec![]).unwrap();
    assert!(identify(&p, &[1, 1], &empty, &config(&[1])).is_err());
}

// ---- brute-force reference ------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

fn cos64(a: &[f32], b: &[f32]) -> f64 {
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 / na) * (y as f64 / nb))
        .sum()
}

/// Brute force: every probe x distractor score in f64; pair (i, j) succeeds at rank k iff
/// fewer than k distractors score >= sim(i, j). TAR@1e-6 from the full ROC: every distinct
/// score a threshold, largest TPR with #impostors >= t / I <= 1e-6.
/// Brute-force CMC (ranks 1..=20), ordered pairs and TAR@1e-6.
fn brute_force(
    probes: &[f32],
    labels: &[i64],
    dist: &[f32],
    dim: usize,
) -> (Vec<f64>, u64, Option<f64>) {
    let nd = dist.len() / dim;
    let kept: Vec<usize> = (0..labels.len())
        .filter(|&i| labels.iter().filter(|&&l| l == labels[i]).count() >= 2)
        .collect();
    let row = |m: &[f32], i: usize| m[i * dim..(i + 1) * dim].to_vec();
    let mut impostor = Vec::new();
    let mut per_probe: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    for &i in &kept {
        for k in 0..nd {
            let s = cos64(&row(probes, i), &row(dist, k));
            per_probe[i].push(s);
            impostor.push(s);
        }
    }
    let mut success = [0u64; 20];
    let mut pairs = 0u64;
    let mut genuine = Vec::new();
    for &i in &kept {
        for &j in &kept {
            if i == j || labels[i] != labels[j] {
                continue;
            }
            let s = cos64(&row(probes, i), &row(probes, j));
            pairs += 1;
            if i < j {
                genuine.push(s);
            }
            let ahead = per_probe[i].iter().filter(|&&x| x >= s).count();
            for k in 1..=20 {
                if ahead < k {
                    success[k - 1] += 1;
                }
            }
        }
    }
    let cmc = success.iter().map(|&s| s as f64 / pairs as f64).collect();
    let ni = impostor.len() as f64;
    if 1e-6 < 1.0 / ni {
        return (cmc, pairs, None);
    }
    let mut all: Vec<(f64, bool)> = genuine.iter().map(|&s| (s, true)).collect();
    all.extend(impostor.iter().map(|&s| (s, false)));
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    for k in 0..all.len() {
        if all[k].1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let end_of_group = k + 1 == all.len() || all[k + 1].0 != all[k].0;
        if end_of_group && fp as f64 / ni <= 1e-6 {
            best = best.max(tp as f64 / genuine.len() as f64);
        }
    }
    (cmc, pairs, Some(best))
}

/// Near-duplicate distractors (all within ~1e-4 of one vector) make thousands of f32 scores
/// fall within f32 rounding of each other; with a margin of 1 the f32 selection cannot be
/// certified, so the exact fallbacks must run and still agree with brute force.
#[test]
fn near_duplicate_distractors_take_the_exact_fallbacks() {
    let mut rng = Rng(9);
    let dim = 16;
    let base: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let near = |rng: &mut Rng, scale: f64| -> Vec<f32> {
        base.iter()
            .map(|&b| (b + scale * rng.normal()) as f32)
            .collect()
    };
    let labels: Vec<i64> = vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
    let probes: Vec<f32> = (0..labels.len())
        .flat_map(|_| near(&mut rng, 3e-4))
        .collect();
    let nd = 100_000;
    let dist: Vec<f32> = (0..nd).flat_map(|_| near(&mut rng, 1e-4)).collect();
    let p = Embeddings::new(labels.len(), dim, probes.clone()).unwrap();
    let d = Embeddings::new(nd, dim, dist.clone()).unwrap();
    let cfg = IdentificationConfig {
        ranks: (1..=20).collect(),
        margin: 1,
        ..Default::default()
    };
    let r = identify(&p, &labels, &d, &cfg).unwrap();
    let (cmc, pairs, tar) = brute_force(&probes, &labels, &dist, dim);
    assert_eq!(r.pairs, pairs);
    assert_eq!(r.cmc, cmc);
    assert_eq!(r.tar_at_far_1e_6, tar);
    assert!(r.exact_recomputed_probes > 0, "fallback not exercised");
    assert!(r.impostor_second_pass, "second pass not exercised");
}

#[test]
fn matches_brute_force_on_random_data() {
    let mut rng = Rng(42);
    let dim = 8;
    // 6 identities with 2-3 images (one singleton), 11 kept probes x 100k distractors =
    // 1.1M impostors: FAR 1e-6 allows 1 false accept.
    let labels: Vec<i64> = vec![0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 5];
    let mut centers = Vec::new();
    for _ in 0..6 {
        centers.push((0..dim).map(|_| rng.normal()).collect::<Vec<f64>>());
    }
    let mut probes = Vec::new();
    for (n, &l) in labels.iter().enumerate() {
        let noise = [
            0.002, 0.15, 0.002, 0.003, 0.1, 0.002, 0.004, 0.002, 0.05, 0.1, 0.003, 0.2,
        ][n];
        for c in &centers[l as usize] {
            probes.push((c + noise * rng.normal()) as f32);
        }
    }
    let nd = 100_000;
    let mut dist = Vec::with_capacity(nd * dim);
    for k in 0..nd {
        if k == 7 {
            // An exact copy of probe 1: ties with the genuine scores of probe 0 -> 1.
            dist.extend_from_slice(&probes[dim..2 * dim]);
        } else {
            dist.extend((0..dim).map(|_| rng.normal() as f32));
        }
    }
    let p = Embeddings::new(labels.len(), dim, probes.clone()).unwrap();
    let d = Embeddings::new(nd, dim, dist.clone()).unwrap();
    let ranks = [1usize, 2, 5, 10, 20];
    let cfg = IdentificationConfig {
        ranks: ranks.to_vec(),
        probe_block: 4,
        distractor_block: 3000,
        ..Default::default()
    };
    let r = identify(&p, &labels, &d, &cfg).unwrap();

    let kept: Vec<usize> = (0..labels.len())
        .filter(|&i| labels.iter().filter(|&&l| l == labels[i]).count() >= 2)
        .collect();
    let row = |m: &Vec<f32>, i: usize| m[i * dim..(i + 1) * dim].to_vec();
    let mut impostor = Vec::new();
    let mut per_probe: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    for &i in &kept {
        for k in 0..nd {
            let s = cos64(&row(&probes, i), &row(&dist, k));
            per_probe[i].push(s);
            impostor.push(s);
        }
    }
    let mut success = [0u64; 20];
    let mut pairs = 0u64;
    let mut genuine = Vec::new();
    for &i in &kept {
        for &j in &kept {
            if i == j || labels[i] != labels[j] {
                continue;
            }
            let s = cos64(&row(&probes, i), &row(&probes, j));
            pairs += 1;
            if i < j {
                genuine.push(s);
            }
            let ahead = per_probe[i].iter().filter(|&&x| x >= s).count();
            for k in 1..=20 {
                if ahead < k {
                    success[k - 1] += 1;
                }
            }
        }
    }
    assert_eq!(r.pairs, pairs);
    assert_eq!(r.skipped_single_image_probes, 1);
    for (k, rate) in r.cmc.iter().enumerate() {
        assert_eq!(*rate, success[k] as f64 / pairs as f64, "rank {}", k + 1);
    }
    assert!(
        r.cmc[0] > 0.05 && r.cmc[0] < 0.95,
        "uninformative data: {:?}",
        r.cmc
    );

    // TAR@FAR=1e-6 from the full ROC.
    let ni = impostor.len() as f64;
    let mut all: Vec<(f64, bool)> = genuine.iter().map(|&s| (s, true)).collect();
    all.extend(impostor.iter().map(|&s| (s, false)));
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    for k in 0..all.len() {
        if all[k].1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let end_of_group = k + 1 == all.len() || all[k + 1].0 != all[k].0;
        if end_of_group && fp as f64 / ni <= 1e-6 {
            best = best.max(tp as f64 / genuine.len() as f64);
        }
    }
    assert_eq!(r.impostor_pairs, impostor.len() as u64);
    assert_eq!(r.tar_at_far_1e_6, Some(best));
    assert!(best > 0.0 && best < 1.0, "uninformative TAR: {best}");
}

/// Counts what a [`visage_io::Progress`] is told.
#[derive(Default)]
struct Counter {
    stages: Vec<(String, u64)>,
    advanced: u64,
    finished: usize,
}

impl visage_io::Progress for Counter {
    fn start(&mut self, stage: &str, total: u64) {
        self.stages.push((stage.to_string(), total));
    }
    fn advance(&mut self, steps: u64) {
        self.advanced += steps;
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

/// Progress goes to the caller's `Progress` (one stage, one step per block of distractors,
/// 3 blocks of 2 for 5 distractors) and does not change the numbers.
#[test]
fn progress_is_reported_to_the_caller_and_changes_nothing() {
    let probes = at_degrees(&[0.0, 30.0, 90.0, 93.0, 200.0]);
    let labels = [7, 7, 3, 3, 11];
    let distractors = at_degrees(&[10.0, 30.0, 95.0, 250.0, 300.0]);
    let cfg = IdentificationConfig {
        ranks: vec![1, 2, 3],
        distractor_block: 2,
        ..Default::default()
    };
    let plain = identify(&probes, &labels, &distractors, &cfg).unwrap();
    let mut counter = Counter::default();
    let reported =
        visage_eval::identify_with_progress(&probes, &labels, &distractors, &cfg, &mut counter)
            .unwrap();
    assert_eq!(plain.cmc, reported.cmc);
    assert_eq!(plain.tar_at_far_1e_6, reported.tar_at_far_1e_6);
    assert_eq!(counter.stages, vec![("identify".to_string(), 3)]);
    assert_eq!(counter.advanced, 3);
    assert_eq!(counter.finished, 1);
}
