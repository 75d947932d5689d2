//! Burn's `DataLoader` over every visage dataset kind: the synthetic identities, an image
//! folder, a RecordIO pack, MNIST IDX files, a `.bin` verification pack and an LFW folder. Each
//! loader must yield exactly the images and labels of visage's own reader, normalised by the
//! plain-loop rule `(x / 255 - 0.5) / 0.5` written here, in order (and as a permutation when
//! shuffled); a file that fails to decode must reach the consumer as an error, not end the
//! epoch early.

mod common;

use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use visage_data::recordio::pack_image_folder;
use visage_data::{
    BinPack, BurnDataset, ChannelBatcher, ImageBatch, ImageBatcher, ImageFolder, ImageSample, Lfw,
    Mnist, PairList, RecordIo, SampleSource, SynthConfig, SyntheticDataset, SyntheticSplit,
    VerificationSet,
};

type B = burn::backend::Flex;

/// The reference's tolerance: exact up to f32 rounding for RGB; for luma, visage rounds the
/// weighted sum to a byte in 16-bit fixed point, which may differ from the f64 rounding here by
/// one grey level (2 / 255 after normalisation) where the sum lies next to a half.
fn tolerance(channels: usize) -> f64 {
    if channels == 1 {
        2.0 / 255.0 + 1e-6
    } else {
        1e-6
    }
}

/// Plain-loop reference: sample -> CHW planes of `(x / 255 - 0.5) / 0.5` (RGB) or of the
/// BT.601 luma `0.299 R + 0.587 G + 0.114 B` for one channel.
fn reference(s: &ImageSample, channels: usize) -> Vec<f64> {
    let (h, w) = (s.height, s.width);
    let mut out = vec![0.0; channels * h * w];
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = s.rgb(y, x).map(f64::from);
            if channels == 1 {
                // Luma is stored as a rounded byte: see `tolerance`.
                let luma = (0.299 * r + 0.587 * g + 0.114 * b).round();
                out[y * w + x] = (luma / 255.0 - 0.5) / 0.5;
            } else {
                for (c, v) in [r, g, b].into_iter().enumerate() {
                    out[(c * h + y) * w + x] = (v / 255.0 - 0.5) / 0.5;
                }
            }
        }
    }
    out
}

fn unpack(batch: ImageBatch<B>) -> (Vec<f32>, Vec<i64>, [usize; 4]) {
    let dims = batch.images.dims();
    let images: Vec<f32> = batch.images.into_data().convert::<f32>().to_vec().unwrap();
    let labels: Vec<i64> = batch.labels.into_data().convert::<i64>().to_vec().unwrap();
    (images, labels, dims)
}

/// Checks one loaded epoch against the reader's samples `expect` (in the order `order`).
fn check_epoch(
    batches: Vec<(Vec<f32>, Vec<i64>, [usize; 4])>,
    expect: &[ImageSample],
    channels: usize,
    tol: f64,
) -> Vec<usize> {
    let mut seen = Vec::new();
    for (images, labels, dims) in batches {
        let per = dims[1] * dims[2] * dims[3];
        assert_eq!(dims[1], channels);
        assert_eq!(labels.len(), dims[0]);
        for (j, &label) in labels.iter().enumerate() {
            let got = &images[j * per..(j + 1) * per];
            // Which sample is this? The one whose reference matches (all fixtures differ).
            let found = expect.iter().enumerate().position(|(i, s)| {
                !seen.contains(&i)
                    && s.label as i64 == label
                    && (s.height, s.width) == (dims[2], dims[3])
                    && reference(s, channels)
                        .iter()
                        .zip(got)
                        .all(|(r, &g)| (r - g as f64).abs() <= tol)
            });
            let i = found.unwrap_or_else(|| {
                panic!("batch item {j} (label {label}) matches no unread sample")
            });
            seen.push(i);
        }
    }
    assert_eq!(seen.len(), expect.len(), "every sample once");
    seen
}

fn load_all<S: SampleSource>(source: &S) -> Vec<ImageSample> {
    (0..source.len()).map(|i| source.get(i).unwrap()).collect()
}

/// In order, batch size 3 (a short last batch), then shuffled with two workers.
fn check_source<S: SampleSource + Clone + 'static>(source: S, channels: usize) {
    let expect = load_all(&source);
    assert!(expect.len() >= 4, "fixture too small");
    let loader = DataLoaderBuilder::<B, _, _>::new(ChannelBatcher { channels })
        .batch_size(3)
        .build(BurnDataset::new(source.clone()));
    assert_eq!(loader.num_items(), expect.len());
    let batches: Vec<_> = loader.iter().map(|b| unpack(b.unwrap())).collect();
    assert_eq!(batches.len(), expect.len().div_ceil(3));
    let order = check_epoch(batches, &expect, channels, tolerance(channels));
    assert_eq!(order, (0..expect.len()).collect::<Vec<_>>(), "in order");

    let loader = DataLoaderBuilder::<B, _, _>::new(ChannelBatcher { channels })
        .batch_size(2)
        .shuffle(5)
        .num_workers(2)
        .build(BurnDataset::new(source));
    let batches: Vec<_> = loader.iter().map(|b| unpack(b.unwrap())).collect();
    check_epoch(batches, &expect, channels, tolerance(channels));
}

