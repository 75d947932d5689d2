//! The cosine-margin softmax cross-entropy as one autodiff node on `Autodiff<Flex>`, the CPU
//! training backend (feature `fast-cpu`): forward and backward written over the raw f32
//! buffers, class block by class block, with gemm's GEMMs and rayon over rows.
//!
//! The loss is the one of the full heads (NormFace with a fixed scale, CosFace, ArcFace, the
//! combined margin, sub-center ArcFace with `k = 1`):
//!
//! ```text
//! L = 1/N sum_i [ lse_i - s phi_i ],   lse_i = log( exp(s phi_i) + sum_{j != y_i} exp(s c_ij) ),
//! c_ij = xh_i . w_j / |w_j|,           phi_i = phi(c_{i,y_i})  (the head's margin function)
//! ```
//!
//! with `xh` the L2-normalised embeddings (normalised through autodiff before this node: the
//! node's inputs are `xh [N, d]` and the raw class weights `W [C, d]`).
//!
//! - Forward, per block of classes: normalise the block's weight rows, one GEMM for its
//!   scaled cosines `s xh W_b^T`, the target entries replaced by `s phi_i`, and a running
//!   (max, sum) log-sum-exp per row. One block (the full head): the `[N, C]` logits are kept
//!   (they are the head's training logits) with the normalised weights, for the backward.
//! - Backward (upstream gradient `g` of the scalar): per block, `G_ij = g s/N p_ij` with
//!   `p_ij = exp(z_ij - lse_i)`, and at the target `g s/N (p_iy - 1) phi'_i` (the margin's
//!   slope), so both GEMMs carry the target path too: `dL/dxh += G_b W^_b` and `dL/dW^_b =
//!   G_b^T xh`, taken back through the row normalisation in place, `dW_j = (dW^_j - w^_j
//!   <w^_j, dW^_j>) / |w_j|`, 0 for rows whose largest magnitude is below
//!   [`crate::ops::NORM_EPS`] (the convention of [`crate::ops::l2_normalize`]). Several blocks:
//!   each block's cosines are computed again (one GEMM more), and what is held beyond the
//!   weights and their gradient is `O(N x block + block x d)`.
//!
//! The target cosines `c_iy` and the margin are computed before the node: `phi_i` and its
//! slope `phi'_i` come from the head's own margin function run through autodiff on the `[N]`
//! target cosines, so the fallback, easy margin and `detach_margin` are honoured as in the
//! composite heads.

use std::any::TypeId;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Int, Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::ops::NORM_EPS;

/// The CPU training backend this node runs on.
pub(crate) type Ad = Autodiff<Flex>;

/// Whether the node is on: `B` is `Autodiff<Flex>` and `VISAGE_FAST_CPU` does not switch it
/// off (`off`, or a list of the fast ops that leaves out `head`).
pub(crate) fn available<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Ad>() && enabled()
}

fn enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let s = std::env::var("VISAGE_FAST_CPU")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match s.as_str() {
            "" | "on" | "all" => true,
            "off" | "none" | "0" => false,
            list => list.split(',').any(|x| x.trim() == "head"),
        }
    })
}

