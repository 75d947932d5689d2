//! MNIST IDX and image-folder readers against byte-level fixtures written here from the spec.

mod common;

use std::io::Write;

use visage_data::{DataError, ImageFolder, Mnist, SampleSource};

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&rows.to_be_bytes());
    b.extend_from_slice(&cols.to_be_bytes());
    b.extend_from_slice(pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn mnist_plain_and_gzip() {
    let d = common::temp_dir("mnist");
    let pixels: Vec<u8> = (0..12).map(|v| v * 10).collect();
    std::fs::write(d.join("t-images-idx3-ubyte"), idx_images(2, 2, 3, &pixels)).unwrap();
    std::fs::write(d.join("t-labels-idx1-ubyte"), idx_labels(&[7, 2])).unwrap();
    std::fs::write(
        d.join("g-images-idx3-ubyte.gz"),
        gz(&idx_images(2, 2, 3, &pixels)),
    )
    .unwrap();
    std::fs::write(d.join("g-labels-idx1-ubyte.gz"), gz(&idx_labels(&[7, 2]))).unwrap();
    for prefix in ["t", "g"] {
        let ext = if prefix == "g" { ".gz" } else { "" };
        let images = d.join(format!("{prefix}-images-idx3-ubyte{ext}"));
        assert_eq!(
            Mnist::labels_path_for(&images).unwrap(),
            d.join(format!("{prefix}-labels-idx1-ubyte{ext}"))
        );
        let m = Mnist::open(&images, &Mnist::labels_path_for(&images).unwrap()).unwrap();
        assert_eq!((m.len(), m.rows, m.cols, m.num_classes()), (2, 2, 3, 8));
        let s = m.get(1).unwrap();
        assert_eq!((s.label, s.height, s.width), (2, 2, 3));
        // Image 1 pixel (row 1, col 2) is byte 6 + 5 = 11 -> 110, replicated to RGB.
        assert_eq!(s.rgb(1, 2), [110, 110, 110]);
        assert_eq!(m.get(0).unwrap().rgb(0, 1), [10, 10, 10]);
        assert!(m.get(2).is_err());
    }
}

#[test]
fn mnist_malformed_files_are_errors_naming_the_problem() {
    let d = common::temp_dir("mnist-bad");
    let labels = d.join("l");
    std::fs::write(&labels, idx_labels(&[1, 2])).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            idx_labels(&[1, 2]),
            "magic is 0x00000801, expected 0x00000803",
        ),
        (
            "truncated",
            idx_images(2, 2, 3, &[0; 11]),
            "= 12 bytes after the 16-byte header, the file has 11",
        ),
        (
            "short-header",
            vec![0, 0, 8, 3, 0, 0],
            "truncated IDX header: no image count at byte 4",
        ),
        (
            "count",
            idx_images(3, 1, 1, &[0; 3]),
            "2 labels for 3 images",
        ),
        (
            "gzip",
            vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
            "corrupt gzip stream",
        ),
    ];
    for (name, bytes, expect) in cases {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = Mnist::open(&p, &labels).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::Format { .. }), "{name}: {msg}");
        assert!(msg.contains(expect), "{name}: {msg}");
        assert!(
            msg.contains(name) || msg.contains(&*labels.to_string_lossy()),
            "{name}: {msg}"
        );
    }
}

#[test]
fn image_folder_labels_follow_sorted_folder_names() {
    let d = common::temp_dir("folder");
    for (dir, files) in [
        ("bob", vec!["2.png", "1.png"]),
        ("alice", vec!["x.png"]),
        ("carol", vec![]),
    ] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
        for (i, f) in files.iter().enumerate() {
            std::fs::write(
                d.join(dir).join(f),
                common::png(&common::pattern(3, 4, i as u8 + dir.len() as u8), 3, 4),
            )
            .unwrap();
        }
    }
    std::fs::write(d.join("bob").join("notes.txt"), b"not an image").unwrap();
    std::fs::create_dir_all(d.join(".hidden")).unwrap();
    let f = ImageFolder::open(&d).unwrap();
    assert_eq!(f.classes, vec!["alice", "bob", "carol"]);
    assert_eq!(f.num_classes(), 3);
    assert_eq!(f.len(), 3);
    let labels: Vec<usize> = (0..3).map(|i| f.label(i).unwrap()).collect();
    assert_eq!(labels, vec![0, 1, 1]);
    assert!(f.items[1].0.ends_with("bob/1.png"));
    // bob/1.png was written second (i = 1), salt = 1 + 3.
    let s = f.get(1).unwrap();
    assert_eq!(s.pixels, common::pattern(3, 4, 4));
    assert_eq!(s.label, 1);
}

#[test]
fn image_folder_corrupt_or_empty_is_an_error() {
    let d = common::temp_dir("folder-bad");
    assert!(ImageFolder::open(&d)
        .unwrap_err()
        .to_string()
        .contains("no identity folder"));
    std::fs::create_dir_all(d.join("a")).unwrap();
    assert!(ImageFolder::open(&d)
        .unwrap_err()
        .to_string()
        .contains("no .jpg/.jpeg/.png image"));
    std::fs::write(
        d.join("a").join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not really",
    )
    .unwrap();
    let f = ImageFolder::open(&d).unwrap();
    let e = f.get(0).unwrap_err();
    assert!(matches!(e, DataError::Image { .. }), "{e}");
    assert!(e.to_string().contains("broken.jpg"), "{e}");
}
