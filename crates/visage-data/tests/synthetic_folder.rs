//! The synthetic dataset written as an image folder reads back pixel for pixel.

mod common;

use visage_data::synthetic::{identity_name, SynthConfig, SyntheticDataset, SyntheticSplit};
use visage_data::{ImageFolder, PairList, SampleSource};

#[test]
fn written_folder_reads_back_exactly() {
    let d = common::temp_dir("synth");
    let cfg = SynthConfig {
        size: 24,
        seed: 5,
        difficulty: 1.0,
    };
    let data = SyntheticDataset::new(cfg, SyntheticSplit::HeldOut, 3, 2);
    let pairs = PairList::draw(3, 2, 2, 1, 8).unwrap();
    data.write_folder(&d, Some(&pairs)).unwrap();
    let f = ImageFolder::open(&d).unwrap();
    assert_eq!(
        f.classes,
        vec![
            identity_name(SyntheticSplit::HeldOut, 0),
            "heldout000001".into(),
            "heldout000002".into()
        ]
    );
    assert_eq!(f.len(), 6);
    for i in 0..6 {
        assert_eq!(f.get(i).unwrap(), data.get(i).unwrap());
    }
    let text = std::fs::read_to_string(d.join("pairs.txt")).unwrap();
    assert!(text.starts_with("2\t1\n"));
    assert_eq!(text.lines().count(), 5);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("synth.json")).unwrap()).unwrap();
    assert_eq!(meta["config"]["seed"], 5);
    assert_eq!(meta["pairs"]["seed"], 8);
}

/// `write_synthetic_folder` (what `visage data synth` calls) checks its settings, writes the
/// folder and pairs.txt; `pack_folder` (what `visage data pack` calls) packs it into a
/// RecordIO prefix in a folder it creates, and the pack reads back image for image.
#[test]
fn synth_request_then_pack_folder() {
    use visage_data::recordio::pack_folder;
    use visage_data::synthetic::{write_synthetic_folder, SynthFolderRequest};
    let d = common::temp_dir("synth_request");
    let request = SynthFolderRequest {
        out: d.join("faces"),
        config: SynthConfig {
            size: 16,
            seed: 3,
            difficulty: 1.0,
        },
        split: SyntheticSplit::Train,
        identities: 2,
        images_per_identity: 3,
        pairs: Some(20),
        pairs_seed: 1,
    };
    let done = write_synthetic_folder(&request).unwrap();
    assert_eq!((done.images, done.pairs), (6, Some(20)));
    // header line plus 10 folds x (1 genuine + 1 impostor)
    let text = std::fs::read_to_string(d.join("faces/pairs.txt")).unwrap();
    assert_eq!(text.lines().count(), 21);

    let packed = pack_folder(&d.join("faces"), &d.join("pack/train")).unwrap();
    assert_eq!(
        (packed.images, packed.identities, packed.image_size),
        (6, 2, (16, 16))
    );
    let folder = ImageFolder::open(&d.join("faces")).unwrap();
    let rec = visage_data::RecordIo::open(&d.join("pack/train")).unwrap();
    for i in 0..6 {
        assert_eq!(
            rec.decode_key(i as u64 + 1).unwrap(),
            folder.get(i).unwrap()
        );
    }

    for (bad, field) in [
        (
            SynthFolderRequest {
                pairs: Some(30),
                ..request.clone()
            },
            "pairs",
        ),
        (
            SynthFolderRequest {
                identities: 0,
                ..request.clone()
            },
            "identities",
        ),
        (
            SynthFolderRequest {
                config: SynthConfig {
                    size: 4,
                    ..request.config
                },
                ..request.clone()
            },
            "size",
        ),
        (
            SynthFolderRequest {
                config: SynthConfig {
                    difficulty: f32::NAN,
                    ..request.config
                },
                ..request.clone()
            },
            "difficulty",
        ),
    ] {
        let err = write_synthetic_folder(&bad).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}
