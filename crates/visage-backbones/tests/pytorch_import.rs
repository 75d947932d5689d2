//! InsightFace state dicts in: key names as `iresnet.py` / `mobilefacenet.py` produce them,
//! tensors placed right (Linear transposed, BN running statistics, PReLU slopes), whole-network
//! embeddings equal to an f64 plain-loop reference of the PyTorch forward (eval mode), and
//! typed errors for bad files.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use burn::backend::Flex;
use burn::tensor::Tensor;
use common::*;
use visage_backbones::{
    expected_state_dict, load_weights, Backbone, BackboneConfig, BackboneError, BackboneKind,
    IResNetConfig, MobileFaceNetConfig,
};

type B = Flex;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-backbones-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn as_set(v: Vec<(String, Vec<usize>)>) -> BTreeSet<(String, Vec<usize>)> {
    v.into_iter().collect()
}

#[test]
fn iresnet_keys_are_insightface_keys() {
    let device = Default::default();
    for (depth, layers) in [(18, [2, 2, 2, 2]), (50, [3, 4, 14, 3])] {
        let model = IResNetConfig::new().with_depth(depth).init::<B>(&device);
        let ours = as_set(expected_state_dict(&model));
        let theirs = as_set(iresnet_keys(layers, [7, 7], 512));
        let missing: Vec<_> = theirs.difference(&ours).take(5).collect();
        let extra: Vec<_> = ours.difference(&theirs).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "iresnet{depth}: missing {missing:?} extra {extra:?}"
        );
    }
}

#[test]
fn mobilefacenet_keys_are_insightface_keys() {
    let device = Default::default();
    let model = MobileFaceNetConfig::new().init::<B>(&device);
    let ours = as_set(expected_state_dict(&model));
    let theirs = as_set(mbf_keys([1, 4, 6, 2], 2, 512));
    assert_eq!(ours.len(), theirs.len());
    let missing: Vec<_> = theirs.difference(&ours).take(5).collect();
    let extra: Vec<_> = ours.difference(&theirs).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "mbf: missing {missing:?} extra {extra:?}"
    );
    // mbf_large's residual first stage maps to layers.1.layers.<i>
    let large = MobileFaceNetConfig::new()
        .with_blocks([2, 8, 12, 4])
        .with_scale(4)
        .init::<B>(&device);
    assert_eq!(
        as_set(expected_state_dict(&large)),
        as_set(mbf_keys([2, 8, 12, 4], 4, 512))
    );
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn assert_close(ours: &[f32], reference: &[f64], what: &str) {
    assert_eq!(ours.len(), reference.len());
    let scale = max_abs(reference);
    assert!(scale > 1e-3, "{what}: degenerate reference");
    let worst = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    // the criterion: within 1e-4 of the largest magnitude
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max diff {worst} vs scale {scale}"
    );
}

