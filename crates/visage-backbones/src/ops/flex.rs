//! The `Autodiff<Flex>` kernels of [`super::conv2d`], [`super::prelu`] and
//! [`super::batch_norm`] (f32, contiguous
//! row-major buffers, rayon over the batch).

use std::any::TypeId;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PRelu, PaddingConfig2d};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::downcast as cast;

type Ad = Autodiff<Flex>;
type AdPrim = burn::tensor::ops::FloatTensor<Ad>;

pub(super) fn is_ad_flex<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Ad>()
}

pub(super) fn to_prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> AdPrim {
    let t: Tensor<Ad, D> = cast(t).unwrap_or_else(|_| unreachable!("checked B == Autodiff<Flex>"));
    t.into_primitive().tensor()
}

pub(super) fn from_prim<B: Backend, const D: usize>(p: AdPrim) -> Tensor<B, D> {
    let t = Tensor::<Ad, D>::from_primitive(TensorPrimitive::Float(p));
    cast(t).unwrap_or_else(|_| unreachable!("checked B == Autodiff<Flex>"))
}

/// A contiguous f32 tensor of `shape` from `data`.
pub(super) fn flex_f32(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, Shape::from(shape.to_vec())))
}

/// A vector of `n` copies of `v`, filled by rayon's threads in chunks.
///
/// The kernels' outputs are tens of MB a step: `vec![0.0; n]` zeroes them (and takes the
/// page faults of fresh memory) on the calling thread while the other threads wait, which
/// was about a tenth of a LeNets++ step's wall time.
pub(super) fn filled<T: Copy + Send + Sync>(n: usize, v: T) -> Vec<T> {
    const PER_TASK: usize = 1 << 16;
    let mut out: Vec<T> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(PER_TASK)
        .for_each(|c| {
            for e in c {
                e.write(v);
            }
        });
    // SAFETY: the loop above wrote each of the first n elements.
    unsafe { out.set_len(n) };
    out
}

/// The transpose `[cols, rows]` of the row-major `a` `[rows, cols]`, in tiles of 16 x 16,
/// bands of 16 output rows spread over rayon's threads. A tile reads 16 short runs of `a`
/// and writes 16 output runs of 16 contiguous values (one cache line each): writing one
/// value per output row instead (32 rows at a time) put every store in a few cache sets
/// when a row is a multiple of 2 KB (sphere4's 512-channel weights), about 6 % of its step.
/// The conv backward transposes weight-sized matrices twice a call.
pub(super) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const T: usize = 16;
    debug_assert_eq!(a.len(), rows * cols);
    let mut out = filled(rows * cols, 0.0f32);
    if rows == 0 || cols == 0 {
        return out;
    }
    // Output row band c0..c0 + T (input columns c0..c0 + T).
    out.par_chunks_mut(T * rows)
        .enumerate()
        .for_each(|(band, ob)| {
            let c0 = band * T;
            let nc = ob.len() / rows;
            for r0 in (0..rows).step_by(T) {
                let r1 = (r0 + T).min(rows);
                for c in 0..nc {
                    let src = &a[r0 * cols + c0 + c..];
                    for (i, d) in ob[c * rows + r0..c * rows + r1].iter_mut().enumerate() {
                        *d = src[i * cols];
                    }
                }
            }
        });
    out
}

/// Images handed to one rayon task (a few per thread, for balance on a busy machine).
pub(super) fn per_task(n: usize) -> usize {
    n.div_ceil(2 * rayon::current_num_threads()).max(1)
}

// ---------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------

/// Geometry of a groups-1, dilation-1 2-D convolution with symmetric padding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// Output columns `ox` whose input column `ox * sw + kj - pw` lies in `0..w`.
    fn ox_range(&self, kj: usize) -> (usize, usize) {
        valid_range(self.wo, self.sw, kj, self.pw, self.w)
    }
    fn oy_range(&self, ki: usize) -> (usize, usize) {
        valid_range(self.ho, self.sh, ki, self.ph, self.h)
    }
}

