//! The 10-fold protocol and the ROC metrics on hand-worked cases, and against an independent
//! straightforward f64 reimplementation on random embeddings.

use visage_eval::kfold::fold_ranges;
use visage_eval::roc::RocCurve;
use visage_eval::{
    score_pairs, ten_fold_accuracy, verify_interleaved, verify_pairs, Embeddings, EvalError, Pair,
    Pairs,
};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn fold_boundaries_follow_kfold_with_longer_first_folds() {
    let sizes: Vec<usize> = fold_ranges(25, 10).iter().map(|r| r.len()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
    let r = fold_ranges(25, 10);
    assert_eq!(r[0], 0..3);
    assert_eq!(r[4], 12..15);
    assert_eq!(r[5], 15..17);
    assert_eq!(r[9], 23..25);
    let r = fold_ranges(6000, 10);
    assert!(r.iter().all(|f| f.len() == 600));
    assert_eq!(r[9], 5400..6000);
    let r = fold_ranges(13, 10);
    assert_eq!(r[2], 4..6);
    assert_eq!(r[3], 6..7);
}

/// 20 pairs, fold k = pairs 2k (genuine) and 2k+1 (impostor). Genuine distance 0.5, impostor
/// 1.5, except the impostor of fold 0 at 0.3.
/// Held out k != 0: training accuracy is 9/18 for t <= 0.3, 8/18 on (0.3, 0.5], 17/18 on
/// (0.5, 1.5], 9/18 above: first maximum t = 0.51 (0.50 does not count: 0.5 < 0.5 is false),
/// held-out fold fully correct. Held out fold 0: training 18/18 on (0.5, 1.5], t = 0.51, the
/// 0.3 impostor is accepted: 1/2. Mean (9 + 0.5) / 10 = 0.95, population std
/// sqrt((9 * 0.05^2 + 0.45^2) / 10) = 0.15.
#[test]
fn twenty_pairs_by_hand() {
    let mut d = Vec::new();
    let mut same = Vec::new();
    for k in 0..10 {
        d.push(0.5);
        same.push(true);
        d.push(if k == 0 { 0.3 } else { 1.5 });
        same.push(false);
    }
    let r = ten_fold_accuracy(&d, &same).unwrap();
    assert_eq!(r.fold_thresholds, vec![0.51; 10]);
    let mut expected = vec![1.0; 10];
    expected[0] = 0.5;
    assert_eq!(r.fold_accuracies, expected);
    assert!(close(r.mean, 0.95, 1e-15), "{}", r.mean);
    assert!(close(r.std, 0.15, 1e-15), "{}", r.std);
}

/// Genuine distance of fold k = 0.2 + 0.1 k (literals), impostors 1.5. Held out k < 9: the
/// largest training genuine distance is 1.1, first threshold above it 1.11, all correct. Held
/// out fold 9: training max 1.0, threshold 1.01, the held-out 1.1 genuine is rejected: 1/2.
#[test]
fn thresholds_differ_per_fold() {
    let g = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1];
    let mut d = Vec::new();
    let mut same = Vec::new();
    for &x in &g {
        d.extend([x, 1.5]);
        same.extend([true, false]);
    }
    let r = ten_fold_accuracy(&d, &same).unwrap();
    let mut t = vec![1.11; 10];
    t[9] = 1.01;
    assert_eq!(r.fold_thresholds, t);
    assert_eq!(r.fold_accuracies[9], 0.5);
    assert!(r.fold_accuracies[..9].iter().all(|&a| a == 1.0));
    assert!(close(r.mean, 0.95, 1e-15) && close(r.std, 0.15, 1e-15));
}

/// 13 pairs: folds [0,2) [2,4) [4,6) [6,7) ... (the first 3 folds one longer). Pair 5 is a
/// 0.3 impostor, so only fold 2 (pairs 4, 5) loses a pair: 1/2. With the other common split
/// (boundaries floor(k n / 10)) pair 5 would be in fold 4.
#[test]
fn uneven_folds_put_the_bad_pair_in_fold_two() {
    let mut d = Vec::new();
    let mut same = Vec::new();
    for p in 0..13 {
        let genuine = p % 2 == 0;
        same.push(genuine);
        d.push(if genuine {
            0.5
        } else if p == 5 {
            0.3
        } else {
            1.5
        });
    }
    let r = ten_fold_accuracy(&d, &same).unwrap();
    let mut expected = vec![1.0; 10];
    expected[2] = 0.5;
    assert_eq!(r.fold_accuracies, expected);
    assert_eq!(r.fold_thresholds, vec![0.51; 10]);
}

