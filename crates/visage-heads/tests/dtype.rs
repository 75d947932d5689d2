//! Tensors the heads create themselves (a learned scale, a zero bias, the contrastive and
//! triplet masks, the centre update's sums and counts) take the dtype of the data they meet, also
//! when an f32 backend set the device's default dtype first (Burn 0.21's per-device registry;
//! NdArray<f32> and NdArray<f64> share one device). Values are checked against hand-derived
//! numbers.

use burn::backend::NdArray;
use burn::tensor::{DType, Int, Tensor, TensorData};
use visage_heads::heads::{NormFaceConfig, SoftmaxConfig};
use visage_heads::loss::{CenterLossConfig, ContrastiveConfig, TripletConfig};
use visage_heads::{HeadConfig, HeadTensors};

type F32 = NdArray<f32>;
type F64 = NdArray<f64>;

fn f64_matrix(rows: &[[f64; 2]], device: &burn::backend::ndarray::NdArrayDevice) -> Tensor<F64, 2> {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), 2]), (device, DType::F64))
}

fn values<const D: usize>(t: Tensor<F64, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

#[test]
fn created_tensors_take_the_dtype_of_their_data() {
    let device = Default::default();
    // an f32 backend touches the device first: its default dtype is now f32
    let _ = Tensor::<F32, 1>::zeros([1], &device);
    let labels = |l: &[i64]| {
        Tensor::<F64, 1, Int>::from_data(TensorData::new(l.to_vec(), [l.len()]), &device)
    };

    // contrastive, unnormalised: one genuine pair at distance 5, loss 0.5 * 5^2 = 12.5
    let x = f64_matrix(&[[0.0, 0.0], [3.0, 4.0]], &device);
    let contrastive = ContrastiveConfig::new()
        .with_normalize(false)
        .init()
        .unwrap();
    let loss = contrastive.loss(x.clone(), labels(&[1, 1]));
    assert_eq!(loss.dtype(), DType::F64);
    assert!((values(loss)[0] - 12.5).abs() < 1e-12);

    // triplet: the identity mask in the loss's dtype, a finite f64 loss
    let x3 = f64_matrix(&[[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], &device);
    let triplet = TripletConfig::new().init().unwrap();
    let loss = triplet.loss(x3, labels(&[1, 1, 2]));
    assert_eq!(loss.dtype(), DType::F64);
    assert!(values(loss)[0].is_finite());

    // centre update, alpha 0.5: c0 = (1, 1), x = (0, 0) of class 0:
    // delta = (c0 - x) / (1 + 1) = (0.5, 0.5), new c0 = c0 - 0.5 delta = (0.75, 0.75)
    let centers = f64_matrix(&[[1.0, 1.0], [2.0, 2.0]], &device);
    let center = CenterLossConfig::new(2, 2)
        .with_alpha(0.5)
        .init_with(centers)
        .unwrap();
    let updated = center.updated_centers(f64_matrix(&[[0.0, 0.0]], &device), labels(&[0]));
    assert_eq!(updated.dtype(), DType::F64);
    assert_eq!(values(updated), vec![0.75, 0.75, 2.0, 2.0]);

    // softmax with a zero bias: logits x W^T = (1*2 + 2*3, 1*(-1) + 2*0.5) = (8, 0)
    let softmax = HeadConfig::Softmax(SoftmaxConfig { bias: true });
    let head = softmax
        .init_with::<F64>(
            2,
            2,
            HeadTensors {
                weight: Some(f64_matrix(&[[2.0, 3.0], [-1.0, 0.5]], &device)),
                bias: None,
            },
        )
        .unwrap();
    let classifier = head.classifier.as_ref().unwrap();
    let logits = classifier.logits(f64_matrix(&[[1.0, 2.0]], &device));
    assert_eq!(logits.dtype(), DType::F64);
    assert_eq!(values(logits), vec![8.0, 0.0]);

    // a learned scale starts at its initial value, in the dtype of the class weights
    let normface = HeadConfig::NormFace(NormFaceConfig {
        scale: Some(7.0),
        learnable_scale: true,
        chunk_classes: None,
    });
    let head = normface
        .init_with::<F64>(
            2,
            2,
            HeadTensors {
                weight: Some(f64_matrix(&[[1.0, 0.0], [0.0, 1.0]], &device)),
                bias: None,
            },
        )
        .unwrap();
    let scale = head.scale.as_ref().unwrap().val();
    assert_eq!(scale.dtype(), DType::F64);
    assert_eq!(values(scale), vec![7.0]);
    // and its logits: 7 cos theta_j = 7 * (0.6, 0.8) for x = (3, 4)
    let logits = head
        .inference_logits(f64_matrix(&[[3.0, 4.0]], &device))
        .unwrap();
    assert_eq!(logits.dtype(), DType::F64);
    let got = values(logits);
    assert!(
        (got[0] - 4.2).abs() < 1e-12 && (got[1] - 5.6).abs() < 1e-12,
        "{got:?}"
    );
}

/// Building a head draws nothing: Burn's parameters are drawn on first use, in the order a
/// model uses (or visits) them, so a head that read its weights while being built would draw
/// them before the backbone's and change every seeded run's initial weights. The bias and the
/// learned scale still come out in the device's default dtype.
#[test]
fn building_a_head_leaves_its_parameters_undrawn() {
    let device = Default::default();
    for config in [
        HeadConfig::Softmax(SoftmaxConfig { bias: true }),
        HeadConfig::NormFace(NormFaceConfig {
            scale: Some(7.0),
            learnable_scale: true,
            chunk_classes: None,
        }),
    ] {
        let head = config.init::<F32>(3, 2, &device).unwrap();
        let classifier = head.classifier.as_ref().unwrap();
        assert!(
            !classifier.weight.is_initialized(),
            "{}: class weights drawn while building the head",
            config.name()
        );
        if let Some(bias) = &classifier.bias {
            assert_eq!(bias.val().dtype(), DType::F32);
            assert_eq!(
                bias.val().into_data().to_vec::<f32>().unwrap(),
                vec![0.0; 3]
            );
        }
        if let Some(scale) = &head.scale {
            assert_eq!(scale.val().dtype(), DType::F32);
        }
    }
    let center = CenterLossConfig::new(3, 2).init::<F32>(&device).unwrap();
    assert!(
        !center.centers.is_initialized(),
        "centres drawn while building"
    );
}
