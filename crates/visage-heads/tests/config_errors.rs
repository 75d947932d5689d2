//! Invalid configurations and inputs are errors naming the field or tensor, never panics.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use visage_heads::{HeadConfig, HeadError, HeadKind, HeadState, HeadTensors};

type B = Autodiff<NdArray<f32>>;

fn field_error(spec: &HeadSpec) -> &'static str {
    match spec.to_config(10, 4) {
        Err(HeadError::InvalidField { field, .. }) => field,
        other => panic!("expected an invalid field for {spec:?}, got {other:?}"),
    }
}

#[test]
fn out_of_range_values_name_their_field() {
    let mut s = HeadSpec::new(HeadKind::ArcFace);
    s.margin = Some(1.6);
    assert_eq!(field_error(&s), "margin");
    s.margin = Some(-0.1);
    assert_eq!(field_error(&s), "margin");
    s.margin = Some(f64::NAN);
    assert_eq!(field_error(&s), "margin");
    let mut s = HeadSpec::new(HeadKind::CosFace);
    s.scale = Some(0.0);
    assert_eq!(field_error(&s), "scale");
    s.scale = Some(-3.0);
    assert_eq!(field_error(&s), "scale");
    for m in [0u32, 5] {
        let mut s = HeadSpec::new(HeadKind::SphereFace);
        s.margin_int = Some(m);
        assert_eq!(field_error(&s), "margin_int");
        s.kind = HeadKind::LSoftmax;
        assert_eq!(field_error(&s), "margin_int");
    }
    let mut s = HeadSpec::new(HeadKind::NormFace);
    s.scale = Some(-1.0);
    assert_eq!(field_error(&s), "scale");
    let mut s = HeadSpec::new(HeadKind::Combined);
    s.m3 = Some(1.5);
    assert_eq!(field_error(&s), "m3");
    let mut s = HeadSpec::new(HeadKind::Triplet);
    s.margin = Some(0.0);
    assert_eq!(field_error(&s), "margin");
    let mut s = HeadSpec::new(HeadKind::Center);
    s.alpha = Some(0.0);
    assert_eq!(field_error(&s), "alpha");
    let mut s = HeadSpec::new(HeadKind::SphereFace);
    s.gamma = Some(-1.0);
    assert_eq!(field_error(&s), "gamma");
    assert!(matches!(
        HeadSpec::new(HeadKind::AdaCos).to_config(1, 4),
        Err(HeadError::InvalidField {
            field: "classes",
            ..
        })
    ));
}

#[test]
fn toml_unknown_and_foreign_keys_are_named() {
    let err = toml::from_str::<HeadConfig>("kind = \"arcface\"\nmargn = 0.5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("margn"), "{err}");
    let err = toml::from_str::<HeadConfig>("kind = \"arcfase\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("arcfase"), "{err}");
    // a key of another kind: named, with the keys this kind takes
    let err = toml::from_str::<HeadConfig>("kind = \"arcface\"\ngamma = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("gamma"), "{err}");
    assert!(err.contains("easy_margin"), "{err}");
    let err = toml::from_str::<HeadConfig>("kind = \"subcenter_arcface\"\neasy_margin = true\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("easy_margin"), "{err}");
    let err = toml::from_str::<HeadConfig>("scale = 1.0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("kind"), "{err}");
    let config: HeadConfig = toml::from_str("kind = \"triplet\"\nmining = \"semi_hard\"\ndistance = \"l2\"\nreduction = \"mean_nonzero\"\n").unwrap();
    assert!(config.validate(0, 4).is_ok());
}

#[test]
fn every_kind_round_trips_through_toml_with_its_name() {
    for kind in HeadKind::ALL {
        let config = HeadConfig::new(kind);
        let text = toml::to_string(&config).unwrap();
        assert!(
            text.contains(&format!("kind = \"{}\"", kind.name())),
            "{text}"
        );
        assert_eq!(toml::from_str::<HeadConfig>(&text).unwrap(), config);
    }
    let config: HeadConfig = toml::from_str("kind = \"subcenter_arcface\"\n").unwrap();
    assert_eq!(
        config,
        HeadConfig::SubCenterArcFace(visage_heads::heads::SubCenterArcFaceConfig {
            scale: 64.0,
            margin: 0.5,
            k: 3,
            chunk_classes: None,
        })
    );
}

fn head_and_batch(
    labels: Vec<i64>,
    width: usize,
) -> (visage_heads::Head<B>, Tensor<B, 2>, Tensor<B, 1, Int>) {
    let device = Default::default();
    let head = HeadConfig::new(HeadKind::CosFace)
        .init::<B>(5, 4, &device)
        .unwrap();
    let n = labels.len();
    let x = Tensor::from_data(
        TensorData::new(vec![0.5f32; n * width], [n, width]),
        &device,
    );
    let l = Tensor::from_data(TensorData::new(labels, [n]), &device);
    (head, x, l)
}

#[test]
fn bad_batches_are_errors() {
    let (head, x, l) = head_and_batch(vec![0, 5], 4);
    let err = head
        .forward_checked(x, l, &mut HeadState::default())
        .unwrap_err();
    assert_eq!(
        err,
        HeadError::LabelOutOfRange {
            index: 1,
            label: 5,
            classes: 5
        }
    );
    assert!(err.to_string().contains("labels[1] = 5"));
    let (head, x, l) = head_and_batch(vec![-1, 0], 4);
    assert!(matches!(
        head.forward_checked(x, l, &mut HeadState::default()),
        Err(HeadError::LabelOutOfRange { label: -1, .. })
    ));
    let (head, x, l) = head_and_batch(vec![0, 1], 3);
    assert!(matches!(
        head.forward_checked(x, l, &mut HeadState::default()),
        Err(HeadError::Shape {
            tensor: "embeddings",
            ..
        })
    ));
    let (head, x, _) = head_and_batch(vec![0, 1], 4);
    let l3 = Tensor::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &Default::default());
    assert!(matches!(
        head.forward_checked(x, l3, &mut HeadState::default()),
        Err(HeadError::Shape {
            tensor: "labels",
            ..
        })
    ));
    let (head, x, l) = head_and_batch(vec![], 4);
    assert_eq!(
        head.forward_checked(x, l, &mut HeadState::default())
            .unwrap_err(),
        HeadError::EmptyBatch
    );
}

#[test]
fn wrong_weight_shape_and_missing_weight_are_named() {
    let device = Default::default();
    let config = HeadSpec::new(HeadKind::ArcFace).to_config(5, 4).unwrap();
    let w = to_tensor::<B>(&Rng(1).mat(4, 4), &device);
    let err = config
        .init_with(HeadTensors {
            weight: Some(w),
            bias: None,
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            HeadError::Shape {
                tensor: "weight",
                ..
            }
        ),
        "{err:?}"
    );
    let err = config
        .init_with::<B>(HeadTensors {
            weight: None,
            bias: None,
        })
        .unwrap_err();
    assert_eq!(
        err,
        HeadError::MissingField {
            field: "weight",
            kind: "arcface"
        }
    );
    let center = HeadSpec::new(HeadKind::Center).to_config(5, 4).unwrap();
    let err = center
        .init_with::<B>(HeadTensors {
            weight: None,
            bias: None,
        })
        .unwrap_err();
    assert_eq!(
        err,
        HeadError::MissingField {
            field: "centers",
            kind: "center"
        }
    );
}