/// `o` in `lo..hi` (within `0..out`) such that `0 <= o * s + k - p < len`.
fn valid_range(out: usize, s: usize, k: usize, p: usize, len: usize) -> (usize, usize) {
    // o * s + k >= p  <=>  o >= ceil((p - k) / s)
    let lo = if p > k { (p - k).div_ceil(s) } else { 0 };
    // o * s + k - p <= len - 1  <=>  o <= (len - 1 + p - k) / s
    let hi = if len + p > k {
        ((len - 1 + p - k) / s + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

impl ConvGeom {
    /// Stride 1 and output rows as wide as input rows (`kw = 2 pw + 1`, "same" width): then
    /// the valid rows of one kernel offset's im2col row are the input channel shifted by one
    /// constant, so they move as one contiguous block, and only the padded columns at each
    /// row's ends need fixing (see [`shifted_block`]).
    fn same_width_stride_1(&self) -> bool {
        self.sh == 1 && self.sw == 1 && self.wo == self.w
    }
}

/// For a stride-1, same-width convolution and kernel offset `(ki, kj)`: the output rows
/// `oy0..oy1` whose input row is inside the image, the input index `base` that output
/// position `oy0 * w` reads (`(oy0 + ki - ph) w + kj - pw`, possibly negative), and the
/// part `lo..hi` of those rows' `(oy1 - oy0) w` positions whose shifted index lies inside the
/// channel (the rest are padding columns at the first and last rows; `lo == hi` when none
/// is, and only then can `base + lo` be negative).
fn shifted_block(g: &ConvGeom, ki: usize, kj: usize) -> (usize, usize, isize, usize, usize) {
    let (oy0, oy1) = g.oy_range(ki);
    if oy0 >= oy1 {
        return (oy0, oy0, 0, 0, 0);
    }
    let base = ((oy0 + ki - g.ph) * g.w) as isize + kj as isize - g.pw as isize;
    let len = ((oy1 - oy0) * g.w) as isize;
    let lo = (-base).clamp(0, len);
    let hi = ((g.h * g.w) as isize - base).clamp(lo, len);
    (oy0, oy1, base, lo as usize, hi as usize)
}

/// Where one kernel offset `(ki, kj)` of a stride-1, same-width convolution reads: the
/// valid output columns `ox0..ox1` and [`shifted_block`]'s `(oy0, oy1, base, lo, hi)`.
#[derive(Clone, Copy)]
struct Shift {
    ox0: usize,
    ox1: usize,
    oy0: usize,
    oy1: usize,
    base: isize,
    lo: usize,
    hi: usize,
}

/// [`Shift`] of every kernel offset, `ki`-major (the same for every channel, so computed
/// once per image rather than per im2col row: its divisions showed in profiles).
fn shifts(g: &ConvGeom) -> Vec<Shift> {
    let mut v = Vec::with_capacity(g.kh * g.kw);
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let (ox0, ox1) = g.ox_range(kj);
            let (oy0, oy1, base, lo, hi) = shifted_block(g, ki, kj);
            v.push(Shift {
                ox0,
                ox1,
                oy0,
                oy1,
                base,
                lo,
                hi,
            });
        }
    }
    v
}

/// Zeroes columns `0..ox0` and `ox1..w` of every row of `block` (rows of `w`), column by
/// column: a strided store per entry, where row-wise fills of one or two entries would each be
/// a `memset` call.
fn zero_columns(block: &mut [f32], w: usize, ox0: usize, ox1: usize) {
    for ox in (0..ox0.min(w)).chain(ox1.max(ox0).min(w)..w) {
        for v in block.iter_mut().skip(ox).step_by(w) {
            *v = 0.0;
        }
    }
}

/// Output positions per image up to which im2col gathers through an index table.
const GATHER_MAX_POSITIONS: usize = 16;

/// [`gather_table`]'s mark of a position that reads padding.
const GATHER_PAD: u32 = u32::MAX;

/// For each kernel offset `t = ki * kw + kj` and output position `q = oy * wo + ox`, the
/// index in its input channel that im2col row `t` reads at `q`, or [`GATHER_PAD`].
fn gather_table(g: &ConvGeom) -> Vec<u32> {
    let p = g.p();
    let mut table = Vec::with_capacity(g.kh * g.kw * p);
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            for oy in 0..g.ho {
                let iy = (oy * g.sh + ki) as isize - g.ph as isize;
                for ox in 0..g.wo {
                    let ix = (ox * g.sw + kj) as isize - g.pw as isize;
                    let inside = (0..g.h as isize).contains(&iy) && (0..g.w as isize).contains(&ix);
                    table.push(if inside {
                        (iy as usize * g.w + ix as usize) as u32
                    } else {
                        GATHER_PAD
                    });
                }
            }
        }
    }
    table
}