/// Moves `a` into a `T` when `A` and `T` are the same type.
fn cast<A: 'static, T: 'static>(a: A) -> Result<T, A> {
    use std::any::Any;
    let mut slot = Some(a);
    if let Some(t) = (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>() {
        return Ok(t.take().expect("filled above"));
    }
    Err(slot.expect("not taken"))
}

fn to_ad<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<Ad, D> {
    cast(t).unwrap_or_else(|_| unreachable!("checked B == Autodiff<Flex>"))
}

fn from_ad<B: Backend, const D: usize>(t: Tensor<Ad, D>) -> Tensor<B, D> {
    cast(t).unwrap_or_else(|_| unreachable!("checked B == Autodiff<Flex>"))
}

/// What the fused loss returns: the mean loss `[1]` and, without blocks, the training logits
/// `[N, C]` (scaled, margin on the target; no gradient flows through them).
pub(crate) struct FusedLoss<B: Backend> {
    pub loss: Tensor<B, 1>,
    pub logits: Option<Tensor<B, 2>>,
}

/// The cosine-margin cross-entropy of normalised embeddings `x_hat` `[N, d]` against raw
/// class weights `weight` `[C, d]` (one row per class), over blocks of `block` classes
/// (`None`: one block, and the logits are returned; set, no logits). `margin` maps target cosines `[N, 1]`
/// to the margined target cosine (unscaled), on `Autodiff<Flex>`.
///
/// Gives the inputs back (`Err`) where the node does not apply: `B` is not `Autodiff<Flex>`
/// (or the node is switched off), a tensor is not f32, the shapes disagree, the batch is
/// empty, or a label lies outside `[0, C)`; the caller then runs the composite ops, which
/// report the error if there is one.
///
/// # Shapes
/// - `x_hat`: `[N, d]`, `weight`: `[C, d]`, `labels`: `[N]` -> loss `[1]`, logits `[N, C]`
#[allow(clippy::type_complexity)]
pub(crate) fn cosine_margin_cross_entropy<B: Backend>(
    x_hat: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    scale: f64,
    block: Option<usize>,
    margin: impl FnOnce(Tensor<Ad, 2>) -> Tensor<Ad, 2>,
) -> Result<FusedLoss<B>, (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 1, Int>)> {
    let back = |x, w, l| Err((x, w, l));
    if !available::<B>() || x_hat.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return back(x_hat, weight, labels);
    }
    let [n, d] = x_hat.dims();
    let [c, dw] = weight.dims();
    if n == 0 || c == 0 || d != dw || labels.dims()[0] != n || block == Some(0) {
        return back(x_hat, weight, labels);
    }
    let label_values = match labels.to_data().convert::<i64>().into_vec::<i64>() {
        Ok(v) if v.iter().all(|&y| y >= 0 && (y as u64) < c as u64) => {
            v.into_iter().map(|y| y as usize).collect::<Vec<_>>()
        }
        _ => return back(x_hat, weight, labels),
    };
    let want_logits = block.is_none();
    let block = block.unwrap_or(c).min(c);
    // One block: the logits and the normalised weights are kept for the backward.
    let keep = block == c;

    let x_hat = to_ad(x_hat).into_primitive().tensor();
    let weight = to_ad(weight).into_primitive().tensor();
    let xs = x_hat.primitive.to_contiguous();
    let ws = weight.primitive.to_contiguous();

    // Target cosines, then the margin and its slope through autodiff on [N, 1].
    let target: Vec<f32> = {
        let (x, w) = (xs.storage::<f32>(), ws.storage::<f32>());
        (0..n)
            .into_par_iter()
            .map(|i| {
                let y = label_values[i];
                let row = &w[y * d..(y + 1) * d];
                (dot(&x[i * d..(i + 1) * d], row) * row_scale(row).factor) as f32
            })
            .collect()
    };
    let (phi, slope) = margin_and_slope(&target, margin);

    let problem = Problem {
        n,
        d,
        c,
        block,
        scale: scale as f32,
        labels: label_values,
        phi,
        slope,
    };
    let forward = forward(&problem, xs.storage::<f32>(), ws.storage::<f32>(), keep);
    let loss = FlexTensor::from_data(TensorData::new(vec![forward.loss as f32], [1]));
    let logits = forward
        .kept
        .as_ref()
        .filter(|_| want_logits)
        .map(|k| k.logits.clone());

    let out = match CosineCeOp
        .prepare::<NoCheckpointing>([x_hat.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            Arc::new(Saved {
                problem,
                x: xs,
                w: ws,
                lse: forward.lse,
                kept: forward.kept,
            }),
            loss,
        ),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    let loss = Tensor::<Ad, 1>::from_primitive(TensorPrimitive::Float(out));
    let logits = logits.map(|l| {
        Tensor::<Ad, 2>::from_primitive(TensorPrimitive::Float(
            <Ad as AutodiffBackend>::from_inner(l),
        ))
    });
    Ok(FusedLoss {
        loss: from_ad(loss),
        logits: logits.map(from_ad),
    })
}

/// `phi(t)` and `phi'(t)` of the target cosines, the margin run through autodiff on a leaf.
fn margin_and_slope(
    target: &[f32],
    margin: impl FnOnce(Tensor<Ad, 2>) -> Tensor<Ad, 2>,
) -> (Vec<f32>, Vec<f32>) {
    let n = target.len();
    let device = Default::default();
    let t = Tensor::<Ad, 2>::from_data(TensorData::new(target.to_vec(), [n, 1]), &device)
        .require_grad();
    let phi = margin(t.clone());
    let grads = phi.clone().sum().backward();
    let values = |x: TensorData| -> Vec<f32> {
        x.convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_else(|e| panic!("f32 data read back as f32: {e:?}"))
    };
    // No gradient at all: the margin ignores the cosine (a constant target).
    let slope = t
        .grad(&grads)
        .map(|g| values(g.into_data()))
        .unwrap_or_else(|| vec![0.0; n]);
    (values(phi.into_data()), slope)
}

/// The sizes and the per-row constants of one call.
#[derive(Debug)]
struct Problem {
    n: usize,
    d: usize,
    c: usize,
    block: usize,
    scale: f32,
    labels: Vec<usize>,
    /// Margined target cosines (unscaled).
    phi: Vec<f32>,
    /// Their slope in the target cosine.
    slope: Vec<f32>,
}

impl Problem {
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.c)
            .step_by(self.block)
            .map(|j0| (j0, (j0 + self.block).min(self.c)))
    }

    /// The scaled logits `[N, j1 - j0]` of a block from its normalised weights, targets
    /// replaced by `s phi_i`.
    fn logits(&self, x: &[f32], w_hat: &[f32], (j0, j1): (usize, usize), z: &mut [f32]) {
        let nb = j1 - j0;
        // z (N x nb) = s * x (N x d) . w_hat^T (d x nb)
        sgemm(
            self.n, nb, self.d, z, false, self.scale, x, 1, self.d, w_hat, self.d, 1,
        );
        for (i, &y) in self.labels.iter().enumerate() {
            if (j0..j1).contains(&y) {
                z[i * nb + y - j0] = self.scale * self.phi[i];
            }
        }
    }
}