fn synthetic() -> SyntheticDataset {
    let cfg = SynthConfig {
        size: 12,
        seed: 3,
        difficulty: 1.0,
    };
    SyntheticDataset::new(cfg, SyntheticSplit::Train, 3, 3)
}

#[test]
fn synthetic_identities() {
    check_source(synthetic(), 3);
    check_source(synthetic(), 1);
    // The batcher's own three-channel case is ImageBatcher.
    let data = synthetic();
    let expect = load_all(&data);
    let loader = DataLoaderBuilder::<B, _, _>::new(ImageBatcher)
        .batch_size(4)
        .build(BurnDataset::new(data));
    let batches: Vec<_> = loader.iter().map(|b| unpack(b.unwrap())).collect();
    check_epoch(batches, &expect, 3, 1e-6);
}

/// Writes the synthetic identities as an image folder with LFW pairs; returns the folder.
fn synthetic_folder(name: &str) -> std::path::PathBuf {
    let dir = common::temp_dir(name);
    let data = synthetic();
    let pairs = PairList::draw(3, 3, 10, 1, 0).unwrap();
    data.write_folder(&dir, Some(&pairs)).unwrap();
    dir
}

#[test]
fn image_folder_and_recordio_pack() {
    let dir = synthetic_folder("burn-folder");
    let folder = ImageFolder::open(&dir).unwrap();
    assert_eq!(folder.len(), 9);
    let prefix = dir.join("pack");
    pack_image_folder(&folder, &prefix).unwrap();
    check_source(Arc::new(folder), 3);
    let rec = RecordIo::open(&prefix.with_extension("rec")).unwrap();
    assert_eq!(rec.len(), 9);
    check_source(Arc::new(rec), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

fn idx(magic: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, magic];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(body);
    b
}

#[test]
fn mnist_idx() {
    let dir = common::temp_dir("burn-mnist");
    let pixels: Vec<u8> = (0..5 * 4 * 3).map(|v| (v * 4) as u8).collect();
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx(3, &[5, 4, 3], &pixels),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        idx(1, &[5], &[3, 1, 4, 1, 5]),
    )
    .unwrap();
    let m = Mnist::open_split(&dir, "train").unwrap();
    check_source(Arc::new(m), 1);
    let m = Mnist::open_split(&dir, "train").unwrap();
    check_source(Arc::new(m), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A verification set through the loader: its images in pair order, labels as stored.
fn check_pairs(set: VerificationSet) {
    let expect = set.samples.clone();
    assert_eq!(Dataset::<ImageSample>::len(&set), expect.len());
    let loader = DataLoaderBuilder::<B, _, _>::new(ImageBatcher)
        .batch_size(4)
        .build(set);
    let batches: Vec<_> = loader.iter().map(|b| unpack(b.unwrap())).collect();
    let order = check_epoch(batches, &expect, 3, 1e-6);
    assert_eq!(order, (0..expect.len()).collect::<Vec<_>>());
}

#[test]
fn lfw_folder_and_bin_pack() {
    let dir = synthetic_folder("burn-lfw");
    let lfw = Lfw::open(&dir).unwrap();
    let set = lfw.decode().unwrap();
    assert_eq!(set.len(), 20);
    check_pairs(set);

    // A Python-2 protocol-2 pickle `(bins, issame)` of PNG bytes, as InsightFace writes it.
    let images: Vec<Vec<u8>> = (0..4)
        .map(|i| common::png(&common::pattern(3, 3, i as u8 * 40), 3, 3))
        .collect();
    let mut p = vec![0x80, 2, b']', b'q', 0, b'('];
    for (i, img) in images.iter().enumerate() {
        p.extend_from_slice(&[b'U', img.len() as u8]);
        p.extend_from_slice(img);
        p.extend_from_slice(&[b'q', i as u8 + 1]);
    }
    p.push(b'e');
    p.extend_from_slice(&[b']', b'q', 5, b'(', 0x88, 0x89, b'e', 0x86, b'q', 6, b'.']);
    let path = dir.join("tiny.bin");
    std::fs::write(&path, &p).unwrap();
    let set = BinPack::open(&path).unwrap().decode().unwrap();
    assert_eq!((set.len(), set.issame.clone()), (2, vec![true, false]));
    for (i, s) in set.samples.iter().enumerate() {
        assert_eq!(s.pixels, common::pattern(3, 3, i as u8 * 40));
    }
    check_pairs(set);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_file_is_an_error_item_not_a_short_epoch() {
    let dir = synthetic_folder("burn-broken");
    let folder = ImageFolder::open(&dir).unwrap();
    // Corrupt the fifth image (folder order) after opening.
    let (bad, _) = folder.items[4].clone();
    std::fs::write(&bad, b"not a png").unwrap();
    let data = BurnDataset::new(Arc::new(folder));
    let item = Dataset::get(&data, 4).unwrap();
    let e = item.unwrap_err().to_string();
    assert!(
        e.contains("sample 4") && e.contains(&*bad.to_string_lossy()),
        "{e}"
    );
    assert!(Dataset::get(&data, 9).is_none());
    let loader = DataLoaderBuilder::<B, _, _>::new(ImageBatcher)
        .batch_size(2)
        .build(data);
    let results: Vec<_> = loader.iter().collect();
    assert_eq!(results.len(), 5, "the epoch runs to its end");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_err(), i == 2, "batch {i}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