/// im2col of one image `x` `[cin, h, w]` into the columns `off..off + ho * wo` of `col`
/// `[cin * kh * kw, ld]`.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32], ld: usize, off: usize) {
    let p = g.p();
    if p <= GATHER_MAX_POSITIONS {
        // Small maps (sphere nets' 4x4 and 2x2 stages): rows of a few entries, where the
        // block path's handful of memset / memcpy calls per row cost more than the data; one
        // gather through a per-offset index table instead (sphere4 about 5 % less CPU time;
        // up to 64 positions it also took LeNets++'s 7x7 maps and cost it 8 %).
        let table = gather_table(g);
        let khw = g.kh * g.kw;
        let plane = g.h * g.w;
        for c in 0..g.cin {
            let xc = &x[c * plane..(c + 1) * plane];
            for t in 0..khw {
                let row = &mut col[(c * khw + t) * ld + off..][..p];
                for (v, &i) in row.iter_mut().zip(&table[t * p..(t + 1) * p]) {
                    *v = if i == GATHER_PAD { 0.0 } else { xc[i as usize] };
                }
            }
        }
        return;
    }
    if g.same_width_stride_1() {
        // Per row: one block copy of the shifted channel, then the padding zeroed.
        let table = shifts(g);
        let w = g.w;
        for c in 0..g.cin {
            let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for (t, sh) in table.iter().enumerate() {
                let row = &mut col[(c * table.len() + t) * ld + off..][..p];
                row[..sh.oy0 * w].fill(0.0);
                row[sh.oy1 * w..].fill(0.0);
                let block = &mut row[sh.oy0 * w..sh.oy1 * w];
                block[..sh.lo].fill(0.0);
                block[sh.hi..].fill(0.0);
                if sh.lo < sh.hi {
                    let s0 = (sh.base + sh.lo as isize) as usize;
                    block[sh.lo..sh.hi].copy_from_slice(&xc[s0..s0 + (sh.hi - sh.lo)]);
                }
                zero_columns(block, w, sh.ox0, sh.ox1);
            }
        }
        return;
    }
    for c in 0..g.cin {
        let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy0, oy1) = g.oy_range(ki);
            for kj in 0..g.kw {
                let row = &mut col[((c * g.kh + ki) * g.kw + kj) * ld + off..][..p];
                let (ox0, ox1) = g.ox_range(kj);
                for oy in 0..g.ho {
                    let out = &mut row[oy * g.wo..(oy + 1) * g.wo];
                    if oy < oy0 || oy >= oy1 || ox0 >= ox1 {
                        out.fill(0.0);
                        continue;
                    }
                    let iy = oy * g.sh + ki - g.ph;
                    let xr = &xc[iy * g.w..(iy + 1) * g.w];
                    out[..ox0].fill(0.0);
                    out[ox1..].fill(0.0);
                    let ix0 = ox0 * g.sw + kj - g.pw;
                    if g.sw == 1 {
                        out[ox0..ox1].copy_from_slice(&xr[ix0..ix0 + (ox1 - ox0)]);
                    } else {
                        for (o, v) in out[ox0..ox1].iter_mut().enumerate() {
                            *v = xr[ix0 + o * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// col2im of the columns `off..off + ho * wo` of `col` `[cin * kh * kw, ld]`, added into
/// one image `dx` `[cin, h, w]`. For a stride-1, same-width convolution the padding entries
/// of `col` are zeroed on the way (they are gradients of padding, dropped), so that each
/// kernel offset adds as one contiguous block.
fn col2im_add(g: &ConvGeom, col: &mut [f32], ld: usize, off: usize, dx: &mut [f32]) {
    let p = g.p();
    if p <= GATHER_MAX_POSITIONS {
        // Small maps: one scatter-add through im2col's index table (see `im2col`).
        let table = gather_table(g);
        let khw = g.kh * g.kw;
        let plane = g.h * g.w;
        for c in 0..g.cin {
            let dxc = &mut dx[c * plane..(c + 1) * plane];
            for t in 0..khw {
                let row = &col[(c * khw + t) * ld + off..][..p];
                for (&v, &i) in row.iter().zip(&table[t * p..(t + 1) * p]) {
                    if i != GATHER_PAD {
                        dxc[i as usize] += v;
                    }
                }
            }
        }
        return;
    }
    if g.same_width_stride_1() {
        let table = shifts(g);
        let w = g.w;
        for c in 0..g.cin {
            let dxc = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
            for (t, sh) in table.iter().enumerate() {
                if sh.ox0 >= sh.ox1 {
                    continue;
                }
                let row = &mut col[(c * table.len() + t) * ld + off..][..p];
                let block = &mut row[sh.oy0 * w..sh.oy1 * w];
                // Entries of padding columns land, shifted, on the neighbouring row's
                // ends: zeroed, the block add leaves those alone.
                zero_columns(block, w, sh.ox0, sh.ox1);
                if sh.lo < sh.hi {
                    let s0 = (sh.base + sh.lo as isize) as usize;
                    for (d, s) in dxc[s0..s0 + (sh.hi - sh.lo)]
                        .iter_mut()
                        .zip(&block[sh.lo..sh.hi])
                    {
                        *d += s;
                    }
                }
            }
        }
        return;
    }
    for c in 0..g.cin {
        let dxc = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy0, oy1) = g.oy_range(ki);
            for kj in 0..g.kw {
                let row = &mut col[((c * g.kh + ki) * g.kw + kj) * ld + off..][..p];
                let (ox0, ox1) = g.ox_range(kj);
                if ox0 >= ox1 {
                    continue;
                }
                for oy in oy0..oy1 {
                    let src = &row[oy * g.wo + ox0..oy * g.wo + ox1];
                    let iy = oy * g.sh + ki - g.ph;
                    let ix0 = ox0 * g.sw + kj - g.pw;
                    let dr = &mut dxc[iy * g.w..(iy + 1) * g.w];
                    if g.sw == 1 {
                        for (d, s) in dr[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (o, s) in src.iter().enumerate() {
                            dr[ix0 + o * g.sw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Layout of a GEMM destination `m x n`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dst {
    /// Row-major: entry `(i, j)` at `i * n + j`.
    RowMajor,
    /// Column-major: entry `(i, j)` at `i + j * m`.
    ColMajor,
}

/// `dst (m x n) = [dst +] lhs (m x k) * rhs (k x n)`, strides in elements (column, row).
///
/// gemm's micro-kernels write column-major tiles and read the left operand in place when its
/// rows are contiguous (row stride 1) and the product is narrow; otherwise they first copy
/// ("pack") it. A row-major destination is computed as the transposed problem.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_layout: Dst,
    accumulate: bool,
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
    let (dst_cs, dst_rs) = match dst_layout {
        Dst::RowMajor => (1, n as isize),
        Dst::ColMajor => (m as isize, 1),
    };
    // SAFETY: the asserts above keep every index gemm reads or writes inside the slices;
    // dst does not alias lhs or rhs (a `&mut` and two `&`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs,
            dst_rs,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Per-task accumulators of the conv backward.
struct ConvAcc {
    dw: Vec<f32>,
    db: Vec<f64>,
}

thread_local! {
    /// Scratch of the conv forward and backward, kept per thread between calls (so each
    /// rayon thread holds up to `k * bs * p` + `cout * bs * p` floats, 29 MB at IResNet's
    /// 112x112 stage): `[k, bs * p]` (the block's im2col, then in the backward its column
    /// gradients) and `[cout, bs * p]` (the block's outputs or output gradients, images side
    /// by side). Buffers of tens of MB allocated afresh at every call
    /// cost more in page faults than the GEMMs that fill them at IResNet's first stage.
    static CONV_SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's conv scratch grown to at least `col` and `gcat` elements.
fn with_conv_scratch<R>(col: usize, gcat: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    CONV_SCRATCH.with_borrow_mut(|(c, g)| {
        if c.len() < col {
            *c = vec![0.0; col];
        }
        if g.len() < gcat {
            *g = vec![0.0; gcat];
        }
        f(&mut c[..col], &mut g[..gcat])
    })
}

/// Output positions per GEMM: images are taken in blocks of `bs` so that the GEMMs of
/// small maps (2x2 at sphere4's last stage) still have a wide inner dimension. Small, so
/// that a block's im2col stays near the core: 1024 (two 28x28 images, six 14x14 ones) put
/// LeNets++'s im2col at 5-7.5 MB a block, and its step took about 1.2x as long.
const CONV_BLOCK_COLUMNS: usize = 128;

/// The conv backward on raw buffers: `x` `[n, cin, h, w]`, `w` `[cout, cin, kh, kw]`,
/// `g` `[n, cout, ho, wo]`; returns the input, weight and bias gradients asked for.
///
/// The batch is cut into blocks of `bs` images, blocks spread over rayon's threads; per
/// block, with `G` the block's output gradients `[cout, bs * p]`, `X` its im2col
/// `[k, bs * p]`: `dW += G X^T`, `dX = col2im(W^T G)`, `db += row sums of G`.
#[allow(clippy::type_complexity)]
pub(crate) fn conv2d_backward_f32(
    geom: &ConvGeom,
    x: &[f32],
    w: &[f32],
    g: &[f32],
    need: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let gm = *geom;
    let (k, p) = (gm.k(), gm.p());
    let [need_x, need_w, need_b] = need;
    let x_img = gm.cin * gm.h * gm.w;
    let g_img = gm.cout * p;
    let chunk = per_task(gm.n);
    let bs = CONV_BLOCK_COLUMNS.div_ceil(p.max(1)).clamp(1, chunk);
    let blocks = gm.n.div_ceil(bs);
    let init = || ConvAcc {
        dw: if need_w {
            vec![0.0; gm.cout * k]
        } else {
            Vec::new()
        },
        db: if need_b {
            vec![0.0; gm.cout]
        } else {
            Vec::new()
        },
    };
    // W^T `[k, cout]` (row-major): gemm reads it in place as the right operand of the
    // input gradient's GEMM, where W itself (`[cout, k]`) would be copied into gemm's
    // packed form at every block (about 50M floats a LeNets++ step).
    let wt: Vec<f32> = if need_x {
        transpose(w, gm.cout, k)
    } else {
        Vec::new()
    };
    let one = |mut acc: ConvAcc, blk: usize, dx: Option<&mut [f32]>| -> ConvAcc {
        let b0 = blk * bs;
        let nb = bs.min(gm.n - b0);
        let cols = nb * p;
        let col_len = if need_w || dx.is_some() { k * cols } else { 0 };
        // One image: its output gradients are G as they are; several: copied side by side.
        let gcat_len = if nb == 1 { 0 } else { gm.cout * cols };
        with_conv_scratch(col_len, gcat_len, |col, gbuf| {
            // G: [cout, nb * p], image j in columns j * p..(j + 1) * p.
            for j in 0..if nb == 1 { 0 } else { nb } {
                let gb = &g[(b0 + j) * g_img..(b0 + j + 1) * g_img];
                for o in 0..gm.cout {
                    gbuf[o * cols + j * p..o * cols + (j + 1) * p]
                        .copy_from_slice(&gb[o * p..(o + 1) * p]);
                }
            }
            let gcat: &[f32] = if nb == 1 {
                &g[b0 * g_img..(b0 + 1) * g_img]
            } else {
                gbuf
            };
            if need_w {
                for j in 0..nb {
                    let xb = &x[(b0 + j) * x_img..(b0 + j + 1) * x_img];
                    im2col(&gm, xb, col, cols, j * p);
                }
                // dW (cout x k) += G (cout x cols) * X^T (cols x k), accumulated
                // column-major (`acc.dw` is dW^T, `[k, cout]`): gemm then copies only G
                // (cout x cols) into its packed form and reads the im2col X (k times
                // larger) where it lies; a row-major dW would pack X.
                sgemm(
                    gm.cout,
                    k,
                    cols,
                    &mut acc.dw,
                    Dst::ColMajor,
                    true,
                    gcat,
                    1,
                    cols,
                    col,
                    cols,
                    1,
                );
            }
            if let Some(dx) = dx {
                // dX (k x cols) = W^T (k x cout) * G (cout x cols), W^T from `wt`
                sgemm(
                    k,
                    cols,
                    gm.cout,
                    col,
                    Dst::RowMajor,
                    false,
                    &wt,
                    1,
                    gm.cout,
                    gcat,
                    1,
                    cols,
                );
                for j in 0..nb {
                    col2im_add(&gm, col, cols, j * p, &mut dx[j * x_img..(j + 1) * x_img]);
                }
            }
            if need_b {
                // Eight accumulators: one chain of f64 additions was latency bound (about
                // 8 % of sphere4's step).
                for (o, d) in acc.db.iter_mut().enumerate() {
                    *d += sum8(&gcat[o * cols..(o + 1) * cols], |v| v as f64);
                }
            }
        });
        acc
    };
    let merge = |mut a: ConvAcc, b: ConvAcc| {
        for (x, y) in a.dw.iter_mut().zip(&b.dw) {
            *x += y;
        }
        for (x, y) in a.db.iter_mut().zip(&b.db) {
            *x += y;
        }
        a
    };
    let min_blocks = (chunk / bs).max(1);
    let mut dx = if need_x {
        Some(filled(gm.n * x_img, 0.0f32))
    } else {
        None
    };
    let acc = match dx.as_mut() {
        Some(dx) if x_img > 0 => dx
            .par_chunks_mut(bs * x_img)
            .enumerate()
            .with_min_len(min_blocks)
            .fold(init, |acc, (blk, dxb)| one(acc, blk, Some(dxb)))
            .reduce_with(merge),
        _ => (0..blocks)
            .into_par_iter()
            .with_min_len(min_blocks)
            .fold(init, |acc, blk| one(acc, blk, None))
            .reduce_with(merge),
    }
    .unwrap_or_else(init);
    // acc.dw is dW^T [k, cout]: back to [cout, k].
    let dw = need_w.then(|| transpose(&acc.dw, k, gm.cout));
    (
        dx,
        dw,
        need_b.then(|| acc.db.iter().map(|&v| v as f32).collect()),
    )
}

/// gemm's f32 vector width with AVX-512: it copies ("packs") a left operand whose row
/// count is not a multiple of it.
const GEMM_ROW_MULTIPLE: usize = 16;

/// Output channels per forward GEMM: gemm reads the left operand (the im2col) in place for
/// products at most 48 columns wide (8 times its 6-column micro-tile) and packs it for
/// wider ones.
const FORWARD_OUT_CHUNK: usize = 48;

/// The conv forward on raw buffers: `x` `[n, cin, h, w]`, `w` `[cout, cin, kh, kw]`,
/// `bias` `[cout]`; returns `y` `[n, cout, ho, wo]`.
///
/// Blocks of `bs` images spread over rayon's threads, as the backward; per block, with `X`
/// its im2col `[k, bs * p]`: `Y = W X` (one GEMM whose inner dimension is `k`, whose width
/// is the block's output positions), written in place for one image, else scattered.
pub(crate) fn conv2d_forward_f32(
    geom: &ConvGeom,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let gm = *geom;
    let (k, p) = (gm.k(), gm.p());
    let x_img = gm.cin * gm.h * gm.w;
    let y_img = gm.cout * p;
    let mut y = filled(gm.n * y_img, 0.0f32);
    if y_img == 0 {
        return y;
    }
    let bs = CONV_BLOCK_COLUMNS
        .div_ceil(p.max(1))
        .clamp(1, per_task(gm.n));
    y.par_chunks_mut(bs * y_img)
        .enumerate()
        .for_each(|(blk, yb)| {
            let b0 = blk * bs;
            let nb = yb.len() / y_img;
            let cols = nb * p;
            // The GEMM's rows (output positions) rounded up to gemm's vector width and its
            // columns (output channels) taken FORWARD_OUT_CHUNK at a time: then gemm reads
            // the im2col where it lies instead of copying it into its packed form first.
            let ld = cols.next_multiple_of(GEMM_ROW_MULTIPLE);
            let direct = nb == 1 && ld == cols;
            let buf_len = if direct { 0 } else { gm.cout * ld };
            with_conv_scratch(k * ld, buf_len, |col, buf| {
                for j in 0..nb {
                    let xb = &x[(b0 + j) * x_img..(b0 + j + 1) * x_img];
                    im2col(&gm, xb, col, ld, j * p);
                }
                if ld > cols {
                    for row in col.chunks_exact_mut(ld) {
                        row[cols..].fill(0.0);
                    }
                }
                let out: &mut [f32] = if direct { &mut *yb } else { &mut *buf };
                for o0 in (0..gm.cout).step_by(FORWARD_OUT_CHUNK) {
                    let oc = FORWARD_OUT_CHUNK.min(gm.cout - o0);
                    // Y[o0..o0 + oc] (oc x ld) = W[o0..o0 + oc] (oc x k) * X (k x ld)
                    sgemm(
                        oc,
                        ld,
                        k,
                        &mut out[o0 * ld..],
                        Dst::RowMajor,
                        false,
                        &w[o0 * k..],
                        1,
                        k,
                        col,
                        1,
                        ld,
                    );
                }
                if !direct {
                    for j in 0..nb {
                        for o in 0..gm.cout {
                            yb[j * y_img + o * p..j * y_img + (o + 1) * p]
                                .copy_from_slice(&buf[o * ld + j * p..o * ld + (j + 1) * p]);
                        }
                    }
                }
            });
            if let Some(bias) = bias {
                for img in yb.chunks_mut(y_img) {
                    for (o, plane) in img.chunks_mut(p).enumerate() {
                        for v in plane {
                            *v += bias[o];
                        }
                    }
                }
            }
        });
    y
}

/// [`conv2d_forward_f32`] on flex tensors (made contiguous first).
fn conv2d_forward_flex(
    geom: &ConvGeom,
    x: &FlexTensor,
    w: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let (x, w) = (x.to_contiguous(), w.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let y = conv2d_forward_f32(
        geom,
        x.storage::<f32>(),
        w.storage::<f32>(),
        bias.as_ref().map(|b| b.storage::<f32>()),
    );
    flex_f32(y, &[geom.n, geom.cout, geom.ho, geom.wo])
}

#[derive(Debug)]
struct ConvBias;
#[derive(Debug)]
struct ConvNoBias;

type ConvState = (NodeId, NodeId, ConvGeom);

/// Runs the backward of a conv node and registers the gradients of its tracked parents.
fn conv_backward<const N: usize>(
    ops: Ops<ConvState, N>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
    let parents = &ops.parents;
    let (x_id, w_id, geom) = ops.state;
    let x = checkpointer
        .retrieve_node_output::<FlexTensor>(x_id)
        .to_contiguous();
    let w = checkpointer
        .retrieve_node_output::<FlexTensor>(w_id)
        .to_contiguous();
    let need_b = parents.len() == 3 && parents[2].is_some();
    let need = [parents[0].is_some(), parents[1].is_some(), need_b];
    let (dx, dw, db) = conv2d_backward_f32(
        &geom,
        x.storage::<f32>(),
        w.storage::<f32>(),
        grad.storage::<f32>(),
        need,
    );
    if let (Some(node), Some(dx)) = (&parents[0], dx) {
        grads.register::<Flex>(node.id, flex_f32(dx, &[geom.n, geom.cin, geom.h, geom.w]));
    }
    if let (Some(node), Some(dw)) = (&parents[1], dw) {
        grads.register::<Flex>(
            node.id,
            flex_f32(dw, &[geom.cout, geom.cin, geom.kh, geom.kw]),
        );
    }
    if let (Some(Some(node)), Some(db)) = (parents.get(2), db) {
        grads.register::<Flex>(node.id, flex_f32(db, &[geom.cout]));
    }
}

impl Backward<Flex, 3> for ConvBias {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        conv_backward(ops, grads, ck);
    }
}

impl Backward<Flex, 2> for ConvNoBias {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        conv_backward(ops, grads, ck);
    }
}

/// The conv on `Autodiff<Flex>`, or `x` back when `B` is another backend or the conv is
/// outside what the kernel covers (groups, dilation, asymmetric or "same" padding, not f32).
pub(super) fn conv2d<B: Backend>(
    conv: &Conv2d<B>,
    x: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if !is_ad_flex::<B>() || conv.groups != 1 || conv.dilation != [1, 1] {
        return Err(x);
    }
    let (ph, pw) = match conv.padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            (top, left)
        }
        _ => return Err(x),
    };
    let weight = conv.weight.val();
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return Err(x);
    }
    let [n, cin, h, w] = x.dims();
    let [cout, wcin, kh, kw] = weight.dims();
    let [sh, sw] = conv.stride;
    if wcin != cin || h + 2 * ph < kh || w + 2 * pw < kw || sh == 0 || sw == 0 {
        return Err(x); // Burn's op reports the error
    }
    let geom = ConvGeom {
        n,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        ho: (h + 2 * ph - kh) / sh + 1,
        wo: (w + 2 * pw - kw) / sw + 1,
    };
    let options = ConvOptions::new([sh, sw], [ph, pw], [1, 1], 1);
    let own_forward = super::enabled("convfwd");
    let forward = |x: FlexTensor, w: FlexTensor, b: Option<FlexTensor>| match own_forward {
        true => conv2d_forward_flex(&geom, &x, &w, b.as_ref()),
        false => Flex::conv2d(x, w, b, options.clone()),
    };
    let x = to_prim(x);
    let weight = to_prim(weight);
    let out = match conv.bias.as_ref().map(|b| to_prim(b.val())) {
        Some(bias) => match ConvBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&x);
                let ws = prep.checkpoint(&weight);
                prep.finish(
                    (xs, ws, geom),
                    forward(x.primitive, weight.primitive, Some(bias.primitive)),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.primitive, weight.primitive, Some(bias.primitive)))
            }
        },
        None => match ConvNoBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&x);
                let ws = prep.checkpoint(&weight);
                prep.finish((xs, ws, geom), forward(x.primitive, weight.primitive, None))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive, None)),
        },
    };
    Ok(from_prim(out))
}

// ---------------------------------------------------------------------------------------
// PReLU
// ---------------------------------------------------------------------------------------

/// PReLU forward on `x` seen as `[n, c, inner]` with `alpha` of length `c` or 1.
pub(crate) fn prelu_forward_f32(x: &[f32], alpha: &[f32], n: usize, c: usize) -> Vec<f32> {
    let mut y = filled(x.len(), 0.0f32);
    if x.is_empty() {
        return y;
    }
    let img = x.len() / n;
    let inner = img / c;
    y.par_chunks_mut(img)
        .zip(x.par_chunks(img))
        .with_min_len(per_task(n))
        .for_each(|(yb, xb)| {
            for ch in 0..c {
                let a = alpha[if alpha.len() == 1 { 0 } else { ch }];
                let r = ch * inner..(ch + 1) * inner;
                for (yv, &xv) in yb[r.clone()].iter_mut().zip(&xb[r]) {
                    *yv = if xv < 0.0 { a * xv } else { xv };
                }
            }
        });
    y
}

/// PReLU backward: `dx` (when asked) and `dalpha` (length of `alpha`, when asked).
pub(crate) fn prelu_backward_f32(
    x: &[f32],
    alpha: &[f32],
    g: &[f32],
    n: usize,
    c: usize,
    need: [bool; 2],
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let [need_x, need_a] = need;
    let img = x.len().checked_div(n).unwrap_or(0);
    let inner = img.checked_div(c).unwrap_or(0);
    let one = |mut da: Vec<f64>, b: usize, dx: Option<&mut [f32]>| {
        let xb = &x[b * img..(b + 1) * img];
        let gb = &g[b * img..(b + 1) * img];
        let mut dx = dx;
        for ch in 0..c {
            let ai = if alpha.len() == 1 { 0 } else { ch };
            let a = alpha[ai];
            let r = ch * inner..(ch + 1) * inner;
            if let Some(dx) = dx.as_deref_mut() {
                for ((d, &xv), &gv) in dx[r.clone()]
                    .iter_mut()
                    .zip(&xb[r.clone()])
                    .zip(&gb[r.clone()])
                {
                    *d = if xv < 0.0 { a * gv } else { gv };
                }
            }
            if need_a {
                let s: f32 = xb[r.clone()]
                    .iter()
                    .zip(&gb[r])
                    .map(|(&xv, &gv)| if xv < 0.0 { xv * gv } else { 0.0 })
                    .sum();
                da[ai] += s as f64;
            }
        }
        da
    };
    let init = || vec![0.0f64; if need_a { alpha.len() } else { 0 }];
    let merge = |mut a: Vec<f64>, b: Vec<f64>| {
        for (x, y) in a.iter_mut().zip(&b) {
            *x += y;
        }
        a
    };
    let chunk = per_task(n);
    let mut dx = need_x.then(|| filled(x.len(), 0.0f32));
    let da = match dx.as_mut() {
        Some(dx) if img > 0 => dx
            .par_chunks_mut(img)
            .enumerate()
            .with_min_len(chunk)
            .fold(init, |acc, (b, d)| one(acc, b, Some(d)))
            .reduce_with(merge),
        _ => (0..n)
            .into_par_iter()
            .with_min_len(chunk)
            .fold(init, |acc, b| one(acc, b, None))
            .reduce_with(merge),
    }
    .unwrap_or_else(init);
    (dx, need_a.then(|| da.iter().map(|&v| v as f32).collect()))
}

#[derive(Debug)]
struct PReluOp;

/// (x, alpha checkpoints, n, c).
type PReluState = (NodeId, NodeId, usize, usize);

impl Backward<Flex, 2> for PReluOp {
    type State = PReluState;
    fn backward(self, ops: Ops<PReluState, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [node_x, node_a] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_id, a_id, n, c) = ops.state;
        let x = ck.retrieve_node_output::<FlexTensor>(x_id).to_contiguous();
        let alpha = ck.retrieve_node_output::<FlexTensor>(a_id).to_contiguous();
        let shape = x.layout().shape().clone();
        let (dx, da) = prelu_backward_f32(
            x.storage::<f32>(),
            alpha.storage::<f32>(),
            grad.storage::<f32>(),
            n,
            c,
            [node_x.is_some(), node_a.is_some()],
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
        }
        if let (Some(node), Some(da)) = (node_a, da) {
            let len = da.len();
            grads.register::<Flex>(node.id, flex_f32(da, &[len]));
        }
    }
}

