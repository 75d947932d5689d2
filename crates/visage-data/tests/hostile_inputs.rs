//! Hostile files found by issue 13, one by one: each gives a `DataError` naming the file and
//! what was expected, never a panic, an allocation abort or a hang; and `inspect` reports
//! what disagrees instead of passing it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use visage_data::bin_pack::BinPack;
use visage_data::inspect::{inspect_with, InspectOptions};
use visage_data::recordio::{pack_image_folder, IrHeader, RecordIoWriter};
use visage_data::synthetic::{SynthConfig, SyntheticDataset, SyntheticSplit};
use visage_data::{held_out_verification, DataError, ImageFolder, Lfw, Mnist, PairList, RecordIo};

fn msg<T: std::fmt::Debug>(r: visage_data::Result<T>) -> String {
    r.unwrap_err().to_string()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [count, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A pack of `n` 4x4 PNG images with labels `labels[i]`, written with the crate's writer
/// (im2rec layout, keys 1..=n); returns the prefix.
fn plain_pack(dir: &Path, labels: &[usize]) -> PathBuf {
    let prefix = dir.join("train");
    let mut w = RecordIoWriter::create(&prefix).unwrap();
    for (i, &l) in labels.iter().enumerate() {
        let png = common::png(&common::pattern(4, 4, i as u8), 4, 4);
        w.write(i as u64 + 1, &IrHeader::image(l, i as u64 + 1), &png)
            .unwrap();
    }
    w.finish().unwrap();
    prefix
}

#[test]
fn lfw_headers_that_overflow_or_exceed_the_file_are_errors() {
    let d = common::temp_dir("hostile-lfw");
    for (header, expect) in [
        (
            "18446744073709551615\t18446744073709551615\n",
            "more than a count can hold",
        ),
        ("1000000000\t1000000000\n", "pairs, the file lists 1"),
        ("99999999999999999999999\t1\n", "line 1: header"),
    ] {
        std::fs::write(d.join("pairs.txt"), format!("{header}A\t1\t2\n")).unwrap();
        let e = msg(Lfw::open(&d));
        assert!(e.contains(expect) && e.contains("pairs.txt"), "{e}");
    }
    // pairs.txt that is a folder.
    std::fs::remove_file(d.join("pairs.txt")).unwrap();
    std::fs::create_dir(d.join("pairs.txt")).unwrap();
    let e = msg(Lfw::open(&d));
    assert!(
        e.contains("pairs.txt: is a directory, expected a regular file"),
        "{e}"
    );
    let e = msg(inspect_with(&d, InspectOptions::default()));
    assert!(e.contains("pairs.txt: is a directory"), "{e}");
}

#[test]
fn idx_zero_pixel_images_and_gzip_bombs_are_errors() {
    let d = common::temp_dir("hostile-idx");
    let labels = d.join("labels");
    let mut l = vec![0, 0, 8, 1, 0, 0, 0, 2];
    l.extend_from_slice(&[1, 2]);
    std::fs::write(&labels, &l).unwrap();
    let p = d.join("zero");
    std::fs::write(&p, idx_images(2, 0, 0, &[])).unwrap();
    let e = msg(Mnist::open(&p, &labels));
    assert!(e.contains("images of 0x0 pixels"), "{e}");
    // A gzip stream decompressing past what its IDX header announces (4 bytes of pixels
    // declared, 64 MiB of zeros present) stops at the header's size + 1.
    let mut big = idx_images(1, 2, 2, &[0; 4]);
    big.resize(64 << 20, 0);
    let p = d.join("bomb.gz");
    std::fs::write(&p, gz(&big)).unwrap();
    let e = msg(Mnist::open(&p, &labels));
    assert!(
        e.contains("decompresses past the 20 bytes its IDX header announces"),
        "{e}"
    );
    // A header announcing 2^32 x 2^32 x 2^32 bytes.
    let p = d.join("huge.gz");
    std::fs::write(&p, gz(&idx_images(u32::MAX, u32::MAX, u32::MAX, &[]))).unwrap();
    let e = msg(Mnist::open(&p, &labels));
    assert!(e.contains("announces more than"), "{e}");
}

#[test]
fn pickles_that_nest_deeply_or_multiply_through_the_memo_are_errors() {
    // 300 KB of nested lists.
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', 150_000));
    p.extend(std::iter::repeat_n(b'a', 149_999));
    p.push(b'.');
    let e = msg(BinPack::from_bytes(&p, Path::new("deep.bin")));
    assert!(
        e.contains("deep.bin: pickle offset") && e.contains("levels deep"),
        "{e}"
    );
    // A few hundred bytes doubling a list through the memo.
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..64 {
        p.extend([b']', b'h', 0, b'a', b'h', 0, b'a', b'q', 0, b'0']);
    }
    p.push(b'.');
    assert!(p.len() < 700);
    let e = msg(BinPack::from_bytes(&p, Path::new("memo.bin")));
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn recordio_huge_chunk_lengths_are_errors_before_allocation() {
    let d = common::temp_dir("hostile-rec");
    // One chunk claiming 2^29 - 1 bytes in a 32-byte file.
    let mut rec = vec![0x0A, 0x23, 0xD7, 0xCE];
    rec.extend_from_slice(&((1u32 << 29) - 1).to_le_bytes());
    rec.extend_from_slice(&[0; 24]);
    std::fs::write(d.join("big.rec"), &rec).unwrap();
    std::fs::write(d.join("big.idx"), "1\t0\n").unwrap();
    let r = RecordIo::open(&d.join("big")).unwrap();
    let e = msg(r.read_record(1));
    assert!(
        e.contains("record key 1: truncated: the chunk at offset 0 holds 536870911 bytes"),
        "{e}"
    );
    // An offset near u64::MAX in the index.
    std::fs::write(d.join("big.idx"), "1\t18446744073709551615\n").unwrap();
    let e = msg(RecordIo::open(&d.join("big")));
    assert!(e.contains("line 1: key 1 at offset 18446744073709551615, beyond the end"));
    // A property file that is a folder, or declares more classes than f32 labels can name.
    std::fs::create_dir(d.join("property")).unwrap();
    std::fs::write(d.join("big.idx"), "1\t0\n").unwrap();
    let e = msg(RecordIo::open(&d.join("big")));
    assert!(e.contains("property: is a directory"), "{e}");
    std::fs::remove_dir(d.join("property")).unwrap();
    std::fs::write(d.join("property"), "99999999999,112,112").unwrap();
    let e = msg(RecordIo::open(&d.join("big")));
    assert!(e.contains("more than the 16777216 classes"), "{e}");
}

#[test]
fn labels_beyond_the_property_class_count_are_found_before_training() {
    let d = common::temp_dir("hostile-labels");
    let prefix = plain_pack(&d, &[0, 1, 7, 2]);
    std::fs::write(d.join("property"), "3,4,4").unwrap();
    let r = RecordIo::open(&prefix).unwrap();
    let e = r.check_labels().unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Label {
                label: 7,
                classes: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains(
            "train.rec: record key 3: label 7 is outside the 3 classes given by the property file"
        ),
        "{e}"
    );
    // Through the trait, as the trainer calls it.
    let src: &dyn visage_data::SampleSource = &r;
    assert!(src.check_labels().is_err());
    // inspect lists it (and the class count mismatch) under problems.
    let i = inspect_with(&prefix, InspectOptions::default()).unwrap();
    assert!(
        i.problems
            .iter()
            .any(|p| p.contains("says 3 classes, but record key 3") && p.contains("label 7")),
        "{:?}",
        i.problems
    );
    // A consistent property file passes both.
    std::fs::write(d.join("property"), "8,4,4").unwrap();
    let r = RecordIo::open(&prefix).unwrap();
    r.check_labels().unwrap();
    let i = inspect_with(&prefix, InspectOptions::default()).unwrap();
    assert_eq!(i.problems, Vec::<String>::new());
    // A property file that says more classes than the labels use is a disagreement too.
    std::fs::write(d.join("property"), "20,4,4").unwrap();
    let i = inspect_with(&prefix, InspectOptions::default()).unwrap();
    assert!(
        i.problems[0].contains("says 20 classes, but the labels run to 7"),
        "{:?}",
        i.problems
    );
}

#[test]
fn truncated_last_record_and_trailing_bytes_are_reported() {
    let d = common::temp_dir("hostile-trunc");
    let prefix = plain_pack(&d, &[0, 1, 2]);
    let rec = d.join("train.rec");
    let bytes = std::fs::read(&rec).unwrap();
    // The last record cut short: an error naming it, from inspect and from labels().
    std::fs::write(&rec, &bytes[..bytes.len() - 10]).unwrap();
    let e = msg(inspect_with(&prefix, InspectOptions::default()));
    assert!(e.contains("record key 3: truncated"), "{e}");
    let r = RecordIo::open(&prefix).unwrap();
    assert!(msg(r.labels()).contains("record key 3: truncated"));
    // Bytes after the last indexed record (a partial record the index does not list).
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0x0A, 0x23, 0xD7, 0xCE, 200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&rec, &longer).unwrap();
    let i = inspect_with(&prefix, InspectOptions::default()).unwrap();
    assert!(
        i.problems
            .iter()
            .any(|p| p.contains("11 bytes after the end of the last indexed record (key 3")),
        "{:?}",
        i.problems
    );
}

#[test]
fn corrupt_and_mixed_size_images_past_the_first_are_reported_by_deep_inspect() {
    let d = common::temp_dir("hostile-images");
    let root = d.join("folder");
    for (id, files) in [("a", 3), ("b", 3)] {
        std::fs::create_dir_all(root.join(id)).unwrap();
        for k in 0..files {
            let png = common::png(&common::pattern(6, 6, k), 6, 6);
            std::fs::write(root.join(id).join(format!("{k}.png")), png).unwrap();
        }
    }
    let deep = InspectOptions { deep: true };
    assert!(inspect_with(&root, deep).unwrap().problems.is_empty());
    // A corrupt second image and a 5x7 third image: the shallow pass (first and last only)
    // does not see them, --deep does.
    std::fs::write(root.join("a").join("1.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    std::fs::write(
        root.join("a").join("2.png"),
        common::png(&common::pattern(5, 7, 1), 5, 7),
    )
    .unwrap();
    assert!(inspect_with(&root, InspectOptions::default())
        .unwrap()
        .problems
        .is_empty());
    let i = inspect_with(&root, deep).unwrap();
    assert!(i.deep);
    assert_eq!(i.problems.len(), 2, "{:?}", i.problems);
    assert!(
        i.problems[0].contains("cannot decode") && i.problems[0].contains("1.png"),
        "{:?}",
        i.problems
    );
    assert!(
        i.problems[1].contains("mixed image sizes: 4 of 6x6") && i.problems[1].contains("1 of 5x7"),
        "{:?}",
        i.problems
    );
    // The same through a RecordIO pack of the folder with the corrupt image removed.
    std::fs::remove_file(root.join("a").join("1.png")).unwrap();
    let pack = d.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    let e = msg(pack_image_folder(
        &ImageFolder::open(&root).unwrap(),
        &pack.join("train"),
    ));
    assert!(e.contains("align or resize first"), "{e}");
}

#[test]
fn synthetic_sizes_that_cannot_fit_are_errors_before_drawing() {
    let cfg = SynthConfig {
        size: 16,
        seed: 0,
        difficulty: 1.0,
    };
    let e = msg(SyntheticDataset::try_new(
        cfg,
        SyntheticSplit::Train,
        usize::MAX,
        2,
    ));
    assert!(e.contains("more than the 268435456 samples allowed"), "{e}");
    let e = msg(SyntheticDataset::try_new(
        cfg,
        SyntheticSplit::Train,
        1 << 20,
        1 << 20,
    ));
    assert!(e.contains("samples allowed"), "{e}");
    let huge = SynthConfig {
        size: 1 << 40,
        ..cfg
    };
    assert!(msg(SyntheticDataset::try_new(huge, SyntheticSplit::Train, 1, 1)).contains("size"));
    // An unchecked dataset's length saturates instead of overflowing.
    let unchecked = SyntheticDataset::new(cfg, SyntheticSplit::Train, usize::MAX, 2);
    assert_eq!(visage_data::SampleSource::len(&unchecked), usize::MAX);
    let e = msg(held_out_verification(cfg, 10, 4, usize::MAX, 2, 0));
    assert!(e.contains("bytes of memory allowed"), "{e}");
    let e = msg(held_out_verification(cfg, 10, 4, 10, 1 << 30, 0));
    assert!(e.contains("bytes of memory allowed"), "{e}");
    let e = msg(PairList::draw(usize::MAX, usize::MAX, usize::MAX, 3, 0));
    assert!(e.contains("pairs allowed"), "{e}");
    SyntheticDataset::try_new(cfg, SyntheticSplit::Train, 3, 2).unwrap();
}

#[cfg(unix)]
#[test]
fn named_pipes_are_refused_not_waited_on() {
    let d = common::temp_dir("hostile-fifo");
    let mk = |p: &Path| {
        std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !mk(&d.join("x.bin")) {
        return;
    }
    for name in ["train.idx", "pairs.txt", "t-images-idx3-ubyte", "img.png"] {
        assert!(mk(&d.join(name)));
    }
    let e = msg(BinPack::open(&d.join("x.bin")));
    assert!(e.contains("x.bin: is a named pipe (FIFO)"), "{e}");
    assert!(msg(inspect_with(&d.join("x.bin"), InspectOptions::default())).contains("named pipe"));
    assert!(msg(RecordIo::open(&d.join("train"))).contains("named pipe"));
    assert!(msg(Lfw::open(&d)).contains("pairs.txt: is a named pipe"));
    let img = d.join("t-images-idx3-ubyte");
    assert!(msg(Mnist::open(&img, &img)).contains("named pipe"));
    assert!(msg(visage_data::sample::read_image(&d.join("img.png"), 0)).contains("named pipe"));
    // A .rec that is a FIFO behind a regular index.
    let e = d.join("e");
    std::fs::create_dir(&e).unwrap();
    std::fs::write(e.join("train.idx"), "1\t0\n").unwrap();
    assert!(mk(&e.join("train.rec")));
    assert!(msg(RecordIo::open(&e.join("train"))).contains("train.rec: is a named pipe"));
}

#[test]
fn an_image_header_announcing_a_huge_image_is_refused_before_allocating() {
    // A valid 4x4 PNG whose IHDR (CRC fixed) announces 16000 x 16000 pixels: 768 MB of RGB
    // from a file of about 100 bytes.
    let mut png = common::png(&common::pattern(4, 4, 0), 4, 4);
    png[16..20].copy_from_slice(&16_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&16_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let e = msg(visage_data::sample::decode_image(
        &png,
        0,
        Path::new("huge.png"),
        "image",
    ));
    assert!(e.contains("huge.png: image: cannot decode image"), "{e}");
    assert!(e.to_lowercase().contains("limit"), "{e}");
}
