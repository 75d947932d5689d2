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