/// What the forward keeps for the backward of a one-block call.
struct Kept {
    /// `[N, C]`, shared with the returned training logits.
    logits: FlexTensor,
    w_hat: Vec<f32>,
    norms: Vec<RowScale>,
}

struct Forward {
    loss: f64,
    lse: Vec<f32>,
    kept: Option<Kept>,
}

/// Row normalisation constants of one weight row.
#[derive(Clone, Copy, Debug)]
struct RowScale {
    /// `w_hat / w`.
    factor: f64,
    /// `1 / |w|` in the gradient: the same factor, or 0 for a row treated as zero (no
    /// gradient).
    grad: f64,
}

/// `w_hat = (w / m) / sqrt(max(sum (w / m)^2, 1))` with `m = max(max |w_k|, NORM_EPS)`, as
/// [`crate::ops::l2_normalize`] (squares of `w / m` cannot overflow); no gradient when
/// `max |w_k| < NORM_EPS`.
fn row_scale(w: &[f32]) -> RowScale {
    let top = lanes(w, 0.0f32, |a, v| a.max(v.abs()), f32::max) as f64;
    let m = top.max(NORM_EPS);
    let inv = (1.0 / m) as f32;
    let s = sum(w, |v| (v * inv) * (v * inv)).max(1.0);
    let factor = 1.0 / (m * s.sqrt());
    RowScale {
        factor,
        grad: if top < NORM_EPS { 0.0 } else { factor },
    }
}

/// Folds `v` in 8 independent lanes (so that the loop vectorises), then the lanes together.
#[inline(always)]
fn lanes(
    v: &[f32],
    init: f32,
    f: impl Fn(f32, f32) -> f32,
    merge: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = f(acc[k], c[k]);
        }
    }
    let lanes = acc.into_iter().fold(init, &merge);
    tail.iter().fold(lanes, |a, &x| f(a, x))
}

/// `sum_k f(v_k)`: f32 lanes over 256 elements at a time, added up in f64.
#[inline(always)]
fn sum(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    v.chunks(256)
        .map(|c| lanes(c, 0.0, |a, x| a + f(x), |a, b| a + b) as f64)
        .sum()
}

/// `sum_k a_k b_k`, as [`sum`].
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.chunks(256)
        .zip(b.chunks(256))
        .map(|(a, b)| {
            let mut acc = [0.0f32; 8];
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let tail: f32 = ca
                .remainder()
                .iter()
                .zip(cb.remainder())
                .map(|(x, y)| x * y)
                .sum();
            for (x, y) in ca.zip(cb) {
                for k in 0..8 {
                    acc[k] += x[k] * y[k];
                }
            }
            (acc.iter().sum::<f32>() + tail) as f64
        })
        .sum()
}

