//! L2 normalisation that is safe at zero and at huge magnitudes.

use burn::tensor::{backend::Backend, Tensor};

/// Norms below this are treated as this value (as `torch.nn.functional.normalize`'s `eps`).
pub const NORM_EPS: f64 = 1e-12;

/// Each row divided by its largest magnitude (held at least [`NORM_EPS`]), and the sum of
/// squares of that scaled row held at least 1: `(x / m, s)` with `m = max(max_k |x_k|,
/// NORM_EPS)` `[N, 1]` and `s = max(sum_k (x_k / m)^2, 1)` `[N, 1]`.
///
/// `|x| = m sqrt(s)` whenever `max_k |x_k| >= NORM_EPS`, and `m sqrt(s) = max(|x|,
/// NORM_EPS)` below that (the clamp of the old `sqrt(max(sum x^2, NORM_EPS^2))` form).
/// Squaring `x / m`, whose entries lie in `[-1, 1]`, cannot overflow (squaring `x` does from
/// `|x_k| ~ 1.8e19` in f32).
///
/// Gradients: `m` is held constant (`|x|` and `x / |x|` are homogeneous in the scale, so the
/// gradient is exact without a path through `m`, whose two halves would cancel only in exact
/// arithmetic), and rows with `max_k |x_k| < NORM_EPS` get no gradient at all (their
/// normalised value is a zero vector by convention; `1 / NORM_EPS` slopes times a huge
/// upstream gradient would overflow).
fn scaled_rows<B: Backend>(x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let [n, d] = x.dims();
    let top = x.clone().detach().abs().max_dim(1);
    let tiny = top.clone().lower_elem(NORM_EPS).expand([n, d]);
    let m = top.clamp_min(NORM_EPS);
    let x = x.clone().mask_where(tiny, x.detach());
    let scaled = x / m.clone();
    let s = scaled.clone().square().sum_dim(1).clamp_min(1.0);
    (scaled, m, s)
}

/// Row-wise L2 norm `[N, 1]`, clamped below at [`NORM_EPS`].
///
/// Computed as `m sqrt(sum (x / m)^2)` with `m` the row's largest magnitude, so the squares
/// cannot overflow: the result is finite for every finite row whose norm is representable
/// (`|x| <= sqrt(d) max|x_k|`), and a zero row has a finite (zero) gradient.
///
/// # Shapes
/// - `x`: `[N, d]` -> `[N, 1]`
pub fn l2_norm<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let (_, m, s) = scaled_rows(x);
    m * s.sqrt()
}

/// Rows divided by their L2 norm; a zero row stays zero (so its cosines are 0). Finite for
/// every finite input (the row is scaled by its largest magnitude first).
///
/// # Shapes
/// - `x`: `[N, d]` -> `[N, d]`
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let (scaled, _, s) = scaled_rows(x);
    scaled / s.sqrt()
}

/// Cosine of every embedding with every class weight: `normalize(x) normalize(W)^T`.
///
/// # Shapes
/// - `x`: `[N, d]`, `weight`: `[C, d]` -> `[N, C]`
pub fn cosine_matrix<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 2>) -> Tensor<B, 2> {
    l2_normalize(x).matmul(l2_normalize(weight).transpose())
}
