//! Mutation harness for MNIST IDX files, plain and gzip'd (one or two gzip members): generated
//! image and label files, one of them mutated (compressed bytes or content), then opened,
//! every image read, and `inspect` run on both files. See `fuzz/mod.rs`.

mod fuzz;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use fuzz::{below, mutate, outcome, Outcome};
use visage_data::{Mnist, SampleSource, SplitMix64};

/// gzip of `bytes`, as one member or split into two.
fn gz(bytes: &[u8], two: bool) -> Vec<u8> {
    let member = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    if two && bytes.len() > 1 {
        let mut out = member(&bytes[..bytes.len() / 2]);
        out.extend(member(&bytes[bytes.len() / 2..]));
        out
    } else {
        member(bytes)
    }
}

fn exercise(images: &Path, labels: &Path, valid: bool) -> visage_data::Result<()> {
    let m = Mnist::open(images, labels)?;
    for i in 0..m.len() {
        m.get(i)?;
    }
    m.check_labels()?;
    fuzz::inspect_deep(images, valid)?;
    fuzz::inspect_deep(labels, valid)?;
    Ok(())
}

#[test]
fn fuzz_idx() {
    let dir = fuzz::work_dir("idx");
    let case = move |i: usize, r: &mut SplitMix64| -> (String, Outcome) {
        let (count, rows, cols) = (1 + below(r, 5), 1 + below(r, 6), 1 + below(r, 6));
        let mut images = vec![0, 0, 8, 3];
        for v in [count, rows, cols] {
            images.extend_from_slice(&(v as u32).to_be_bytes());
        }
        images.extend((0..count * rows * cols).map(|_| r.next_u64() as u8));
        let mut labels = vec![0, 0, 8, 1];
        labels.extend_from_slice(&(count as u32).to_be_bytes());
        labels.extend((0..count).map(|_| below(r, 10) as u8));
        let mut desc = String::new();
        // Mutate the content before compression, or the file itself after.
        let mutate_images = below(r, 3) != 0;
        let before = below(r, 2) == 0;
        let target = |im: bool| if im { "images" } else { "labels" };
        if !fuzz::valid_case(i) && before {
            let b = if mutate_images {
                &mut images
            } else {
                &mut labels
            };
            desc = format!("{} content: {}", target(mutate_images), mutate(b, r));
        }
        let zipped = below(r, 2) == 0;
        let two = below(r, 2) == 0;
        let (mut fi, mut fl) = if zipped {
            (gz(&images, two), gz(&labels, two))
        } else {
            (images, labels)
        };
        if !fuzz::valid_case(i) && !before {
            let b = if mutate_images { &mut fi } else { &mut fl };
            desc = format!("{} file: {}", target(mutate_images), mutate(b, r));
        }
        if fuzz::valid_case(i) {
            desc = "valid".into();
        }
        let desc = format!("{}{desc}", if zipped { "gzip, " } else { "" });
        let (pi, pl) = (
            dir.join("t-images-idx3-ubyte"),
            dir.join("t-labels-idx1-ubyte"),
        );
        std::fs::write(&pi, &fi).unwrap();
        std::fs::write(&pl, &fl).unwrap();
        (desc, outcome(exercise(&pi, &pl, fuzz::valid_case(i))))
    };
    fuzz::run("idx", Arc::new(case));
}
