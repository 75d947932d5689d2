//! The f32 inner kernel of identification: cosine scores of a probe block against a
//! distractor block, `S[r, c] = <p_r, x_c> / ||x_c||`, where the probes `p_r` are already
//! L2-normalised.
//!
//! The product is one `sgemm` (the `matrixmultiply` crate, or with the `gemm-avx512` feature
//! the `gemm` crate's AVX-512 kernels: packed, cache-blocked, SIMD micro-kernels; f32 products
//! accumulated in f32), followed by a per-column scale by the
//! distractor's inverse norm, so distractors are never copied or normalised in memory. The
//! f32 scores only select candidates; the scores that decide a rank or a TAR are recomputed in
//! f64 (see [`crate::identification`]).

/// Writes `out[r * cols + c] = sum_k probes[r * dim + k] * distractors[c * dim + k] * inv_norms[c]`
/// for `r < rows`, `c < cols`.
///
/// `probes` is `rows x dim` row-major, `distractors` is `cols x dim` row-major, `inv_norms`
/// has `cols` entries and `out` `rows * cols`.
pub fn cosine_block(
    probes: &[f32],
    rows: usize,
    distractors: &[f32],
    cols: usize,
    dim: usize,
    inv_norms: &[f32],
    out: &mut [f32],
) {
    assert_eq!(inv_norms.len(), cols, "inverse norms");
    dot_block(probes, rows, distractors, cols, dim, out);
    for row in out.chunks_exact_mut(cols) {
        for (s, &inv) in row.iter_mut().zip(inv_norms) {
            *s *= inv;
        }
    }
}

/// Writes `out[r * cols + c] = sum_k probes[r * dim + k] * distractors[c * dim + k]` for
/// `r < rows`, `c < cols`: the raw dot products of [`cosine_block`], before the scaling.
pub fn dot_block(
    probes: &[f32],
    rows: usize,
    distractors: &[f32],
    cols: usize,
    dim: usize,
    out: &mut [f32],
) {
    assert_eq!(probes.len(), rows * dim, "probe block shape");
    assert_eq!(distractors.len(), cols * dim, "distractor block shape");
    assert_eq!(out.len(), rows * cols, "output block shape");
    if rows == 0 || cols == 0 {
        return;
    }
    #[cfg(feature = "gemm-avx512")]
    // SAFETY: the asserts above guarantee that C (rows x cols: column stride 1, row stride
    // cols), A (rows x dim: 1, dim) and B = distractors^T (dim x cols: column stride dim, row
    // stride 1) lie inside their slices, and `out` does not alias the inputs. `read_dst` is
    // false, so C = 1 * A B.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            dim,
            out.as_mut_ptr(),
            1,
            cols as isize,
            false,
            probes.as_ptr(),
            1,
            dim as isize,
            distractors.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    #[cfg(not(feature = "gemm-avx512"))]
    // SAFETY: the asserts above guarantee that A (rows x dim, strides dim/1),
    // B = distractors^T (dim x cols, strides 1/dim) and C (rows x cols, strides cols/1) lie
    // inside their slices, and `out` does not alias the inputs.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            dim,
            cols,
            1.0,
            probes.as_ptr(),
            dim as isize,
            1,
            distractors.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            cols as isize,
            1,
        );
    }
}