/// PReLU on `Autodiff<Flex>` (rank >= 2, channel dimension 1), or `x` back.
pub(super) fn prelu<B: Backend, const D: usize>(
    prelu: &PRelu<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if !is_ad_flex::<B>() || D < 2 {
        return Err(x);
    }
    let alpha = prelu.alpha.val();
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let na = alpha.dims()[0];
    if x.dtype() != DType::F32 || alpha.dtype() != DType::F32 || (na != 1 && na != c) || n == 0 {
        return Err(x); // Burn's op reports a shape error
    }
    let x = to_prim(x);
    let alpha = to_prim(alpha);
    let run = |x: &FlexTensor, a: &FlexTensor| {
        let xc = x.to_contiguous();
        let ac = a.to_contiguous();
        let y = prelu_forward_f32(xc.storage::<f32>(), ac.storage::<f32>(), n, c);
        FlexTensor::from_data(TensorData::new(y, xc.layout().shape().clone()))
    };
    let out = match PReluOp
        .prepare::<NoCheckpointing>([x.node.clone(), alpha.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let xs = prep.checkpoint(&x);
            let as_ = prep.checkpoint(&alpha);
            let y = run(&x.primitive, &alpha.primitive);
            prep.finish((xs, as_, n, c), y)
        }
        OpsKind::UnTracked(prep) => {
            let y = run(&x.primitive, &alpha.primitive);
            prep.finish(y)
        }
    };
    Ok(from_prim(out))
}