#[test]
fn ten_fold_needs_ten_pairs_and_no_nan() {
    assert!(matches!(
        ten_fold_accuracy(&[0.1; 9], &[true; 9]),
        Err(EvalError::Protocol(_))
    ));
    let mut d = vec![0.1; 10];
    d[3] = f64::NAN;
    assert!(ten_fold_accuracy(&d, &[true; 10]).is_err());
    assert!(matches!(
        ten_fold_accuracy(&[0.1; 10], &[true; 11]),
        Err(EvalError::Shape(_))
    ));
}

/// Sorted scores 0.9G 0.8G 0.7I 0.6G 0.5I 0.4G 0.3I 0.2I 0.1I (4 genuine, 5 impostors):
/// points (0,0) (0,.25) (0,.5) (.2,.5) (.2,.75) (.4,.75) (.4,1) (.6,1) (.8,1) (1,1).
/// AUC = P(g > i) = 17/20. FAR + TAR - 1 changes sign between (.2,.75) and (.4,.75): EER =
/// .2 + (.05/.2) * .2 = .25. TAR@FAR .2 = .75, .5 = 1; FAR .1 < 1/5 is undefined.
#[test]
fn roc_by_hand() {
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
    let genuine = [true, true, false, true, false, true, false, false, false];
    let roc = RocCurve::new(&scores, &genuine).unwrap();
    let f = [0.0, 0.0, 0.0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.8, 1.0];
    let t = [0.0, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0];
    assert_eq!(roc.fpr.len(), f.len());
    for k in 0..f.len() {
        assert!(close(roc.fpr[k], f[k], 1e-15) && close(roc.tpr[k], t[k], 1e-15));
    }
    assert!(close(roc.auc(), 0.85, 1e-15));
    assert!(close(roc.eer(), 0.25, 1e-15));
    assert_eq!(roc.tar_at_far(0.2), Some(0.75));
    assert_eq!(roc.tar_at_far(0.3), Some(0.75));
    assert_eq!(roc.tar_at_far(0.5), Some(1.0));
    assert_eq!(roc.tar_at_far(0.1), None);
    assert_eq!(roc.tar_at_far(0.19), None);
}

