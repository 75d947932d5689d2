//! One image, three paths: a one-channel model sees the same input for the same colour image
//! file in training's batcher, in evaluation and in `visage embed`, and that input is the
//! ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, as PIL's `convert("L")`), computed here
//! in f64; a grey image's values are its grey levels.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::{Tensor, TensorData};
use visage_backbones::{Backbone, BackboneConfig, BackboneKind};
use visage_data::{ImageBatcher, ImageFolder, SampleSource};
use visage_infer::{embed_input, embed_samples, EmbedOptions, EmbedRequest, ModelSpec, NoProgress};

type B = Flex;
const SIZE: usize = 28;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-infer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Pseudo-random bytes (SplitMix64).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z >> 56) as u8
        })
        .collect()
}

fn write_png(path: &Path, pixels: &[u8], colour: image::ExtendedColorType) {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, SIZE as u32, SIZE as u32, colour)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

fn values(t: Tensor<B, 4>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn lenet_grey() -> BackboneConfig {
    let mut c = BackboneConfig::new(BackboneKind::LeNetPP);
    c.in_channels = Some(1);
    c.embedding_dim = Some(4);
    c
}

/// Training's input: the image-folder reader, then the batcher as the trainer calls it.
fn training_input(root: &Path) -> Vec<f32> {
    let folder = ImageFolder::open(root).unwrap();
    let sample = folder.get(0).unwrap();
    let batch = ImageBatcher
        .batch_channels::<B>(&[sample], 1, &Default::default())
        .unwrap();
    assert_eq!(batch.images.dims(), [1, 1, SIZE, SIZE]);
    values(batch.images)
}

#[test]
fn a_colour_image_is_the_same_bt601_luma_in_training_evaluation_and_embedding() {
    let dir = temp_dir("channels");
    let rgb = noise(11, SIZE * SIZE * 3);
    let root = dir.join("train");
    std::fs::create_dir_all(root.join("id0")).unwrap();
    let file = root.join("id0").join("face.png");
    write_png(&file, &rgb, image::ExtendedColorType::Rgb8);

    // The reference, in f64: luma in [0, 255] before rounding to 8 bits, normalised.
    let reference: Vec<f64> = rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .map(|l| (l / 255.0 - 0.5) / 0.5)
        .collect();
    // 8-bit rounding moves a value by at most half a level, and PIL's 16-bit fixed-point
    // weights (19595, 38470, 7471) / 65536 differ from 0.299, 0.587, 0.114 by < 1e-5, at
    // most 255 x 1.3e-5 < 0.01 level: (0.5 + 0.01) / 127.5.
    let tol = 0.51 / 127.5;

    let train = training_input(&root);
    let embed = visage_infer::read_image_input(&file, 1, [SIZE, SIZE]).unwrap();
    assert_eq!(train, embed, "training and embedding inputs differ");
    for (i, (&got, &want)) in train.iter().zip(&reference).enumerate() {
        assert!(
            (got as f64 - want).abs() <= tol,
            "pixel {i}: {got} vs BT.601 {want}"
        );
    }
    // The red channel (the old rule of training and evaluation) would be far off somewhere.
    assert!(rgb
        .chunks_exact(3)
        .zip(&reference)
        .any(|(p, &want)| ((p[0] as f64 / 255.0 - 0.5) / 0.5 - want).abs() > 0.1));

    // The embeddings: the model on training's tensor, evaluation's batched embedding of the
    // decoded image, and `visage embed`'s folder path through a Burn record on disk.
    let device = Default::default();
    let model: Backbone<B> = lenet_grey().init(&device).unwrap();
    let x = Tensor::<B, 4>::from_data(TensorData::new(train.clone(), [1, 1, SIZE, SIZE]), &device);
    let direct: Vec<f32> = model
        .forward(x)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap();
    // saved after the forward pass: Burn draws lazy parameters on first use
    model
        .clone()
        .save_file(
            dir.join("backbone"),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
        )
        .unwrap();

    let sample = visage_data::sample::read_image(&file, 0).unwrap();
    let options = EmbedOptions::new();
    let eval = embed_samples(
        &model,
        std::slice::from_ref(&sample),
        1,
        &options,
        &mut NoProgress,
        &device,
    )
    .unwrap();
    let held_out =
        visage_train::extract::embed_samples(&model, &[sample], 1, false, 8, &device).unwrap();

    let request = EmbedRequest {
        model: ModelSpec::new(lenet_grey(), dir.join("backbone.bin")),
        input: root.clone(),
        output: None,
        options,
        allow_non_finite: false,
    };
    let embedded = embed_input::<B>(&request, &device, &mut NoProgress).unwrap();
    assert_eq!(
        embedded.paths.as_deref(),
        Some(&["id0/face.png".to_string()][..])
    );
    for (name, e) in [
        ("evaluation", &eval.data),
        ("held-out evaluation", &held_out.data),
        ("embed", &embedded.embeddings.data),
    ] {
        assert_eq!(e.len(), direct.len(), "{name}");
        for (a, b) in e.iter().zip(&direct) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{name}: {a} vs {b}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_grey_image_keeps_its_grey_levels() {
    let dir = temp_dir("grey");
    let grey = noise(5, SIZE * SIZE);
    let root = dir.join("train");
    std::fs::create_dir_all(root.join("id0")).unwrap();
    let file = root.join("id0").join("g.png");
    write_png(&file, &grey, image::ExtendedColorType::L8);
    let train = training_input(&root);
    let embed = visage_infer::read_image_input(&file, 1, [SIZE, SIZE]).unwrap();
    assert_eq!(train, embed);
    for (&got, &g) in train.iter().zip(&grey) {
        let want = (g as f64 / 255.0 - 0.5) / 0.5;
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    // three channels: the grey level three times
    let rgb = visage_infer::read_image_input(&file, 3, [SIZE, SIZE]).unwrap();
    assert_eq!(&rgb[..SIZE * SIZE], &train[..]);
    assert_eq!(&rgb[SIZE * SIZE..2 * SIZE * SIZE], &train[..]);
    assert_eq!(&rgb[2 * SIZE * SIZE..], &train[..]);
    let _ = std::fs::remove_dir_all(&dir);
}