// ---------------------------------------------------------------------------------------
// BatchNorm, training mode
// ---------------------------------------------------------------------------------------

/// Sum of `f(v)` over `v` in f64, with eight independent accumulators (so that the loop
/// vectorises: one chain of f64 additions would be latency bound).
#[inline]
fn sum8(v: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a += f(x);
        }
    }
    let mut s = tail.iter().map(|&x| f(x)).sum::<f64>();
    for a in acc {
        s += a;
    }
    s
}

/// Channels handed to one rayon task so that a task covers at least about 16k elements.
fn channels_per_task(per_channel: usize) -> usize {
    16_384usize.div_ceil(per_channel.max(1))
}

/// Per-channel mean and biased variance of `x` seen as `[n, c, inner]`, in f64 (two
/// passes: the variance sums squared deviations from the mean).
pub(crate) fn bn_stats_f32(x: &[f32], n: usize, c: usize) -> (Vec<f64>, Vec<f64>) {
    let inner = x.len() / (n * c);
    let m = (n * inner) as f64;
    (0..c)
        .into_par_iter()
        .with_min_len(channels_per_task(n * inner))
        .map(|ch| {
            let plane = |b: usize| &x[(b * c + ch) * inner..(b * c + ch + 1) * inner];
            let mean = (0..n).map(|b| sum8(plane(b), |v| v as f64)).sum::<f64>() / m;
            let var = (0..n)
                .map(|b| {
                    sum8(plane(b), |v| {
                        let d = v as f64 - mean;
                        d * d
                    })
                })
                .sum::<f64>()
                / m;
            (mean, var)
        })
        .unzip()
}

