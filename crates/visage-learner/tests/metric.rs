//! The verification metric on hand-built embeddings whose protocol numbers follow by hand, fed
//! in one batch or in several; the model's refusals; the inference step's embeddings.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use burn::train::metric::{Adaptor, Metric, MetricMetadata, Numeric, NumericEntry};
use burn::train::InferenceStep;
use visage_backbones::{BackboneConfig, BackboneKind};
use visage_data::{ImageBatcher, ImageSample};
use visage_heads::heads::{ArcFaceConfig, CenterConfig};
use visage_heads::HeadConfig;
use visage_learner::{EmbeddingOutput, FaceModel, VerificationInput, VerificationMetric};

type B = Flex;

fn meta() -> MetricMetadata {
    MetricMetadata {
        progress: burn::data::dataloader::Progress {
            items_processed: 1,
            items_total: 1,
        },
        global_progress: burn::data::dataloader::Progress {
            items_processed: 1,
            items_total: 1,
        },
        iteration: Some(0),
        lr: None,
    }
}

fn input(rows: &[[f32; 2]]) -> VerificationInput {
    let t = Tensor::<B, 2>::from_data(
        TensorData::new(rows.concat(), [rows.len(), 2]),
        &Default::default(),
    );
    EmbeddingOutput { embeddings: t }.adapt()
}

fn entry(e: &burn::train::metric::SerializedEntry) -> (f64, usize) {
    match NumericEntry::deserialize(&e.serialized).unwrap() {
        NumericEntry::Aggregated {
            aggregated_value,
            count,
        } => (aggregated_value, count),
        NumericEntry::Value(v) => (v, 1),
    }
}

/// 20 pairs alternating genuine / impostor. Genuine pairs are two equal unit vectors (cosine
/// distance 0), impostor pairs two orthogonal ones (distance 2 in squared L2 of unit
/// vectors): every threshold between separates them, so every fold scores 100 % and any TAR
/// is 100 %.
fn separable() -> (Vec<[f32; 2]>, Vec<bool>) {
    let mut rows = Vec::new();
    let mut issame = Vec::new();
    for i in 0..20 {
        let same = i % 2 == 0;
        rows.push([1.0, 0.0]);
        rows.push(if same { [3.0, 0.0] } else { [0.0, 2.0] });
        issame.push(same);
    }
    (rows, issame)
}

#[test]
fn separable_pairs_score_100_in_one_batch_or_several() {
    let (rows, issame) = separable();
    let mut acc = VerificationMetric::accuracy(issame.clone()).unwrap();
    let e = acc.update(&input(&rows), &meta());
    assert_eq!(entry(&e), (100.0, 1));
    assert_eq!(acc.last(), Some(100.0));

    // Batches of 7, 7, ... rows: weight 0 until the set is complete, then the number.
    let mut tar = VerificationMetric::tar_at_far(issame, "1e-1").unwrap();
    let chunks: Vec<_> = rows.chunks(7).collect();
    for (k, chunk) in chunks.iter().enumerate() {
        let (v, count) = entry(&tar.update(&input(chunk), &meta()));
        if k + 1 < chunks.len() {
            assert_eq!((v, count), (0.0, 0), "chunk {k}");
        } else {
            assert_eq!((v, count), (100.0, 1));
        }
    }
    assert_eq!(tar.value().current(), 100.0);
    // The next epoch starts from an empty set.
    tar.clear();
    let (v, count) = entry(&tar.update(&input(&rows[..4]), &meta()));
    assert_eq!((v, count), (0.0, 0));
}

/// Every pair at the same distance: whatever the threshold, a fold of one genuine and one
/// impostor pair is half right, so the 10-fold accuracy is exactly 50 %.
#[test]
fn indistinguishable_pairs_score_50() {
    let rows: Vec<[f32; 2]> = (0..40)
        .map(|i| if i % 2 == 0 { [1.0, 0.0] } else { [0.6, 0.8] })
        .collect();
    let issame: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
    let mut acc = VerificationMetric::accuracy(issame).unwrap();
    let (v, count) = entry(&acc.update(&input(&rows), &meta()));
    assert!((v - 50.0).abs() < 1e-9, "{v}");
    assert_eq!(count, 1);
}

#[test]
fn bad_sets_and_inputs_are_errors_or_weightless_entries_never_nan() {
    let (rows, issame) = separable();
    assert!(VerificationMetric::accuracy(issame[..8].to_vec()).is_err());
    assert!(VerificationMetric::accuracy(vec![true; 12]).is_err());
    assert!(VerificationMetric::tar_at_far(issame.clone(), "0.001").is_err());

    // Too many rows (a shuffled or repeated loader): weight 0 and a message, no NaN.
    let mut acc = VerificationMetric::accuracy(issame).unwrap();
    let mut more = rows.clone();
    more.extend_from_slice(&rows[..2]);
    let e = acc.update(&input(&more), &meta());
    assert_eq!(entry(&e), (0.0, 0));
    assert!(e.formatted.contains("pair order"), "{}", e.formatted);
    // Non-finite embeddings: weight 0, the protocol's message.
    let mut nan = rows.clone();
    nan[3] = [f32::NAN, 0.0];
    let e = acc.update(&input(&nan), &meta());
    assert_eq!(entry(&e), (0.0, 0));
    assert!(acc.value().current().is_finite());
}

#[test]
fn the_model_refuses_rule_updated_heads_and_embeds_with_its_backbone() {
    let device = Default::default();
    let backbone = || {
        BackboneConfig {
            embedding_dim: Some(8),
            in_channels: Some(3),
            ..BackboneConfig::new(BackboneKind::LeNetPP)
        }
        .init::<Autodiff<B>>(&device)
        .unwrap()
    };
    let center = HeadConfig::Center(CenterConfig::default())
        .init::<Autodiff<B>>(5, 8, &device)
        .unwrap();
    let e = FaceModel::new(backbone(), center).unwrap_err().to_string();
    assert!(
        e.contains("alpha rule") && e.contains("visage train"),
        "{e}"
    );

    let head = HeadConfig::ArcFace(ArcFaceConfig::default())
        .init::<Autodiff<B>>(5, 8, &device)
        .unwrap();
    let model = FaceModel::new(backbone(), head).unwrap();
    let samples: Vec<ImageSample> = (0..3)
        .map(|i| ImageSample::new(vec![(i * 40) as u8; 28 * 28 * 3], 28, 28, i).unwrap())
        .collect();
    let inner = burn::module::AutodiffModule::valid(&model);
    let batch = ImageBatcher.batch::<B>(&samples, &device).unwrap();
    let direct: Vec<f32> = inner
        .backbone
        .forward(batch.images.clone())
        .into_data()
        .to_vec()
        .unwrap();
    let out = InferenceStep::step(&inner, Ok(batch));
    assert_eq!(out.embeddings.dims(), [3, 8]);
    let got: Vec<f32> = out.embeddings.into_data().to_vec().unwrap();
    assert_eq!(got, direct);
}