#[test]
fn iresnet18_safetensors_loads_and_matches_f64_reference() {
    let device = Default::default();
    // 32x32 input: final map 2x2 (so the flatten order matters), fc 2048 -> 512.
    let layers = [2, 2, 2, 2];
    let keys = iresnet_keys(layers, [2, 2], 512);
    let dict = random_dict(&keys, 7);
    let path = tmp("r18.safetensors");
    // a num_batches_tracked (int64) per BN as in real checkpoints: skipped
    write_safetensors(
        &path,
        &dict,
        &[("bn1.num_batches_tracked", vec![], vec![100])],
    );
    let model = IResNetConfig::new()
        .with_depth(18)
        .with_input_size([32, 32])
        .init::<B>(&device);
    let model = load_weights(model, &path).unwrap();

    // placement: Linear transposed ([in, out] in Burn), BN stats, PReLU, downsample
    let fc: Vec<f32> = model.fc.weight.val().into_data().into_vec().unwrap();
    let (_, torch_fc) = &dict["fc.weight"];
    for (o, i) in [(0, 0), (3, 17), (511, 2), (100, 2047)] {
        assert_eq!(fc[i * 512 + o], torch_fc[o * 2048 + i]);
    }
    let rv: Vec<f32> = model.layer2[0]
        .bn3
        .running_var
        .value()
        .into_data()
        .into_vec()
        .unwrap();
    assert_eq!(rv, dict["layer2.0.bn3.running_var"].1);
    let a: Vec<f32> = model.layer3[1]
        .prelu
        .alpha
        .val()
        .into_data()
        .into_vec()
        .unwrap();
    assert_eq!(a, dict["layer3.1.prelu.weight"].1);
    let ds = model.layer4[0].downsample.as_ref().unwrap();
    let w: Vec<f32> = ds.conv.weight.val().into_data().into_vec().unwrap();
    assert_eq!(w, dict["layer4.0.downsample.0.weight"].1);
    let g: Vec<f32> = model.features.gamma.val().into_data().into_vec().unwrap();
    assert_eq!(g, dict["features.weight"].1);

    // whole network vs the f64 reference, 2 images
    let imgs: Vec<Map> = (0..2).map(|s| random_image(3, 32, 32, 100 + s)).collect();
    let flat: Vec<f32> = imgs
        .iter()
        .flat_map(|m| m.v.iter().map(|&x| x as f32))
        .collect();
    let x = Tensor::<B, 1>::from_floats(flat.as_slice(), &device).reshape([2, 3, 32, 32]);
    let out: Vec<f32> = model.forward(x).into_data().into_vec().unwrap();
    for (n, img) in imgs.iter().enumerate() {
        let reference = iresnet_forward(&dict, layers, img);
        assert_close(&out[n * 512..(n + 1) * 512], &reference, "iresnet18");
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn mobilefacenet_safetensors_loads_and_matches_f64_reference() {
    let device = Default::default();
    // a small member of the family (scale 1, one block per stage) at the real 112x112 input
    let blocks = [1, 1, 1, 1];
    let keys = mbf_keys(blocks, 1, 128);
    let dict = random_dict(&keys, 11);
    let path = tmp("mbf.safetensors");
    write_safetensors(&path, &dict, &[]);
    let cfg = MobileFaceNetConfig::new()
        .with_blocks(blocks)
        .with_scale(1)
        .with_embedding_dim(128);
    let model = load_weights(cfg.init::<B>(&device), &path).unwrap();
    let img = random_image(3, 112, 112, 5);
    let flat: Vec<f32> = img.v.iter().map(|&x| x as f32).collect();
    let x = Tensor::<B, 1>::from_floats(flat.as_slice(), &device).reshape([1, 3, 112, 112]);
    let out: Vec<f32> = model.forward(x).into_data().into_vec().unwrap();
    let reference = mbf_forward(&dict, blocks, &img);
    assert_close(&out, &reference, "mobilefacenet");
    std::fs::remove_file(&path).ok();
}

#[test]
fn backbone_enum_loads_the_same_keys_and_strips_module_prefix() {
    let device = Default::default();
    let cfg = BackboneConfig {
        input_size: Some([16, 16]),
        embedding_dim: Some(8),
        ..BackboneConfig::new(BackboneKind::IResNet(18))
    };
    let keys = iresnet_keys([2, 2, 2, 2], [1, 1], 8);
    let dict: Dict = random_dict(&keys, 3)
        .into_iter()
        .map(|(k, v)| (format!("module.{k}"), v)) // DataParallel checkpoints
        .collect();
    let path = tmp("r18-module.safetensors");
    write_safetensors(&path, &dict, &[]);
    let model: Backbone<B> = load_weights(cfg.init::<B>(&device).unwrap(), &path).unwrap();
    let Backbone::IResNet(net) = &model else {
        panic!("not an iresnet")
    };
    let w: Vec<f32> = net.conv1.weight.val().into_data().into_vec().unwrap();
    assert_eq!(w, dict["module.conv1.weight"].1);
    std::fs::remove_file(&path).ok();
}

#[test]
fn bad_files_give_typed_errors() {
    let device = Default::default();
    let cfg = IResNetConfig::new()
        .with_depth(18)
        .with_input_size([16, 16])
        .with_embedding_dim(8);
    let keys = iresnet_keys([2, 2, 2, 2], [1, 1], 8);
    let good = random_dict(&keys, 1);

    // missing key
    let mut d = good.clone();
    d.remove("layer2.1.prelu.weight");
    let p = tmp("missing.safetensors");
    write_safetensors(&p, &d, &[]);
    match load_weights(cfg.init::<B>(&device), &p) {
        Err(BackboneError::MissingKey {
            key,
            path,
            expected,
            ..
        }) => {
            assert_eq!(key, "layer2.1.prelu.weight");
            assert_eq!(path, p);
            assert_eq!(expected, vec![128]);
        }
        other => panic!("expected MissingKey, got {other:?}"),
    }

    // wrong shape (an embedding of 16 where 8 is expected)
    let mut d = good.clone();
    d.insert("fc.weight".into(), (vec![16, 512], vec![0.0; 16 * 512]));
    let p = tmp("shape.safetensors");
    write_safetensors(&p, &d, &[]);
    match load_weights(cfg.init::<B>(&device), &p) {
        Err(BackboneError::ShapeMismatch {
            key,
            expected,
            found,
            ..
        }) => {
            assert_eq!(key, "fc.weight");
            assert_eq!(expected, vec![8, 512]);
            assert_eq!(found, vec![16, 512]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }

    // keys of a deeper network (iresnet34 weights into iresnet18)
    let mut d = good.clone();
    d.insert("layer1.2.bn1.weight".into(), (vec![64], vec![1.0; 64]));
    let p = tmp("unused.safetensors");
    write_safetensors(&p, &d, &[]);
    match load_weights(cfg.init::<B>(&device), &p) {
        Err(BackboneError::UnusedKeys {
            count, examples, ..
        }) => {
            assert_eq!(count, 1);
            assert_eq!(examples, vec!["layer1.2.bn1.weight".to_string()]);
        }
        other => panic!("expected UnusedKeys, got {other:?}"),
    }

    // not a weight file, and no file at all
    let p = tmp("garbage.pth");
    std::fs::write(&p, b"this is not a checkpoint").unwrap();
    let err = load_weights(cfg.init::<B>(&device), &p).unwrap_err();
    assert!(matches!(err, BackboneError::ReadWeights { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.pth"), "{err}");
    let err = load_weights(cfg.init::<B>(&device), tmp("nope.pth")).unwrap_err();
    assert!(matches!(err, BackboneError::ReadWeights { .. }), "{err:?}");
}

#[test]
fn backbone_config_from_toml() {
    #[derive(serde::Deserialize)]
    struct File {
        backbone: BackboneConfig,
    }
    let a: File = toml::from_str("[backbone]\nkind = \"iresnet50\"\n").unwrap();
    assert_eq!(
        a.backbone.backbone_kind().unwrap(),
        BackboneKind::IResNet(50)
    );
    let b: File = toml::from_str(
        "[backbone]\nkind = \"iresnet\"\ndepth = 100\nembedding_dim = 256\ninput_size = [112, 112]\n",
    )
    .unwrap();
    assert_eq!(
        b.backbone.backbone_kind().unwrap(),
        BackboneKind::IResNet(100)
    );
    assert_eq!(b.backbone.embedding_dim().unwrap(), 256);
    let c: File = toml::from_str("[backbone]\nkind = \"mbf\"\n").unwrap();
    assert_eq!(
        c.backbone.backbone_kind().unwrap(),
        BackboneKind::MobileFaceNet
    );
    let s: File = toml::from_str("[backbone]\nkind = \"sphere_net\"\ndepth = 20\n").unwrap();
    assert_eq!(
        s.backbone.backbone_kind().unwrap(),
        BackboneKind::SphereNet(20)
    );
    assert_eq!(s.backbone.input_size().unwrap(), [112, 96]);
    let l: File = toml::from_str("[backbone]\nkind = \"lenet_pp\"\nembedding_dim = 3\n").unwrap();
    assert_eq!(l.backbone.embedding_dim().unwrap(), 3);
    assert_eq!(l.backbone.in_channels().unwrap(), 1);
    // errors
    let bad: File = toml::from_str("[backbone]\nkind = \"iresnet\"\ndepth = 51\n").unwrap();
    assert!(matches!(
        bad.backbone.backbone_kind(),
        Err(BackboneError::UnsupportedDepth { depth: 51, .. })
    ));
    let bad: File = toml::from_str("[backbone]\nkind = \"iresnet50\"\ndepth = 100\n").unwrap();
    assert!(bad.backbone.backbone_kind().is_err());
    let bad: File = toml::from_str("[backbone]\nkind = \"vgg16\"\n").unwrap();
    assert!(matches!(
        bad.backbone.backbone_kind(),
        Err(BackboneError::UnknownBackbone(_))
    ));
    assert!(toml::from_str::<File>("[backbone]\nkind = \"mbf\"\nwidth = 3\n").is_err());
    // names
    assert_eq!(
        "r100".parse::<BackboneKind>().unwrap(),
        BackboneKind::IResNet(100)
    );
    assert_eq!(
        "sphere64".parse::<BackboneKind>().unwrap(),
        BackboneKind::SphereNet(64)
    );
    assert!("iresnet".parse::<BackboneKind>().is_err());
    assert_eq!(BackboneKind::IResNet(50).to_string(), "iresnet50");
}

#[test]
fn torch_save_pth_loads_and_matches_f64_reference() {
    let device = Default::default();
    let blocks = [1, 1, 1, 1];
    let keys = mbf_keys(blocks, 1, 64);
    let dict = random_dict(&keys, 23);
    let path = tmp("backbone.pth");
    write_torch_save(
        &path,
        &dict,
        &[
            ("layers.0.layers.1.num_batches_tracked", vec![], vec![1234]),
            ("conv_sep.layers.1.num_batches_tracked", vec![], vec![1234]),
        ],
    );
    let cfg = MobileFaceNetConfig::new()
        .with_blocks(blocks)
        .with_scale(1)
        .with_embedding_dim(64);
    let model = load_weights(cfg.init::<B>(&device), &path).unwrap();
    // the GDC linear layer is transposed into Burn's [in, out]
    let lin: Vec<f32> = model.linear.weight.val().into_data().into_vec().unwrap();
    let (_, torch_lin) = &dict["features.layers.2.weight"];
    for (o, i) in [(0, 0), (5, 300), (63, 511)] {
        assert_eq!(lin[i * 64 + o], torch_lin[o * 512 + i]);
    }
    let img = random_image(3, 112, 112, 9);
    let flat: Vec<f32> = img.v.iter().map(|&x| x as f32).collect();
    let x = Tensor::<B, 1>::from_floats(flat.as_slice(), &device).reshape([1, 3, 112, 112]);
    let out: Vec<f32> = model.forward(x).into_data().into_vec().unwrap();
    assert_close(
        &out,
        &mbf_forward(&dict, blocks, &img),
        "mobilefacenet from .pth",
    );
    std::fs::remove_file(&path).ok();
}
