//! LFW original layout with pairs.txt, written here from the spec, and the synthetic held-out
//! folder read back as an LFW pair set.

mod common;

use visage_data::synthetic::{SynthConfig, SyntheticDataset, SyntheticSplit};
use visage_data::{DataError, Lfw, PairList};

fn write_lfw(root: &std::path::Path) {
    let lfw = root.join("lfw");
    for (name, n) in [("Ann_Lee", 2usize), ("Bo_Ek", 1)] {
        std::fs::create_dir_all(lfw.join(name)).unwrap();
        for i in 1..=n {
            let px = common::pattern(5, 4, (name.len() * 10 + i) as u8);
            std::fs::write(
                lfw.join(name).join(format!("{name}_{i:04}.jpg")),
                common::png(&px, 5, 4),
            )
            .unwrap();
        }
    }
}

#[test]
fn original_layout_reads_pairs_in_file_order() {
    let d = common::temp_dir("lfw");
    write_lfw(&d);
    std::fs::write(
        d.join("pairs.txt"),
        "1\t1\nAnn_Lee\t1\t2\nAnn_Lee\t2\tBo_Ek\t1\n",
    )
    .unwrap();
    for dir in [d.clone(), d.join("lfw")] {
        let l = Lfw::open(&dir).unwrap();
        assert_eq!(
            (l.folds, l.per_fold, l.pairs.len(), l.genuine()),
            (1, 1, 2, 1)
        );
        assert_eq!(l.images_root, d.join("lfw"));
        assert_eq!(l.names(), vec!["Ann_Lee", "Bo_Ek"]);
        let set = l.decode().unwrap();
        assert_eq!(set.issame, vec![true, false]);
        // Pair 1 = (Ann_Lee 2, Bo_Ek 1): salts 7*10+2 and 5*10+1; labels by sorted name.
        let (a, b, same) = set.pair(1);
        assert!(!same);
        assert_eq!(a.pixels, common::pattern(5, 4, 72));
        assert_eq!(b.pixels, common::pattern(5, 4, 51));
        assert_eq!((a.label, b.label), (0, 1));
    }
}

#[test]
fn malformed_pairs_files_name_the_line() {
    let d = common::temp_dir("lfw-bad");
    write_lfw(&d);
    let cases = [
        (
            "1\t1\nAnn_Lee\t1\t3\nAnn_Lee\t2\tBo_Ek\t1\n",
            "line 2: image Ann_Lee/Ann_Lee_0003",
        ),
        (
            "1\t1\nAnn_Lee\t1\nAnn_Lee\t2\tBo_Ek\t1\n",
            "line 2: expected `Name\\tn1\\tn2`",
        ),
        (
            "1\t2\nAnn_Lee\t1\t2\nAnn_Lee\t2\tBo_Ek\t1\n",
            "declares 1 folds x 2 x 2 = 4 pairs, the file lists 2",
        ),
        ("ten\t300\n", "line 1: header"),
        (
            "1\t1\nAnn_Lee\t0\t2\nAnn_Lee\t2\tBo_Ek\t1\n",
            "line 2: image numbers are 1-based",
        ),
        (
            "1\t1\nAnn_Lee\tx\t2\nAnn_Lee\t2\tBo_Ek\t1\n",
            "line 2: image number \"x\"",
        ),
    ];
    for (text, expect) in cases {
        std::fs::write(d.join("pairs.txt"), text).unwrap();
        let e = Lfw::open(&d).unwrap_err();
        assert!(matches!(e, DataError::Format { .. }), "{e}");
        assert!(e.to_string().contains(expect), "{e}");
        assert!(e.to_string().contains("pairs.txt"), "{e}");
    }
    std::fs::remove_file(d.join("pairs.txt")).unwrap();
    assert!(Lfw::open(&d.join("lfw"))
        .unwrap_err()
        .to_string()
        .contains("no pairs.txt"));
}

#[test]
fn synthetic_held_out_folder_is_an_lfw_pair_set() {
    let d = common::temp_dir("lfw-synth");
    let cfg = SynthConfig {
        size: 16,
        seed: 2,
        difficulty: 1.0,
    };
    let data = SyntheticDataset::new(cfg, SyntheticSplit::HeldOut, 6, 3);
    let list = PairList::draw(6, 3, 10, 1, 4).unwrap();
    data.write_folder(&d, Some(&list)).unwrap();
    let l = Lfw::open(&d).unwrap();
    let from_disk = l.decode().unwrap();
    let rendered = data.verification_set(&list);
    assert_eq!(from_disk.issame, rendered.issame);
    for (a, b) in from_disk.samples.iter().zip(&rendered.samples) {
        assert_eq!(a.pixels, b.pixels);
    }
}