/// Genuine .8 .5, impostors .9 .5 .2 .1: the tied .5 pair is one threshold, points (0,0)
/// (.25,0) (.25,.5) (.5,1) (.75,1) (1,1). TAR@FAR .3 = .5 (breaking the tie genuine-first
/// would give 1). EER on (.25,.5)-(.5,1): 1/3. AUC = .25*.75 + .5 = .6875 = P(g>i) + P(tie)/2.
#[test]
fn roc_groups_tied_scores() {
    let scores = [0.8, 0.5, 0.9, 0.5, 0.2, 0.1];
    let genuine = [true, true, false, false, false, false];
    let roc = RocCurve::new(&scores, &genuine).unwrap();
    assert_eq!(roc.fpr, vec![0.0, 0.25, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(roc.tpr, vec![0.0, 0.0, 0.5, 1.0, 1.0, 1.0]);
    assert_eq!(roc.tar_at_far(0.3), Some(0.5));
    assert_eq!(roc.tar_at_far(0.25), Some(0.5));
    assert!(close(roc.eer(), 1.0 / 3.0, 1e-15));
    assert!(close(roc.auc(), 0.6875, 1e-15));
}

#[test]
fn roc_needs_both_classes() {
    assert!(matches!(
        RocCurve::new(&[0.1, 0.2], &[true, true]),
        Err(EvalError::Protocol(_))
    ));
    assert!(RocCurve::new(&[0.1, f64::NAN], &[true, false]).is_err());
}

/// Unit 2-D vectors: (1,0) against (c, s) has squared distance 2 - 2c.
fn unit(angle_cos: f64) -> [f32; 2] {
    [
        angle_cos as f32,
        (1.0 - angle_cos * angle_cos).sqrt() as f32,
    ]
}

#[test]
fn pair_scores_by_hand() {
    // (3,4) vs (4,3): cos 24/25, distance (0.2^2 + 0.2^2) = 0.08. (1,0) vs (-2,0): cos -1,
    // distance 4. (1,0) vs (0,0): zero row stays zero: cos 0, distance 1.
    let e = Embeddings::new(6, 2, vec![3., 4., 4., 3., 1., 0., -2., 0., 1., 0., 0., 0.]).unwrap();
    let s = score_pairs(&e, &Pairs::interleaved(&[true, false, false])).unwrap();
    assert!(close(s.cosine[0], 0.96, 1e-15) && close(s.distance[0], 0.08, 1e-15));
    assert!(close(s.cosine[1], -1.0, 1e-15) && close(s.distance[1], 4.0, 1e-15));
    assert_eq!((s.cosine[2], s.distance[2]), (0.0, 1.0));
}

/// 20 pairs of 2-D embeddings: genuine distance 0.555, impostors 1.455 except fold 0's at
/// 0.333. As in `twenty_pairs_by_hand`: thresholds 0.56, mean 0.95, std 0.15. Cosines:
/// genuine 0.7225 (x10), impostors 0.8335 (x1), 0.2725 (x9): points (0,0) (.1,0) (.1,1) (1,1),
/// EER 0.1, AUC 0.9, TAR@1e-1 = 1 (1e-1 = 1/10 impostors is defined), smaller FARs null.
#[test]
fn report_from_embeddings() {
    let mut data = Vec::new();
    let mut issame = Vec::new();
    for k in 0..10 {
        let d: f64 = 0.555;
        data.extend([1.0f32, 0.0]);
        data.extend(unit(1.0 - d / 2.0));
        issame.push(true);
        let d = if k == 0 { 0.333 } else { 1.455 };
        data.extend([1.0f32, 0.0]);
        data.extend(unit(1.0 - d / 2.0));
        issame.push(false);
    }
    let e = Embeddings::new(40, 2, data).unwrap();
    let v = verify_interleaved(&e, &issame).unwrap();
    let r = &v.report;
    assert_eq!(r.fold_thresholds, vec![0.56; 10]);
    assert!(close(r.accuracy_mean, 0.95, 1e-12) && close(r.accuracy_std, 0.15, 1e-12));
    assert_eq!((r.pairs, r.genuine, r.impostor), (20, 10, 10));
    assert!(close(r.eer, 0.1, 1e-6) && close(r.auc, 0.9, 1e-6));
    assert_eq!(r.tar_at_far["1e-1"], Some(1.0));
    for key in ["1e-2", "1e-3", "1e-4", "1e-5", "1e-6"] {
        assert_eq!(r.tar_at_far[key], None);
    }
    let json = serde_json::to_value(r).unwrap();
    assert!(json["tar_at_far"]["1e-3"].is_null());
    assert_eq!(json["fold_thresholds"].as_array().unwrap().len(), 10);
    for key in [
        "accuracy_mean",
        "accuracy_std",
        "eer",
        "auc",
        "pairs",
        "genuine",
        "impostor",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn bad_verification_inputs_are_typed_errors() {
    let e = Embeddings::new(3, 2, vec![1.0; 6]).unwrap();
    let err = verify_interleaved(&e, &[true]).unwrap_err();
    assert!(err.to_string().contains("odd"), "{err}");
    let e = Embeddings::new(4, 2, vec![1.0; 8]).unwrap();
    let err = verify_interleaved(&e, &[true, false, true]).unwrap_err();
    assert!(matches!(err, EvalError::Shape(_)), "{err}");
    let mut data = vec![1.0f32; 40];
    data[13] = f32::NAN;
    let e = Embeddings::new(20, 2, data).unwrap();
    let err = verify_interleaved(&e, &[true, false].repeat(5)).unwrap_err();
    match err {
        EvalError::NonFinite { row, column, .. } => assert_eq!((row, column), (6, 1)),
        other => panic!("expected NonFinite, got {other}"),
    }
    let e = Embeddings::new(2, 2, vec![1.0; 4]).unwrap();
    let out_of_range = Pairs(vec![Pair {
        first: 0,
        second: 5,
        same: true,
    }]);
    assert!(matches!(
        verify_pairs(&e, &out_of_range),
        Err(EvalError::Shape(_))
    ));
    assert!(verify_pairs(&e, &Pairs::default()).is_err());
    assert!(Embeddings::new(2, 3, vec![0.0; 5]).is_err());
}

// ---- independent reference -------------------------------------------------------------

/// SplitMix64 + Box-Muller, so the test data does not depend on the crate.
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

/// The protocol written out the plain way: per-pair f64 distances from the normalised rows,
/// floating accuracies per threshold, numpy-like argmax (first maximum).
fn reference_ten_fold(e: &[Vec<f32>], issame: &[bool]) -> (f64, f64, Vec<f64>) {
    let n = issame.len();
    let norm = |v: &Vec<f32>| {
        let s: f64 = v.iter().map(|&x| (x as f64) * (x as f64)).sum();
        v.iter().map(|&x| x as f64 / s.sqrt()).collect::<Vec<f64>>()
    };
    let mut dist = Vec::new();
    for i in 0..n {
        let a = norm(&e[2 * i]);
        let b = norm(&e[2 * i + 1]);
        dist.push(
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>(),
        );
    }
    let mut bounds = vec![0usize];
    for k in 0..10 {
        let len = n / 10 + if k < n % 10 { 1 } else { 0 };
        bounds.push(bounds[k] + len);
    }
    let acc = |idx: &[usize], t: f64| {
        idx.iter().filter(|&&p| (dist[p] < t) == issame[p]).count() as f64 / idx.len() as f64
    };
    let mut accs = Vec::new();
    let mut ths = Vec::new();
    for k in 0..10 {
        let test: Vec<usize> = (bounds[k]..bounds[k + 1]).collect();
        let train: Vec<usize> = (0..n).filter(|p| !test.contains(p)).collect();
        let mut best = (f64::NEG_INFINITY, 0.0);
        for i in 0..400 {
            let t = i as f64 / 100.0;
            let a = acc(&train, t);
            if a > best.0 {
                best = (a, t);
            }
        }
        ths.push(best.1);
        accs.push(acc(&test, best.1));
    }
    let mean = accs.iter().sum::<f64>() / 10.0;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 10.0).sqrt();
    (mean, std, ths)
}

/// Reference AUC as the Mann-Whitney statistic P(g > i) + P(g = i) / 2, and TAR@FAR by
/// counting, straight from the definitions.
fn reference_auc_tar(scores: &[f64], same: &[bool], far: f64) -> (f64, Option<f64>) {
    let g: Vec<f64> = scores
        .iter()
        .zip(same)
        .filter(|p| *p.1)
        .map(|p| *p.0)
        .collect();
    let i: Vec<f64> = scores
        .iter()
        .zip(same)
        .filter(|p| !*p.1)
        .map(|p| *p.0)
        .collect();
    let mut wins = 0.0;
    for &a in &g {
        for &b in &i {
            wins += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = wins / (g.len() * i.len()) as f64;
    if far < 1.0 / i.len() as f64 {
        return (auc, None);
    }
    let mut best: f64 = 0.0;
    for &t in scores {
        let fa = i.iter().filter(|&&s| s >= t).count() as f64 / i.len() as f64;
        if fa <= far {
            best = best.max(g.iter().filter(|&&s| s >= t).count() as f64 / g.len() as f64);
        }
    }
    (auc, Some(best))
}

#[test]
fn matches_independent_reference_on_random_embeddings() {
    let mut rng = Rng(7);
    let (n, dim) = (437, 16);
    let mut rows = Vec::new();
    let mut issame = Vec::new();
    for p in 0..n {
        let a: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let same = p % 3 != 0;
        let noise = 0.4 + 1.2 * rng.uniform();
        let b: Vec<f32> = if same {
            a.iter()
                .map(|&x| x + (noise * rng.normal()) as f32)
                .collect()
        } else {
            (0..dim).map(|_| rng.normal() as f32).collect()
        };
        rows.push(a);
        rows.push(b);
        issame.push(same);
    }
    let e = Embeddings::new(2 * n, dim, rows.concat()).unwrap();
    let v = verify_interleaved(&e, &issame).unwrap();
    let (mean, std, ths) = reference_ten_fold(&rows, &issame);
    assert!(
        close(v.report.accuracy_mean, mean, 1e-12),
        "{} vs {mean}",
        v.report.accuracy_mean
    );
    assert!(close(v.report.accuracy_std, std, 1e-12));
    assert_eq!(v.report.fold_thresholds, ths);
    assert!(mean > 0.6 && mean < 0.99, "uninformative test data: {mean}");
    for (key, far) in [("1e-1", 0.1), ("1e-2", 0.01), ("1e-3", 0.001)] {
        let (auc, tar) = reference_auc_tar(&v.scores.cosine, &issame, far);
        assert!(close(v.report.auc, auc, 1e-12));
        assert_eq!(v.report.tar_at_far[key], tar, "TAR@{key}");
    }
    // EER: FAR and FRR at the reported rate bracket it on the empirical curve.
    let eer = v.report.eer;
    assert!(eer > 0.0 && eer < 0.5);
}