/// The training-mode batch-norm output of `x` seen as `[n, c, inner]`:
/// `y = (x - mean_c) gamma_c rstd_c + beta_c`, planes spread over rayon's threads.
pub(crate) fn bn_forward_f32(
    x: &[f32],
    n: usize,
    c: usize,
    mean: &[f64],
    rstd: &[f64],
    gamma: &[f32],
    beta: &[f32],
) -> Vec<f32> {
    let inner = x.len() / (n * c);
    let scale: Vec<f32> = (0..c)
        .map(|ch| (gamma[ch] as f64 * rstd[ch]) as f32)
        .collect();
    let shift: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let mut y = filled(x.len(), 0.0f32);
    y.par_chunks_mut(inner)
        .zip(x.par_chunks(inner))
        .enumerate()
        .with_min_len(channels_per_task(inner))
        .for_each(|(p, (yp, xp))| {
            let ch = p % c;
            let (m, a, b) = (shift[ch], scale[ch], beta[ch]);
            for (yv, &xv) in yp.iter_mut().zip(xp) {
                *yv = (xv - m) * a + b;
            }
        });
    y
}

/// The training-mode batch-norm backward for `x` and output gradient `g` seen as
/// `[n, c, inner]`, with `M = n inner`, `xhat = (x - mean) rstd`:
/// `dbeta_c = sum g`, `dgamma_c = sum g xhat`,
/// `dx = gamma rstd (g - dbeta_c / M - xhat dgamma_c / M)`
/// (the gradient through the batch mean and variance included). Returns `dx`, `dgamma`,
/// `dbeta`, each when asked.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn bn_backward_f32(
    x: &[f32],
    g: &[f32],
    n: usize,
    c: usize,
    mean: &[f64],
    rstd: &[f64],
    gamma: &[f32],
    need: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let [need_x, need_gamma, need_beta] = need;
    let inner = x.len() / (n * c);
    let m = (n * inner) as f64;
    // Per channel: sum g and sum g (x - mean).
    let (sg, sgd): (Vec<f64>, Vec<f64>) = (0..c)
        .into_par_iter()
        .with_min_len(channels_per_task(n * inner))
        .map(|ch| {
            let mu = mean[ch];
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for b in 0..n {
                let r = (b * c + ch) * inner..(b * c + ch + 1) * inner;
                let (xp, gp) = (&x[r.clone()], &g[r]);
                s1 += sum8(gp, |v| v as f64);
                let mut acc = [0.0f64; 8];
                let xc = xp.chunks_exact(8);
                let gc = gp.chunks_exact(8);
                let (xt, gt) = (xc.remainder(), gc.remainder());
                for (xs, gs) in xc.zip(gc) {
                    for i in 0..8 {
                        acc[i] += gs[i] as f64 * (xs[i] as f64 - mu);
                    }
                }
                s2 += acc.iter().sum::<f64>()
                    + xt.iter()
                        .zip(gt)
                        .map(|(&xv, &gv)| gv as f64 * (xv as f64 - mu))
                        .sum::<f64>();
            }
            (s1, s2)
        })
        .unzip();
    let dx = need_x.then(|| {
        // dx = a (g - mean(g)) + d (x - mean), a = gamma rstd, d = -a rstd mean(g xhat);
        // the differences in f32 first, so that they cancel exactly where they should.
        let coef: Vec<[f32; 4]> = (0..c)
            .map(|ch| {
                let a = gamma[ch] as f64 * rstd[ch];
                let d = -a * rstd[ch] * rstd[ch] * sgd[ch] / m;
                [a as f32, d as f32, (sg[ch] / m) as f32, mean[ch] as f32]
            })
            .collect();
        let mut dx = filled(x.len(), 0.0f32);
        dx.par_chunks_mut(inner)
            .zip(x.par_chunks(inner).zip(g.par_chunks(inner)))
            .enumerate()
            .with_min_len(channels_per_task(inner))
            .for_each(|(p, (dp, (xp, gp)))| {
                let [a, d, mg, mu] = coef[p % c];
                for ((dv, &xv), &gv) in dp.iter_mut().zip(xp).zip(gp) {
                    *dv = a * (gv - mg) + d * (xv - mu);
                }
            });
        dx
    });
    let dgamma = need_gamma.then(|| {
        (0..c)
            .map(|ch| (sgd[ch] * rstd[ch]) as f32)
            .collect::<Vec<_>>()
    });
    let dbeta = need_beta.then(|| sg.iter().map(|&v| v as f32).collect::<Vec<_>>());
    (dx, dgamma, dbeta)
}