/// `exp(x)` in f32, within a few ulp for `x <= 88` (below -87 it gives about 1.6e-38, not
/// 0: nothing here adds such a term to anything smaller than 1). Branch-free, so loops over
/// rows vectorise: `2^k exp(r)` with `k = round(x / ln 2)`, `r = x - k ln 2` (ln 2 in two
/// parts, Cody and Waite), `exp(r)` on `|r| <= ln 2 / 2` by a degree-7 polynomial (Cephes's
/// coefficients).
#[inline(always)]
fn exp32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    // ln 2 = 0.693359375 (355 / 512, exact) - 2.12194440e-4.
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    let ki = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    e * f32::from_bits(((ki + 127) << 23) as u32)
}

/// Normalised rows `j0..j1` of `w` into `out` `[(j1 - j0), d]`; returns their scales.
fn normalize_rows(w: &[f32], d: usize, (j0, j1): (usize, usize), out: &mut [f32]) -> Vec<RowScale> {
    out.par_chunks_mut(d)
        .zip(w[j0 * d..j1 * d].par_chunks(d))
        .with_min_len(64)
        .map(|(o, row)| {
            let scale = row_scale(row);
            let factor = scale.factor as f32;
            for (o, &v) in o.iter_mut().zip(row) {
                *o = v * factor;
            }
            scale
        })
        .collect()
}

fn forward(p: &Problem, x: &[f32], w: &[f32], keep: bool) -> Forward {
    let (n, d) = (p.n, p.d);
    let mut max = vec![f32::NEG_INFINITY; n];
    let mut total = vec![0.0f64; n];
    let mut w_hat = Vec::new();
    let mut z = Vec::new();
    let mut norms = Vec::new();
    for (j0, j1) in p.blocks() {
        let nb = j1 - j0;
        w_hat.resize(nb * d, 0.0);
        z.resize(n * nb, 0.0);
        norms = normalize_rows(w, d, (j0, j1), &mut w_hat);
        p.logits(x, &w_hat, (j0, j1), &mut z);
        max.par_iter_mut()
            .zip(total.par_iter_mut())
            .zip(z.par_chunks(nb))
            .for_each(|((m, s), row)| {
                let top = lanes(row, f32::NEG_INFINITY, f32::max, f32::max);
                let new = m.max(top);
                let old = if *s == 0.0 {
                    0.0
                } else {
                    *s * ((*m - new) as f64).exp()
                };
                *s = old + sum(row, |v| exp32(v - new));
                *m = new;
            });
    }
    let lse: Vec<f32> = max
        .iter()
        .zip(&total)
        .map(|(&m, &s)| (m as f64 + s.ln()) as f32)
        .collect();
    let loss = lse
        .iter()
        .zip(&p.phi)
        .map(|(&l, &phi)| l as f64 - p.scale as f64 * phi as f64)
        .sum::<f64>()
        / n as f64;
    Forward {
        loss,
        lse,
        kept: keep.then(|| Kept {
            logits: FlexTensor::from_data(TensorData::new(z, [n, p.c])),
            w_hat,
            norms,
        }),
    }
}

/// What the node holds for its backward.
struct Saved {
    problem: Problem,
    x: FlexTensor,
    w: FlexTensor,
    lse: Vec<f32>,
    kept: Option<Kept>,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("n", &self.problem.n)
            .field("d", &self.problem.d)
            .field("c", &self.problem.c)
            .field("block", &self.problem.block)
            .finish()
    }
}

#[derive(Debug)]
struct CosineCeOp;

impl Backward<Flex, 2> for CosineCeOp {
    type State = Arc<Saved>;

    fn backward(self, ops: Ops<Arc<Saved>, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let upstream = grads.consume::<Flex>(&ops.node).to_contiguous();
        let g = upstream.storage::<f32>()[0];
        let saved = &*ops.state;
        let (dx, dw) = backward(saved, g, [node_x.is_some(), node_w.is_some()]);
        let p = &saved.problem;
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(TensorData::new(dx, [p.n, p.d])),
            );
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(TensorData::new(dw, [p.c, p.d])),
            );
        }
    }
}

