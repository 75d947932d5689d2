//! Cosine similarity and squared-L2 distance of L2-normalised embeddings, in f64.
//!
//! For unit vectors `a`, `b`: `||a - b||^2 = 2 - 2 cos(a, b)`, in `[0, 4]`.
//!
//! Zero-norm embeddings follow scikit-learn's `preprocessing.normalize` (which InsightFace's
//! verification code uses): a zero row stays zero. Its cosine with anything is then 0, and its
//! squared-L2 distance to a unit vector is 1 (0 to another zero row). No NaN is produced.

/// `x / ||x||_2` in f64 (the f32 values are widened first); a zero row stays zero.
pub fn normalize_f64(x: &[f32]) -> Vec<f64> {
    let norm = x
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        x.iter().map(|&v| f64::from(v) / norm).collect()
    } else {
        vec![0.0; x.len()]
    }
}

/// Inner product in f64; with normalised inputs, the cosine similarity.
pub fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Squared L2 distance `sum_i (a_i - b_i)^2` in f64.
pub fn squared_l2_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x - y;
            d * d
        })
        .sum()
}

/// Cosine similarity of two raw f32 embeddings, in f64 (0 when either is the zero vector).
pub fn cosine_f64(a: &[f32], b: &[f32]) -> f64 {
    dot_f64(&normalize_f64(a), &normalize_f64(b))
}
