//! `inspect` recognises every format and reports counts, sizes, labels, pairs and hashes.

mod common;

use visage_data::bin_pack::sha256_hex;
use visage_data::recordio::pack_image_folder;
use visage_data::synthetic::{SynthConfig, SyntheticDataset, SyntheticSplit};
use visage_data::{inspect, ImageFolder, PairList};

#[test]
fn inspect_every_format() {
    let d = common::temp_dir("inspect");
    // Image folder: 3 identities x 2 images of 16x16 (synthetic, train split).
    let folder = d.join("folder");
    let data = SyntheticDataset::new(
        SynthConfig {
            size: 16,
            seed: 1,
            difficulty: 1.0,
        },
        SyntheticSplit::Train,
        3,
        2,
    );
    data.write_folder(&folder, None).unwrap();
    let i = inspect(&folder).unwrap();
    assert_eq!(i.format, "image_folder");
    assert_eq!(
        (i.images, i.identities, i.image_size),
        (Some(6), Some(3), Some([16, 16, 3]))
    );
    assert_eq!(
        (i.label_min, i.label_max, i.pairs),
        (Some(0), Some(2), None)
    );

    // RecordIO pack of that folder, by prefix, by .rec and by directory.
    std::fs::create_dir_all(d.join("pack")).unwrap();
    pack_image_folder(
        &ImageFolder::open(&folder).unwrap(),
        &d.join("pack").join("train"),
    )
    .unwrap();
    let rec_bytes = std::fs::read(d.join("pack").join("train.rec")).unwrap();
    for p in [
        d.join("pack").join("train"),
        d.join("pack").join("train.rec"),
        d.join("pack"),
    ] {
        let i = inspect(&p).unwrap();
        assert_eq!(i.format, "recordio", "{p:?}");
        assert_eq!(
            (i.images, i.identities, i.image_size),
            (Some(6), Some(3), Some([16, 16, 3]))
        );
        assert_eq!((i.label_min, i.label_max), (Some(0), Some(2)));
        assert_eq!(i.sha256.as_deref(), Some(sha256_hex(&rec_bytes).as_str()));
        assert_eq!(i.file_size, Some(rec_bytes.len() as u64));
    }

    // LFW-layout pair set (synthetic held-out with pairs.txt).
    let lfw = d.join("lfw");
    let held = SyntheticDataset::new(
        SynthConfig {
            size: 12,
            seed: 1,
            difficulty: 1.0,
        },
        SyntheticSplit::HeldOut,
        4,
        3,
    );
    held.write_folder(&lfw, Some(&PairList::draw(4, 3, 10, 1, 0).unwrap()))
        .unwrap();
    let i = inspect(&lfw).unwrap();
    assert_eq!(i.format, "lfw");
    assert_eq!(
        (i.images, i.identities, i.pairs, i.genuine_pairs),
        (Some(12), Some(4), Some(20), Some(10))
    );
    assert_eq!(i.image_size, Some([12, 12, 3]));

    // .bin: py2 protocol 2, two PNGs of 3x5, one impostor pair.
    let png = common::png(&common::pattern(3, 5, 0), 3, 5);
    let mut p = vec![0x80, 2, b']', b'q', 0, b'(', b'U', png.len() as u8];
    p.extend_from_slice(&png);
    p.extend_from_slice(&[
        b'q', 1, b'h', 1, b'e', b']', b'q', 2, 0x89, b'a', 0x86, b'q', 3, b'.',
    ]);
    let bin = d.join("x.bin");
    std::fs::write(&bin, &p).unwrap();
    let i = inspect(&bin).unwrap();
    assert_eq!(i.format, "bin");
    assert_eq!(
        (i.images, i.pairs, i.genuine_pairs, i.image_size),
        (Some(2), Some(1), Some(0), Some([3, 5, 3]))
    );
    assert_eq!(i.sha256, Some(sha256_hex(&p)));

    // MNIST images with labels next to them.
    let mut img = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2];
    img.extend_from_slice(&[0; 12]);
    std::fs::write(d.join("train-images-idx3-ubyte"), &img).unwrap();
    std::fs::write(
        d.join("train-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 3, 4, 9, 4],
    )
    .unwrap();
    let i = inspect(&d.join("train-images-idx3-ubyte")).unwrap();
    assert_eq!(i.format, "mnist_images");
    assert_eq!(
        (i.images, i.image_size, i.identities),
        (Some(3), Some([2, 2, 1]), Some(2))
    );
    assert_eq!((i.label_min, i.label_max), (Some(4), Some(9)));
    let i = inspect(&d.join("train-labels-idx1-ubyte")).unwrap();
    assert_eq!((i.format.as_str(), i.label_max), ("mnist_labels", Some(9)));

    // Unknown things are errors, not panics.
    assert!(inspect(&d.join("missing")).is_err());
    std::fs::write(d.join("junk.bin"), b"\x80\x02\xff").unwrap();
    assert!(inspect(&d.join("junk.bin"))
        .unwrap_err()
        .to_string()
        .contains("pickle offset 2"));
}