#[derive(Debug)]
struct BatchNormOp;

/// What the batch-norm backward needs: the checkpointed input, the batch statistics and
/// the scale the forward used.
#[derive(Clone, Debug)]
struct BnState {
    x: NodeId,
    n: usize,
    c: usize,
    mean: Vec<f64>,
    rstd: Vec<f64>,
    gamma: Vec<f32>,
}

impl Backward<Flex, 3> for BatchNormOp {
    type State = BnState;
    fn backward(self, ops: Ops<BnState, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let st = ops.state;
        let x = ck.retrieve_node_output::<FlexTensor>(st.x).to_contiguous();
        let shape = x.layout().shape().clone();
        let (dx, dgamma, dbeta) = bn_backward_f32(
            x.storage::<f32>(),
            grad.storage::<f32>(),
            st.n,
            st.c,
            &st.mean,
            &st.rstd,
            &st.gamma,
            [node_x.is_some(), node_gamma.is_some(), node_beta.is_some()],
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
        }
        if let (Some(node), Some(dg)) = (node_gamma, dgamma) {
            grads.register::<Flex>(node.id, flex_f32(dg, &[st.c]));
        }
        if let (Some(node), Some(db)) = (node_beta, dbeta) {
            grads.register::<Flex>(node.id, flex_f32(db, &[st.c]));
        }
    }
}

