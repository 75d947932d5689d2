//! The cross-entropy taken block by block (what a chunked or sharded classifier does) equals
//! the cross-entropy on the whole logit matrix, in value and gradient.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use common::*;
use visage_heads::loss::{cross_entropy, cross_entropy_from_parts, log_sum_exp, merge_log_sum_exp};
use visage_heads::ops::gather_target;

type F64 = Autodiff<NdArray<f64>>;

#[test]
fn blockwise_cross_entropy_equals_the_whole_matrix() {
    let device = Default::default();
    let (n, c) = (5usize, 12usize);
    // large logits too: a naive exp would overflow
    let mut m = Rng(3).mat(n, c);
    m[1].iter_mut().for_each(|v| *v *= 800.0);
    let labels = labels_tensor::<F64>(&[0, 11, 4, 4, 7], &device);
    let whole = to_tensor::<F64>(&m, &device).require_grad();
    let expected = cross_entropy(whole.clone(), labels.clone());
    let g_whole = whole.grad(&expected.backward()).unwrap();

    let blocked = to_tensor::<F64>(&m, &device).require_grad();
    let mut lse: Option<Tensor<F64, 2>> = None;
    for (start, width) in [(0usize, 5usize), (5, 4), (9, 3)] {
        let block = log_sum_exp(blocked.clone().narrow(1, start, width));
        lse = Some(match lse {
            None => block,
            Some(acc) => merge_log_sum_exp(acc, block),
        });
    }
    let target = gather_target(blocked.clone(), labels);
    let got = cross_entropy_from_parts(lse.unwrap(), target);
    let g_blocked = blocked.grad(&got.backward()).unwrap();

    let (a, b) = (got.into_scalar(), expected.into_scalar());
    assert!(
        a.is_finite() && (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{a} vs {b}"
    );
    assert_close(
        "grad",
        &from_tensor(g_blocked),
        &from_tensor(g_whole),
        1e-12,
    );
}
