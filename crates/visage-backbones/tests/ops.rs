//! `visage_backbones::ops` against float64 loops written here: the conv2d, PReLU, max-pool
//! and training-mode batch-norm forward values and their input / weight / bias / slope / scale
//! / shift gradients (and the batch norm's running statistics), on `Autodiff<Flex>` (the
//! hand-written kernels) and `Autodiff<NdArray>` (Burn's composite ops), on edge shapes.
//! The f64 reference gradients are themselves checked against central finite differences of
//! the f64 forward.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, PRelu, PReluConfig, PaddingConfig2d};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use visage_backbones::ops;

type AdFlex = Autodiff<Flex>;
type AdNd = Autodiff<NdArray>;

/// Deterministic values in [-1, 1) (a 64-bit LCG), with a few exact zeros.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i % 17 == 3 {
                0.0
            } else {
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            }
        })
        .collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The f32 values as f64 (the reference computes on exactly what the backend gets).
fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

fn tensor<B: AutodiffBackend, const D: usize>(v: &[f64], shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(to_f32(v), shape), &Default::default())
}

fn read<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * scale,
            "{what}[{i}]: got {g}, want {w} (scale {scale})"
        );
    }
}

#[derive(Clone, Copy, Debug)]
struct ConvCase {
    n: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    bias: bool,
    x_grad: bool,
}

impl ConvCase {
    fn out(&self) -> [usize; 2] {
        [
            (self.h + 2 * self.pad[0] - self.k[0]) / self.stride[0] + 1,
            (self.w + 2 * self.pad[1] - self.k[1]) / self.stride[1] + 1,
        ]
    }
}

/// f64 direct convolution: y[n,o,oy,ox] = b[o] + sum x[n,c,oy*s+ki-p,ox*s+kj-p] w[o,c,ki,kj].
fn conv_ref(c: &ConvCase, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let [ho, wo] = c.out();
    let mut y = vec![0.0; c.n * c.cout * ho * wo];
    for n in 0..c.n {
        for o in 0..c.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = if c.bias { b[o] } else { 0.0 };
                    for ci in 0..c.cin {
                        for ki in 0..c.k[0] {
                            for kj in 0..c.k[1] {
                                let iy = (oy * c.stride[0] + ki) as isize - c.pad[0] as isize;
                                let ix = (ox * c.stride[1] + kj) as isize - c.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xv =
                                    x[((n * c.cin + ci) * c.h + iy as usize) * c.w + ix as usize];
                                let wv = w[((o * c.cin + ci) * c.k[0] + ki) * c.k[1] + kj];
                                s += xv * wv;
                            }
                        }
                    }
                    y[((n * c.cout + o) * ho + oy) * wo + ox] = s;
                }
            }
        }
    }
    y
}