/// Gradients of `g L` with respect to `x_hat` and `W` (each only if asked).
fn backward(s: &Saved, g: f32, need: [bool; 2]) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let p = &s.problem;
    let (n, d) = (p.n, p.d);
    let x = s.x.storage::<f32>();
    let w = s.w.storage::<f32>();
    let coefficient = g as f64 * p.scale as f64 / n as f64;
    let mut dx = vec![0.0f32; if need[0] { n * d } else { 0 }];
    let mut dw = vec![0.0f32; if need[1] { p.c * d } else { 0 }];
    let mut w_hat_scratch = Vec::new();
    let mut z_scratch = Vec::new();
    let mut norms_scratch: Vec<RowScale>;
    let mut grad = Vec::new();
    for (j0, j1) in p.blocks() {
        let nb = j1 - j0;
        let (w_hat, z, norms): (&[f32], &[f32], &[RowScale]) = match &s.kept {
            Some(k) => (&k.w_hat, k.logits.storage::<f32>(), &k.norms),
            None => {
                w_hat_scratch.resize(nb * d, 0.0);
                z_scratch.resize(n * nb, 0.0);
                norms_scratch = normalize_rows(w, d, (j0, j1), &mut w_hat_scratch);
                p.logits(x, &w_hat_scratch, (j0, j1), &mut z_scratch);
                (&w_hat_scratch, &z_scratch, &norms_scratch)
            }
        };
        // G (N x nb): dL/dc of every cosine of the block.
        grad.resize(n * nb, 0.0f32);
        grad.par_chunks_mut(nb)
            .zip(z.par_chunks(nb))
            .enumerate()
            .for_each(|(i, (gr, zr))| {
                let lse = s.lse[i];
                let c32 = coefficient as f32;
                for (gv, &zv) in gr.iter_mut().zip(zr) {
                    *gv = c32 * exp32(zv - lse);
                }
                let y = p.labels[i];
                if (j0..j1).contains(&y) {
                    let p_target = ((zr[y - j0] - lse) as f64).exp();
                    gr[y - j0] = (coefficient * (p_target - 1.0) * p.slope[i] as f64) as f32;
                }
            });
        if need[0] {
            // dx (N x d) += G (N x nb) . w_hat (nb x d)
            sgemm(n, d, nb, &mut dx, j0 > 0, 1.0, &grad, 1, nb, w_hat, 1, d);
        }
        if need[1] {
            let dwb = &mut dw[j0 * d..j1 * d];
            // dW^_b (nb x d) = G^T (nb x N) . x (N x d)
            sgemm(nb, d, n, dwb, false, 1.0, &grad, nb, 1, x, 1, d);
            dwb.par_chunks_mut(d)
                .zip(w_hat.par_chunks(d))
                .zip(norms.par_iter())
                .with_min_len(64)
                .for_each(|((gr, wr), scale)| {
                    if scale.grad == 0.0 {
                        gr.fill(0.0);
                        return;
                    }
                    let along = dot(gr, wr) as f32;
                    let inv = scale.grad as f32;
                    for (gv, &wv) in gr.iter_mut().zip(wr) {
                        *gv = (*gv - wv * along) * inv;
                    }
                });
        }
    }
    (need[0].then_some(dx), need[1].then_some(dw))
}

/// `dst (m x n) = [dst +] alpha lhs (m x k) . rhs (k x n)`, row-major `dst`; operand strides
/// in elements (column, row). Threads: rayon's.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    alpha: f32,
    lhs: &[f32],
    lhs_cs: usize,
    lhs_rs: usize,
    rhs: &[f32],
    rhs_cs: usize,
    rhs_rs: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(n == 0 || k == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts keep every index gemm reads or writes inside the slices; dst does
    // not alias lhs or rhs (a `&mut` and two `&`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

#[cfg(test)]
mod tests {
    /// `exp32` against f64's `exp` of the same f32 input over its whole range.
    #[test]
    fn exp32_is_within_a_few_ulp_of_exp() {
        let mut worst = 0.0f64;
        for i in 0..=175_000 {
            let x = (-87.0 + i as f64 * 1e-3) as f32;
            let want = (x as f64).exp();
            let got = super::exp32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4e-7, "largest relative error {worst:e}");
        // Below the range: about 0 next to the terms of a log-sum-exp (>= 1).
        assert!(super::exp32(-1e30) < 1e-37 && super::exp32(f32::MIN) >= 0.0);
    }
}