/// The f32 values of a (rank-1) `Autodiff<Flex>` tensor.
fn values_f32<B: Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    to_prim(t)
        .primitive
        .to_contiguous()
        .storage::<f32>()
        .to_vec()
}

/// `running <- (1 - momentum) running + momentum stat`, as Burn's `BatchNorm` updates its
/// running statistics (here in f64, rounded once).
fn update_running<B: Backend>(state: &RunningState<Tensor<B, 1>>, stat: &[f64], momentum: f64) {
    let old = values_f32(state.value_sync());
    let new: Vec<f32> = old
        .iter()
        .zip(stat)
        .map(|(&r, &s)| ((1.0 - momentum) * r as f64 + momentum * s) as f32)
        .collect();
    let len = new.len();
    state.update(from_prim(<Ad as AutodiffBackend>::from_inner(flex_f32(
        new,
        &[len],
    ))));
}

/// Batch norm in training mode on `Autodiff<Flex>` (rank >= 2, channel dimension 1), or `x`
/// back when `B` is another backend or the input is outside what the kernel covers.
pub(super) fn batch_norm<B: Backend, const D: usize>(
    bn: &BatchNorm<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if !is_ad_flex::<B>() || D < 2 {
        return Err(x);
    }
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let gamma = bn.gamma.val();
    let beta = bn.beta.val();
    let running_ok = bn.running_mean.value().dims() == [c] && bn.running_var.value().dims() == [c];
    if x.dtype() != DType::F32
        || gamma.dtype() != DType::F32
        || beta.dtype() != DType::F32
        || gamma.dims() != [c]
        || beta.dims() != [c]
        || !running_ok
        || dims.iter().product::<usize>() == 0
    {
        return Err(x); // Burn's op reports the error, or handles the empty tensor
    }
    let x = to_prim(x);
    let gamma = to_prim(gamma);
    let beta = to_prim(beta);
    let xc = x.primitive.to_contiguous();
    let gv = gamma.primitive.to_contiguous().storage::<f32>().to_vec();
    let bv = beta.primitive.to_contiguous().storage::<f32>().to_vec();
    let (mean, var) = bn_stats_f32(xc.storage::<f32>(), n, c);
    let rstd: Vec<f64> = var.iter().map(|&v| 1.0 / (v + bn.epsilon).sqrt()).collect();
    let y = bn_forward_f32(xc.storage::<f32>(), n, c, &mean, &rstd, &gv, &bv);
    let y = FlexTensor::from_data(TensorData::new(y, xc.layout().shape().clone()));
    update_running(&bn.running_mean, &mean, bn.momentum);
    update_running(&bn.running_var, &var, bn.momentum);
    let out = match BatchNormOp
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let xs = prep.checkpoint(&x);
            let state = BnState {
                x: xs,
                n,
                c,
                mean,
                rstd,
                gamma: gv,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Ok(from_prim(out))
}

#[cfg(test)]
mod tests {
    use super::{filled, transpose};

    #[test]
    fn transpose_matches_plain_loop() {
        // Shapes around the 16 x 16 tiles: empty, one element, ragged last band and tile,
        // several, rows of 2 KB.
        for (rows, cols) in [
            (0, 5),
            (4, 0),
            (1, 1),
            (3, 31),
            (33, 70),
            (64, 32),
            (7, 97),
            (512, 36),
            (17, 16),
        ] {
            let a: Vec<f32> = (0..rows * cols).map(|i| i as f32 * 0.5 - 3.0).collect();
            let t = transpose(&a, rows, cols);
            assert_eq!(t.len(), rows * cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        a[r * cols + c],
                        "{rows}x{cols} at ({r}, {c})"
                    );
                }
            }
        }
    }

    #[test]
    fn filled_writes_every_element() {
        for n in [0, 1, 65_535, 65_536, 200_003] {
            let v = filled(n, 2.5f32);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 2.5));
        }
        assert!(filled(70_000, u32::MAX).iter().all(|&x| x == u32::MAX));
    }
}