/// f64 gradients of sum(y * r): (dx, dw, db).
fn conv_ref_grads(c: &ConvCase, x: &[f64], w: &[f64], r: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let [ho, wo] = c.out();
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; c.cout];
    for n in 0..c.n {
        for o in 0..c.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let g = r[((n * c.cout + o) * ho + oy) * wo + ox];
                    db[o] += g;
                    for ci in 0..c.cin {
                        for ki in 0..c.k[0] {
                            for kj in 0..c.k[1] {
                                let iy = (oy * c.stride[0] + ki) as isize - c.pad[0] as isize;
                                let ix = (ox * c.stride[1] + kj) as isize - c.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xi = ((n * c.cin + ci) * c.h + iy as usize) * c.w + ix as usize;
                                let wi = ((o * c.cin + ci) * c.k[0] + ki) * c.k[1] + kj;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

fn conv_module<B: AutodiffBackend>(c: &ConvCase, w: &[f64], b: &[f64]) -> Conv2d<B> {
    let mut conv = Conv2dConfig::new([c.cin, c.cout], c.k)
        .with_stride(c.stride)
        .with_padding(PaddingConfig2d::Explicit(
            c.pad[0], c.pad[1], c.pad[0], c.pad[1],
        ))
        .with_bias(c.bias)
        .init::<B>(&Default::default());
    conv.weight = Param::from_tensor(tensor(w, [c.cout, c.cin, c.k[0], c.k[1]]));
    if c.bias {
        conv.bias = Some(Param::from_tensor(tensor(b, [c.cout])));
    }
    conv
}

fn check_conv<B: AutodiffBackend>(c: ConvCase) {
    let [ho, wo] = c.out();
    let x = rounded(&values(c.n * c.cin * c.h * c.w, 1));
    let w = rounded(&values(c.cout * c.cin * c.k[0] * c.k[1], 2));
    let b = rounded(&values(c.cout, 3));
    let r = rounded(&values(c.n * c.cout * ho * wo, 4));
    let conv = conv_module::<B>(&c, &w, &b);
    let mut xt = tensor::<B, 4>(&x, [c.n, c.cin, c.h, c.w]);
    if c.x_grad {
        xt = xt.require_grad();
    }
    let y = ops::conv2d(&conv, xt.clone());
    assert_eq!(y.dims(), [c.n, c.cout, ho, wo], "{c:?}");
    let loss = (y.clone() * tensor::<B, 4>(&r, [c.n, c.cout, ho, wo])).sum();
    let grads = loss.backward();
    let want_y = conv_ref(&c, &x, &w, &b);
    let (want_dx, want_dw, want_db) = conv_ref_grads(&c, &x, &w, &r);
    assert_close(&format!("y {c:?}"), &read(y), &want_y, 1e-5);
    let dw = conv.weight.grad(&grads).expect("weight gradient");
    assert_close(&format!("dw {c:?}"), &read(dw), &want_dw, 1e-5);
    if c.bias {
        let db = conv
            .bias
            .as_ref()
            .unwrap()
            .grad(&grads)
            .expect("bias gradient");
        assert_close(&format!("db {c:?}"), &read(db), &want_db, 1e-5);
    }
    match xt.grad(&grads) {
        Some(dx) => {
            assert!(c.x_grad);
            assert_close(&format!("dx {c:?}"), &read(dx), &want_dx, 1e-5);
        }
        None => assert!(!c.x_grad, "no input gradient {c:?}"),
    }
}

fn conv_cases() -> Vec<ConvCase> {
    let base = ConvCase {
        n: 3,
        cin: 4,
        cout: 5,
        h: 9,
        w: 7,
        k: [3, 3],
        stride: [1, 1],
        pad: [1, 1],
        bias: true,
        x_grad: true,
    };
    vec![
        base,
        // batch 1, no bias
        ConvCase {
            n: 1,
            bias: false,
            ..base
        },
        // 1x1 kernel, no padding
        ConvCase {
            k: [1, 1],
            pad: [0, 0],
            ..base
        },
        // 1x1 kernel, stride 2 (IResNet's downsample)
        ConvCase {
            k: [1, 1],
            pad: [0, 0],
            stride: [2, 2],
            ..base
        },
        // stride 2, padding 1 on odd and even sides (sphere's stage openers)
        ConvCase {
            stride: [2, 2],
            ..base
        },
        ConvCase {
            stride: [2, 2],
            h: 8,
            w: 6,
            ..base
        },
        // 5x5 padding 2 (LeNets++), input gradient not asked (first layer)
        ConvCase {
            k: [5, 5],
            pad: [2, 2],
            x_grad: false,
            ..base
        },
        // non-square kernel, mixed strides and paddings, no padding
        ConvCase {
            k: [3, 2],
            stride: [2, 1],
            pad: [0, 1],
            ..base
        },
        ConvCase {
            k: [3, 3],
            pad: [0, 0],
            ..base
        },
        // padding larger than the kernel reach at the borders
        ConvCase {
            k: [2, 2],
            pad: [2, 2],
            stride: [3, 3],
            h: 5,
            w: 4,
            ..base
        },
        // one input channel, one output channel
        ConvCase {
            cin: 1,
            cout: 1,
            ..base
        },
        // stride 1 and output rows as wide as the input's (the kernels' block-copy im2col
        // and block-add col2im): 5x5 padding 2 with the input gradient, a taller-than-wide
        // kernel without vertical padding (fewer output rows), a 1x3 kernel, a 7x7 kernel
        // whose padding reaches past a 2-pixel-wide image, and one-row images
        ConvCase {
            k: [5, 5],
            pad: [2, 2],
            ..base
        },
        ConvCase {
            k: [3, 1],
            pad: [0, 0],
            ..base
        },
        ConvCase {
            k: [1, 3],
            pad: [0, 1],
            ..base
        },
        ConvCase {
            k: [7, 7],
            pad: [3, 3],
            h: 3,
            w: 2,
            ..base
        },
        ConvCase {
            k: [3, 3],
            pad: [1, 1],
            h: 1,
            w: 5,
            ..base
        },
        // Larger maps (up to 16 output positions the kernel's im2col / col2im gather
        // through an index table, as in several cases above): more of the block-copy path
        // (stride 1, same width) and of the row-by-row path (strides, other widths).
        ConvCase {
            k: [5, 5],
            pad: [2, 2],
            h: 12,
            w: 11,
            ..base
        },
        ConvCase {
            k: [1, 3],
            pad: [0, 1],
            h: 10,
            w: 9,
            ..base
        },
        ConvCase {
            stride: [2, 2],
            h: 17,
            w: 15,
            ..base
        },
        ConvCase {
            k: [3, 2],
            stride: [2, 1],
            pad: [0, 1],
            h: 19,
            w: 12,
            ..base
        },
        ConvCase {
            k: [3, 3],
            pad: [0, 0],
            h: 12,
            w: 12,
            ..base
        },
    ]
}

#[test]
fn conv2d_matches_f64_reference_on_flex_kernel() {
    for c in conv_cases() {
        check_conv::<AdFlex>(c);
    }
}

#[test]
fn conv2d_matches_f64_reference_on_ndarray() {
    for c in conv_cases() {
        check_conv::<AdNd>(c);
    }
}

/// A batch larger than the rayon split, so that several tasks accumulate weight gradients.
#[test]
fn conv2d_large_batch_matches_f64_reference() {
    let c = ConvCase {
        n: 37,
        cin: 3,
        cout: 8,
        h: 8,
        w: 8,
        k: [3, 3],
        stride: [2, 2],
        pad: [1, 1],
        bias: true,
        x_grad: true,
    };
    check_conv::<AdFlex>(c);
    check_conv::<AdNd>(c);
}

/// More output channels than one forward GEMM takes (the kernel's forward works in column
/// chunks of 48) and blocks of several images whose output positions (3 x 5 x 5 = 75) are
/// not a multiple of the GEMM's row multiple (the kernel pads them to 80).
#[test]
fn conv2d_wide_output_matches_f64_reference() {
    let c = ConvCase {
        n: 11,
        cin: 3,
        cout: 101,
        h: 5,
        w: 5,
        k: [3, 3],
        stride: [1, 1],
        pad: [1, 1],
        bias: true,
        x_grad: true,
    };
    check_conv::<AdFlex>(c);
    check_conv::<AdNd>(c);
}

/// The f64 reference gradients against central differences of the f64 forward.
#[test]
#[allow(clippy::needless_range_loop)]
fn conv_reference_gradients_match_finite_differences() {
    let c = ConvCase {
        n: 2,
        cin: 2,
        cout: 3,
        h: 5,
        w: 4,
        k: [3, 3],
        stride: [2, 1],
        pad: [1, 1],
        bias: true,
        x_grad: true,
    };
    let x = values(c.n * c.cin * c.h * c.w, 11);
    let w = values(c.cout * c.cin * 9, 12);
    let b = values(c.cout, 13);
    let [ho, wo] = c.out();
    let r = values(c.n * c.cout * ho * wo, 14);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        conv_ref(&c, x, w, b)
            .iter()
            .zip(&r)
            .map(|(y, r)| y * r)
            .sum()
    };
    let (dx, dw, db) = conv_ref_grads(&c, &x, &w, &r);
    let eps = 1e-6;
    let fd = |v: &[f64], i: usize, f: &dyn Fn(&[f64]) -> f64| {
        let (mut a, mut b) = (v.to_vec(), v.to_vec());
        a[i] += eps;
        b[i] -= eps;
        (f(&a) - f(&b)) / (2.0 * eps)
    };
    for i in 0..x.len() {
        let g = fd(&x, i, &|v| loss(v, &w, &b));
        assert!((g - dx[i]).abs() < 1e-6, "dx[{i}] {g} vs {}", dx[i]);
    }
    for i in 0..w.len() {
        let g = fd(&w, i, &|v| loss(&x, v, &b));
        assert!((g - dw[i]).abs() < 1e-6, "dw[{i}] {g} vs {}", dw[i]);
    }
    for i in 0..b.len() {
        let g = fd(&b, i, &|v| loss(&x, &w, v));
        assert!((g - db[i]).abs() < 1e-6, "db[{i}] {g} vs {}", db[i]);
    }
}

/// f64 PReLU on `[n, c, inner]`: (y, dx, dalpha) of sum(y * r); Burn's convention at 0
/// (`x < 0` takes the slope, so x = 0 passes the gradient through).
fn prelu_ref(
    x: &[f64],
    a: &[f64],
    r: &[f64],
    n: usize,
    c: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let inner = x.len() / (n * c);
    let mut y = vec![0.0; x.len()];
    let mut dx = vec![0.0; x.len()];
    let mut da = vec![0.0; a.len()];
    for i in 0..x.len() {
        let ch = (i / inner) % c;
        let ai = if a.len() == 1 { 0 } else { ch };
        if x[i] < 0.0 {
            y[i] = a[ai] * x[i];
            dx[i] = a[ai] * r[i];
            da[ai] += r[i] * x[i];
        } else {
            y[i] = x[i];
            dx[i] = r[i];
        }
    }
    (y, dx, da)
}

fn check_prelu<B: AutodiffBackend, const D: usize>(shape: [usize; D], params: usize) {
    let len: usize = shape.iter().product();
    let x = rounded(&values(len, 21));
    let r = rounded(&values(len, 22));
    let a = rounded(&values(params, 23));
    let mut p: PRelu<B> = PReluConfig::new()
        .with_num_parameters(params)
        .init(&Default::default());
    p.alpha = Param::from_tensor(tensor(&a, [params]));
    let xt = tensor::<B, D>(&x, shape).require_grad();
    let y = ops::prelu(&p, xt.clone());
    let loss = (y.clone() * tensor::<B, D>(&r, shape)).sum();
    let grads = loss.backward();
    let (want_y, want_dx, want_da) = prelu_ref(&x, &a, &r, shape[0], shape[1]);
    let what = format!("{shape:?} params {params}");
    assert_close(&format!("y {what}"), &read(y), &want_y, 1e-6);
    let dx = xt.grad(&grads).expect("input gradient");
    assert_close(&format!("dx {what}"), &read(dx), &want_dx, 1e-6);
    let da = p.alpha.grad(&grads).expect("slope gradient");
    assert_close(&format!("dalpha {what}"), &read(da), &want_da, 1e-5);
}

fn prelu_all<B: AutodiffBackend>() {
    check_prelu::<B, 4>([3, 5, 4, 6], 5);
    check_prelu::<B, 4>([3, 5, 4, 6], 1);
    check_prelu::<B, 4>([1, 2, 1, 1], 2);
    check_prelu::<B, 4>([37, 3, 2, 2], 3);
    check_prelu::<B, 2>([7, 2], 2);
    check_prelu::<B, 2>([1, 3], 1);
    check_prelu::<B, 3>([2, 4, 5], 4);
}

#[test]
fn prelu_matches_f64_reference_on_flex_kernel() {
    prelu_all::<AdFlex>();
}

#[test]
fn prelu_matches_f64_reference_on_ndarray() {
    prelu_all::<AdNd>();
}

/// A max-pool case: input `[n, c, h, w]`, kernel, stride, symmetric padding.
struct PoolCase {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

/// f64 max pool: (y, dx of sum(y * r)); each window's first maximum in row-major order
/// takes the value and the gradient (burn-flex's and PyTorch's rule); padding never wins.
fn max_pool_ref(c: &PoolCase, x: &[f64], r: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let ho = (c.h + 2 * c.pad[0] - c.k[0]) / c.stride[0] + 1;
    let wo = (c.w + 2 * c.pad[1] - c.k[1]) / c.stride[1] + 1;
    let mut y = Vec::new();
    let mut dx = vec![0.0; x.len()];
    for plane in 0..c.n * c.c {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut best: Option<(f64, usize)> = None;
                for ki in 0..c.k[0] {
                    for kj in 0..c.k[1] {
                        let iy = (oy * c.stride[0] + ki) as isize - c.pad[0] as isize;
                        let ix = (ox * c.stride[1] + kj) as isize - c.pad[1] as isize;
                        if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                            continue;
                        }
                        let i = plane * c.h * c.w + iy as usize * c.w + ix as usize;
                        if best.is_none_or(|(b, _)| x[i] > b) {
                            best = Some((x[i], i));
                        }
                    }
                }
                let (v, i) = best.expect("every window holds an input");
                y.push(v);
                dx[i] += r[y.len() - 1];
            }
        }
    }
    (y, dx)
}

fn check_max_pool<B: AutodiffBackend>(c: PoolCase, ties: bool) {
    let len = c.n * c.c * c.h * c.w;
    // With `ties`, values on a coarse grid so that windows hold equal maxima.
    let x: Vec<f64> = values(len, 41)
        .iter()
        .map(|&v| if ties { (v * 2.0).round() / 2.0 } else { v })
        .collect();
    let x = rounded(&x);
    let pool = MaxPool2dConfig::new(c.k)
        .with_strides(c.stride)
        .with_padding(PaddingConfig2d::Explicit(
            c.pad[0], c.pad[1], c.pad[0], c.pad[1],
        ))
        .init();
    let ho = (c.h + 2 * c.pad[0] - c.k[0]) / c.stride[0] + 1;
    let wo = (c.w + 2 * c.pad[1] - c.k[1]) / c.stride[1] + 1;
    let r = rounded(&values(c.n * c.c * ho * wo, 42));
    let (want_y, want_dx) = max_pool_ref(&c, &x, &r);
    let xt = tensor::<B, 4>(&x, [c.n, c.c, c.h, c.w]).require_grad();
    let y = ops::max_pool2d(&pool, xt.clone());
    assert_eq!(y.dims(), [c.n, c.c, ho, wo]);
    let loss = (y.clone() * tensor::<B, 4>(&r, [c.n, c.c, ho, wo])).sum();
    let grads = loss.backward();
    let what = format!(
        "[{}, {}, {}, {}] k {:?} s {:?} p {:?} ties {ties}",
        c.n, c.c, c.h, c.w, c.k, c.stride, c.pad
    );
    assert_eq!(read(y), want_y, "y {what}");
    let dx = xt.grad(&grads).expect("input gradient");
    // Overlapping windows add several output gradients in f32.
    assert_close(&format!("dx {what}"), &read(dx), &want_dx, 1e-6);
}

fn pool_cases() -> Vec<PoolCase> {
    let case = |n, c, h, w, k: usize, s: usize, p: usize| PoolCase {
        n,
        c,
        h,
        w,
        k: [k, k],
        stride: [s, s],
        pad: [p, p],
    };
    vec![
        case(3, 4, 28, 28, 2, 2, 0), // LeNets++ stage 1
        case(2, 3, 7, 7, 3, 2, 0),   // LeNets++ stage 3: 7 -> 3
        case(2, 2, 9, 6, 2, 2, 0),   // odd height: the last row is dropped
        case(1, 3, 5, 8, 3, 1, 1),   // overlapping windows with padding
        case(2, 1, 4, 4, 3, 3, 2),   // windows partly in the padding
        PoolCase {
            n: 1,
            c: 2,
            h: 6,
            w: 7,
            k: [2, 3],
            stride: [1, 2],
            pad: [1, 0],
        },
        case(1, 1, 1, 1, 1, 1, 0),
    ]
}

#[test]
fn max_pool_matches_f64_reference_on_flex_kernel() {
    for c in pool_cases() {
        check_max_pool::<AdFlex>(c, false);
    }
    // Ties: the first maximum in row-major order, as burn-flex's own op.
    for c in pool_cases() {
        check_max_pool::<AdFlex>(c, true);
    }
}

#[test]
fn max_pool_matches_f64_reference_on_ndarray() {
    for c in pool_cases() {
        check_max_pool::<AdNd>(c, false);
    }
}

/// Inference (no autodiff) goes through Burn's ops on both CPU backends, same values.
#[test]
fn ops_without_autodiff_match_reference() {
    let c = ConvCase {
        n: 2,
        cin: 3,
        cout: 4,
        h: 6,
        w: 5,
        k: [3, 3],
        stride: [2, 2],
        pad: [1, 1],
        bias: true,
        x_grad: false,
    };
    let x = rounded(&values(c.n * c.cin * c.h * c.w, 31));
    let w = rounded(&values(c.cout * c.cin * 9, 32));
    let b = rounded(&values(c.cout, 33));
    let want = conv_ref(&c, &x, &w, &b);
    let conv = conv_module::<AdFlex>(&c, &w, &b);
    let xt: Tensor<Flex, 4> = Tensor::from_data(
        TensorData::new(to_f32(&x), [c.n, c.cin, c.h, c.w]),
        &Default::default(),
    );
    use burn::module::AutodiffModule;
    let y = ops::conv2d(&conv.valid(), xt);
    assert_close("inference conv", &read(y), &want, 1e-5);
}

/// f64 training-mode batch norm on `[n, c, inner]`: (y, mean, biased variance).
fn bn_ref(
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    n: usize,
    c: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let inner = x.len() / (n * c);
    let m = (n * inner) as f64;
    let idx = |b: usize, ch: usize, i: usize| (b * c + ch) * inner + i;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    let mut y = vec![0.0; x.len()];
    for ch in 0..c {
        for b in 0..n {
            for i in 0..inner {
                mean[ch] += x[idx(b, ch, i)] / m;
            }
        }
        for b in 0..n {
            for i in 0..inner {
                var[ch] += (x[idx(b, ch, i)] - mean[ch]).powi(2) / m;
            }
        }
        let std = (var[ch] + eps).sqrt();
        for b in 0..n {
            for i in 0..inner {
                let k = idx(b, ch, i);
                y[k] = (x[k] - mean[ch]) / std * gamma[ch] + beta[ch];
            }
        }
    }
    (y, mean, var)
}

/// f64 gradients of sum(y * r) through the batch norm: (dx, dgamma, dbeta), dx from the
/// full Jacobian per channel, `dy_j/dx_i = gamma rstd (delta_ij - 1/M - xhat_i xhat_j / M)`.
fn bn_ref_grads(
    x: &[f64],
    gamma: &[f64],
    r: &[f64],
    n: usize,
    c: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let inner = x.len() / (n * c);
    let m = (n * inner) as f64;
    let (_, mean, var) = bn_ref(x, gamma, &vec![0.0; c], n, c, eps);
    let mut dx = vec![0.0; x.len()];
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for ch in 0..c {
        let rstd = 1.0 / (var[ch] + eps).sqrt();
        let ks: Vec<usize> = (0..n)
            .flat_map(|b| (0..inner).map(move |i| (b * c + ch) * inner + i))
            .collect();
        let xhat = |k: usize| (x[k] - mean[ch]) * rstd;
        for &j in &ks {
            dgamma[ch] += r[j] * xhat(j);
            dbeta[ch] += r[j];
        }
        for &i in &ks {
            let mut s = 0.0;
            for &j in &ks {
                let delta = if i == j { 1.0 } else { 0.0 };
                s += r[j] * gamma[ch] * rstd * (delta - 1.0 / m - xhat(i) * xhat(j) / m);
            }
            dx[i] = s;
        }
    }
    (dx, dgamma, dbeta)
}

struct BnCase<const D: usize> {
    shape: [usize; D],
    /// Added to every input value (a mean far from 0 against a small spread).
    offset: f64,
    gamma_grad: bool,
    x_grad: bool,
}

fn check_bn<B: AutodiffBackend, const D: usize>(case: BnCase<D>) {
    let shape = case.shape;
    let (n, c) = (shape[0], shape[1]);
    let len: usize = shape.iter().product();
    let eps = 1e-5;
    let x: Vec<f64> = rounded(
        &values(len, 41)
            .iter()
            .map(|v| v + case.offset)
            .collect::<Vec<_>>(),
    );
    let r = rounded(&values(len, 42));
    let gamma = rounded(&values(c, 43).iter().map(|v| 1.0 + v).collect::<Vec<_>>());
    let beta = rounded(&values(c, 44));
    let mut bn: BatchNorm<B> = BatchNormConfig::new(c)
        .with_epsilon(eps)
        .init(&Default::default());
    bn.gamma = Param::from_tensor(tensor(&gamma, [c])).set_require_grad(case.gamma_grad);
    bn.beta = Param::from_tensor(tensor(&beta, [c]));
    let mut xt = tensor::<B, D>(&x, shape);
    if case.x_grad {
        xt = xt.require_grad();
    }
    let y = ops::batch_norm(&bn, xt.clone());
    let loss = (y.clone() * tensor::<B, D>(&r, shape)).sum();
    let grads = loss.backward();
    let (want_y, mean, var) = bn_ref(&x, &gamma, &beta, n, c, eps);
    let (want_dx, want_dgamma, want_dbeta) = bn_ref_grads(&x, &gamma, &r, n, c, eps);
    let what = format!("{shape:?} offset {}", case.offset);
    assert_close(&format!("y {what}"), &read(y), &want_y, 1e-4);
    match xt.grad(&grads) {
        Some(dx) => {
            assert!(case.x_grad);
            assert_close(&format!("dx {what}"), &read(dx), &want_dx, 1e-4);
        }
        None => assert!(!case.x_grad, "no input gradient {what}"),
    }
    match bn.gamma.grad(&grads) {
        Some(dg) => {
            assert!(case.gamma_grad);
            assert_close(&format!("dgamma {what}"), &read(dg), &want_dgamma, 1e-4);
        }
        None => assert!(!case.gamma_grad, "no gamma gradient {what}"),
    }
    let db = bn.beta.grad(&grads).expect("beta gradient");
    assert_close(&format!("dbeta {what}"), &read(db), &want_dbeta, 1e-5);
    // Running statistics: Burn's rule, momentum 0.1, from mean 0 and variance 1, biased
    // variance.
    let want_rm: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
    let want_rv: Vec<f64> = var.iter().map(|v| 0.9 + 0.1 * v).collect();
    assert_close(
        &format!("running mean {what}"),
        &read(bn.running_mean.value_sync()),
        &want_rm,
        1e-5,
    );
    assert_close(
        &format!("running var {what}"),
        &read(bn.running_var.value_sync()),
        &want_rv,
        1e-5,
    );
}

fn bn_all<B: AutodiffBackend>() {
    let case = |shape: [usize; 4]| BnCase {
        shape,
        offset: 0.0,
        gamma_grad: true,
        x_grad: true,
    };
    check_bn::<B, 4>(case([3, 5, 4, 6]));
    check_bn::<B, 4>(case([37, 3, 2, 2]));
    check_bn::<B, 4>(case([2, 3, 1, 1]));
    // A map with more than 8 values per plane and a ragged tail.
    check_bn::<B, 4>(case([2, 2, 5, 7]));
    // One value per channel: variance 0, y = beta, dx = 0.
    check_bn::<B, 4>(case([1, 2, 1, 1]));
    check_bn::<B, 4>(BnCase {
        offset: 30.0,
        ..case([4, 3, 3, 3])
    });
    // Frozen scale (IResNet's `features`), input without gradient.
    check_bn::<B, 4>(BnCase {
        gamma_grad: false,
        x_grad: false,
        ..case([3, 5, 4, 6])
    });
    // BatchNorm1d on [N, C] and on [N, C, L].
    for (gamma_grad, n) in [(true, 7), (false, 32)] {
        check_bn::<B, 2>(BnCase {
            shape: [n, 6],
            offset: 0.0,
            gamma_grad,
            x_grad: true,
        });
    }
    check_bn::<B, 3>(BnCase {
        shape: [2, 4, 5],
        offset: 0.0,
        gamma_grad: true,
        x_grad: true,
    });
}

#[test]
fn batch_norm_matches_f64_reference_on_flex_kernel() {
    bn_all::<AdFlex>();
}

#[test]
fn batch_norm_matches_f64_reference_on_ndarray() {
    bn_all::<AdNd>();
}

/// The Jacobian reference of the batch-norm gradients against central differences of the
/// f64 forward.
#[test]
#[allow(clippy::needless_range_loop)]
fn batch_norm_reference_gradients_match_finite_differences() {
    let (n, c, eps) = (3, 2, 1e-5);
    let x = values(n * c * 4, 51);
    let gamma: Vec<f64> = values(c, 52).iter().map(|v| 1.0 + v).collect();
    let beta = values(c, 53);
    let r = values(x.len(), 54);
    let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
        bn_ref(x, g, b, n, c, eps)
            .0
            .iter()
            .zip(&r)
            .map(|(y, r)| y * r)
            .sum()
    };
    let (dx, dgamma, dbeta) = bn_ref_grads(&x, &gamma, &r, n, c, eps);
    let h = 1e-6;
    let fd = |v: &[f64], i: usize, f: &dyn Fn(&[f64]) -> f64| {
        let (mut a, mut b) = (v.to_vec(), v.to_vec());
        a[i] += h;
        b[i] -= h;
        (f(&a) - f(&b)) / (2.0 * h)
    };
    for i in 0..x.len() {
        let g = fd(&x, i, &|v| loss(v, &gamma, &beta));
        assert!((g - dx[i]).abs() < 1e-6, "dx[{i}] {g} vs {}", dx[i]);
    }
    for i in 0..c {
        let g = fd(&gamma, i, &|v| loss(&x, v, &beta));
        assert!(
            (g - dgamma[i]).abs() < 1e-6,
            "dgamma[{i}] {g} vs {}",
            dgamma[i]
        );
        let g = fd(&beta, i, &|v| loss(&x, &gamma, v));
        assert!(
            (g - dbeta[i]).abs() < 1e-6,
            "dbeta[{i}] {g} vs {}",
            dbeta[i]
        );
    }
}
