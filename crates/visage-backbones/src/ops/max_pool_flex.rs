//! The `Autodiff<Flex>` kernel of [`super::max_pool2d`]: 2-D max pooling (f32, contiguous
//! row-major planes, rayon over the `n c` planes), the argmax of each window kept as a `u32`
//! index inside its plane for the backward.
//!
//! The forward takes each window's first element in row-major order and replaces it only
//! by a strictly greater one, as burn-flex's `max_pool2d_with_indices` does, so the value and
//! the position the gradient goes to are burn-flex's (ties included). burn-flex writes a
//! value and an `i64` index per output through bounds-checked strided loops; most of its time
//! on LeNets++ was there.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex::{filled, flex_f32, from_prim, is_ad_flex, to_prim};

/// No element of the window lies inside the plane (only with padding of a kernel's size).
const NONE: u32 = u32::MAX;

/// Geometry of a dilation-1, floor-mode max pool with symmetric padding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

/// Input indices `lo..hi` (within `0..len`) of window `o` (stride `s`, kernel `k`, padding
/// `p`).
fn window(o: usize, s: usize, k: usize, p: usize, len: usize) -> (usize, usize) {
    let start = o * s;
    (
        (start.max(p) - p).min(len),
        (start + k).saturating_sub(p).min(len),
    )
}

/// Planes handed to one rayon task (about 16k outputs).
fn planes_per_task(per_plane: usize) -> usize {
    16_384usize.div_ceil(per_plane.max(1))
}

/// The max pool forward on raw buffers: `x` `[planes, h, w]`; returns `y` `[planes, ho, wo]`
/// and, per output, the index inside its plane of the element it took (`u32::MAX`: none).
pub(crate) fn max_pool2d_forward_f32(g: &PoolGeom, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let (plane_in, plane_out) = (g.h * g.w, g.ho * g.wo);
    let mut y = filled(g.planes * plane_out, 0.0f32);
    let mut idx = filled(g.planes * plane_out, NONE);
    if plane_out == 0 {
        return (y, idx);
    }
    let rows: Vec<(usize, usize)> = (0..g.ho)
        .map(|o| window(o, g.sh, g.kh, g.ph, g.h))
        .collect();
    let cols: Vec<(usize, usize)> = (0..g.wo)
        .map(|o| window(o, g.sw, g.kw, g.pw, g.w))
        .collect();
    y.par_chunks_mut(plane_out)
        .zip(idx.par_chunks_mut(plane_out))
        .enumerate()
        .with_min_len(planes_per_task(plane_out))
        .for_each(|(pl, (yp, ip))| {
            let xp = &x[pl * plane_in..(pl + 1) * plane_in];
            for (oy, &(y0, y1)) in rows.iter().enumerate() {
                let yr = &mut yp[oy * g.wo..(oy + 1) * g.wo];
                let ir = &mut ip[oy * g.wo..(oy + 1) * g.wo];
                for ((yv, iv), &(x0, x1)) in yr.iter_mut().zip(ir.iter_mut()).zip(&cols) {
                    if y0 >= y1 || x0 >= x1 {
                        (*yv, *iv) = (f32::NEG_INFINITY, NONE);
                        continue;
                    }
                    // The window's first element, then each later one taken only when
                    // strictly greater, as selects: maxima of random data are an
                    // unpredictable branch (it cost burn-flex's loop as much as the rest).
                    let first = y0 * g.w + x0;
                    let (mut best, mut at) = (xp[first], first as u32);
                    for iy in y0..y1 {
                        let row = &xp[iy * g.w..(iy + 1) * g.w];
                        for (ix, &v) in row[x0..x1].iter().enumerate() {
                            let gt = v > best;
                            best = if gt { v } else { best };
                            at = if gt { (iy * g.w + x0 + ix) as u32 } else { at };
                        }
                    }
                    *yv = best;
                    *iv = at;
                }
            }
        });
    (y, idx)
}

/// The max pool backward: each output gradient added to the input it took.
pub(crate) fn max_pool2d_backward_f32(g: &PoolGeom, idx: &[u32], grad: &[f32]) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.ho * g.wo);
    let mut dx = filled(g.planes * plane_in, 0.0f32);
    if plane_in == 0 || plane_out == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane_in)
        .enumerate()
        .with_min_len(planes_per_task(plane_out))
        .for_each(|(pl, dp)| {
            let r = pl * plane_out..(pl + 1) * plane_out;
            for (&i, &gv) in idx[r.clone()].iter().zip(&grad[r]) {
                if i != NONE {
                    dp[i as usize] += gv;
                }
            }
        });
    dx
}

#[derive(Debug)]
struct MaxPoolOp;

impl Backward<Flex, 1> for MaxPoolOp {
    /// The argmax indices, the geometry, the input's shape.
    type State = (Arc<Vec<u32>>, PoolGeom, [usize; 4]);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (idx, g, shape) = ops.state;
        if let Some(node) = node {
            let dx = max_pool2d_backward_f32(&g, &idx, grad.storage::<f32>());
            grads.register::<Flex>(node.id, flex_f32(dx, &shape));
        }
    }
}

/// The max pool on `Autodiff<Flex>`, or `x` back when `B` is another backend or the pool is
/// outside what the kernel covers (dilation, ceil mode, asymmetric or "same" padding, not
/// f32).
pub(super) fn max_pool2d<B: Backend>(
    pool: &MaxPool2d,
    x: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if !is_ad_flex::<B>() || pool.dilation != [1, 1] || pool.ceil_mode {
        return Err(x);
    }
    let (ph, pw) = match pool.padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            (top, left)
        }
        _ => return Err(x),
    };
    let [n, c, h, w] = x.dims();
    let [kh, kw] = pool.kernel_size;
    let [sh, sw] = pool.stride;
    if x.dtype() != DType::F32
        || kh == 0
        || kw == 0
        || sh == 0
        || sw == 0
        || h + 2 * ph < kh
        || w + 2 * pw < kw
        || h * w > NONE as usize
    {
        return Err(x); // Burn's op reports the error
    }
    let g = PoolGeom {
        planes: n * c,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        ho: (h + 2 * ph - kh) / sh + 1,
        wo: (w + 2 * pw - kw) / sw + 1,
    };
    let x = to_prim(x);
    let run = |x: &FlexTensor| {
        let xc = x.to_contiguous();
        max_pool2d_forward_f32(&g, xc.storage::<f32>())
    };
    let shape = [n, c, g.ho, g.wo];
    let out = match MaxPoolOp
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, idx) = run(&x.primitive);
            prep.finish((Arc::new(idx), g, [n, c, h, w]), flex_f32(y, &shape))
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_f32(run(&x.primitive).0, &shape)),
    };
    Ok(from_prim(out))
}
