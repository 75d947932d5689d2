//! RecordIO: byte-level fixtures written here from the spec (a record split at the magic, an
//! InsightFace header-0 pack, an im2rec pack), a pack/read round trip, and malformed files.

mod common;

use std::path::{Path, PathBuf};

use visage_data::recordio::{encode_record, pack_image_folder, PackLayout, RecordIo};
use visage_data::{DataError, ImageFolder, SampleSource};

const MAGIC: [u8; 4] = [0x0A, 0x23, 0xD7, 0xCE];

/// One chunk: magic, lrec = cflag << 29 | len (little-endian), data, zero padding to 4.
fn chunk(cflag: u32, data: &[u8]) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&((cflag << 29) | data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b
}

/// IRHeader bytes: u32 flag, f32 label, u64 id, u64 id2, then the labels.
fn ir(flag: u32, label: f32, id: u64, labels: &[f32]) -> Vec<u8> {
    let mut b = flag.to_le_bytes().to_vec();
    b.extend_from_slice(&label.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    for l in labels {
        b.extend_from_slice(&l.to_le_bytes());
    }
    b
}

/// Writes `records` (key, chunks) as prefix.rec/.idx; returns the prefix.
fn write_pack(dir: &Path, name: &str, records: &[(u64, Vec<u8>)]) -> PathBuf {
    let prefix = dir.join(name);
    let mut rec = Vec::new();
    let mut idx = String::new();
    for (k, bytes) in records {
        idx += &format!("{k}\t{}\n", rec.len());
        rec.extend_from_slice(bytes);
    }
    std::fs::write(prefix.with_extension("rec"), rec).unwrap();
    std::fs::write(prefix.with_extension("idx"), idx).unwrap();
    prefix
}

#[test]
fn record_split_at_the_magic_is_joined_and_matches_the_writer() {
    // Logical record: header (flag 0, label 1) + payload with the magic at aligned payload
    // words 24 and 32 (record offsets), and once unaligned (offset 41) where it must stay.
    let mut logical = ir(0, 1.0, 7, &[]);
    logical.extend_from_slice(&MAGIC);
    logical.extend_from_slice(b"abcd");
    logical.extend_from_slice(&MAGIC);
    logical.extend_from_slice(b"x");
    logical.extend_from_slice(&MAGIC);
    logical.extend_from_slice(b"yz");
    // By hand: chunk 1 = bytes [0, 24), chunk 2 = [28, 32), chunk 3 = [36, end).
    let mut hand = chunk(1, &logical[..24]);
    hand.extend(chunk(2, &logical[28..32]));
    hand.extend(chunk(3, &logical[36..]));
    assert_eq!(encode_record(&logical), hand);
    // A record without the magic is one chunk with cflag 0.
    assert_eq!(encode_record(b"hello"), chunk(0, b"hello"));

    let d = common::temp_dir("rec-split");
    let prefix = write_pack(
        &d,
        "split",
        &[(3, chunk(0, &ir(0, 2.0, 3, &[]))), (5, hand)],
    );
    let r = RecordIo::open(&prefix).unwrap();
    assert_eq!(r.layout, PackLayout::Plain);
    assert_eq!(r.read_record(5).unwrap(), logical);
    let h = r.read_header(5).unwrap();
    assert_eq!((h.flag, h.label, h.id), (0, 1.0, 7));
    assert_eq!(r.image_keys, vec![3, 5]);
}

#[test]
fn insightface_header0_pack_written_by_hand() {
    // Two classes: images 1, 2 (class 0) and 3 (class 1); a = 4, b = 6.
    let imgs: Vec<Vec<u8>> = (0..3)
        .map(|i| common::pattern(4, 5, i as u8 * 40))
        .collect();
    let pngs: Vec<Vec<u8>> = imgs.iter().map(|p| common::png(p, 4, 5)).collect();
    let mut records = vec![(0u64, chunk(0, &ir(2, 0.0, 0, &[4.0, 6.0])))];
    for (i, label) in [(0usize, 0.0f32), (1, 0.0), (2, 1.0)] {
        let mut r = ir(0, label, i as u64 + 1, &[]);
        r.extend_from_slice(&pngs[i]);
        records.push((i as u64 + 1, encode_record_by_hand(&r)));
    }
    records.push((4, chunk(0, &ir(2, 0.0, 4, &[1.0, 3.0]))));
    records.push((5, chunk(0, &ir(2, 0.0, 5, &[3.0, 4.0]))));
    let d = common::temp_dir("rec-h0");
    let prefix = write_pack(&d, "train", &records);
    std::fs::write(d.join("property"), "2,4,5\n").unwrap();
    for path in [
        prefix.clone(),
        prefix.with_extension("rec"),
        prefix.with_extension("idx"),
    ] {
        let r = RecordIo::open(&path).unwrap();
        assert_eq!(
            r.layout,
            PackLayout::InsightFace {
                first_identity: 4,
                end_identity: 6
            }
        );
        assert_eq!(r.image_keys, vec![1, 2, 3]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.num_classes(), 2);
        assert_eq!(r.labels().unwrap(), &[0, 0, 1]);
        assert_eq!(r.identity_ranges().unwrap(), vec![(1, 3), (3, 4)]);
        for (i, img) in imgs.iter().enumerate() {
            let s = r.get(i).unwrap();
            assert_eq!((s.height, s.width), (4, 5));
            assert_eq!(&s.pixels, img);
        }
        assert!(r
            .decode_key(4)
            .unwrap_err()
            .to_string()
            .contains("identity record"));
        assert!(r.decode_key(0).is_err());
    }
}

/// Chunks of a logical record without the magic inside (the common case): one cflag-0 chunk.
fn encode_record_by_hand(logical: &[u8]) -> Vec<u8> {
    assert!(!logical.chunks(4).any(|w| w == MAGIC));
    chunk(0, logical)
}

#[test]
fn im2rec_pack_without_header_uses_every_key_and_first_of_multi_labels() {
    let png = common::png(&common::pattern(2, 2, 9), 2, 2);
    let mut a = ir(0, 4.0, 9, &[]);
    a.extend_from_slice(&png);
    let mut b = ir(3, 0.0, 2, &[6.0, 0.5, 0.25]);
    b.extend_from_slice(&png);
    let d = common::temp_dir("rec-im2rec");
    let prefix = write_pack(&d, "im2rec", &[(9, chunk(0, &a)), (2, chunk(0, &b))]);
    let r = RecordIo::open(&prefix).unwrap();
    assert_eq!(
        (r.layout, r.image_keys.clone(), r.property),
        (PackLayout::Plain, vec![9, 2], None)
    );
    assert_eq!(r.labels().unwrap(), &[4, 6]);
    assert_eq!(r.num_classes(), 7);
    assert_eq!(r.get(1).unwrap().label, 6);
}

#[test]
fn pack_then_read_round_trips_byte_for_byte() {
    let d = common::temp_dir("rec-pack");
    let src = d.join("folder");
    let mut originals = Vec::new();
    for (c, n) in [("a", 2usize), ("b", 3)] {
        std::fs::create_dir_all(src.join(c)).unwrap();
        for i in 0..n {
            let bytes = common::png(&common::pattern(6, 6, (i * 17 + c.len()) as u8), 6, 6);
            std::fs::write(src.join(c).join(format!("{i}.png")), &bytes).unwrap();
            originals.push((bytes, if c == "a" { 0 } else { 1 }));
        }
    }
    let folder = ImageFolder::open(&src).unwrap();
    let summary = pack_image_folder(&folder, &d.join("out").join("train")).unwrap_err();
    // The output directory must exist: a clear I/O error, not a panic.
    assert!(matches!(summary, DataError::Io { .. }), "{summary}");
    std::fs::create_dir_all(d.join("out")).unwrap();
    let summary = pack_image_folder(&folder, &d.join("out").join("train")).unwrap();
    assert_eq!(
        (summary.images, summary.identities, summary.image_size),
        (5, 2, (6, 6))
    );
    assert_eq!(
        std::fs::read_to_string(d.join("out").join("property")).unwrap(),
        "2,6,6"
    );
    let r = RecordIo::open(&d.join("out").join("train.rec")).unwrap();
    assert_eq!(
        r.layout,
        PackLayout::InsightFace {
            first_identity: 6,
            end_identity: 8
        }
    );
    assert_eq!(r.identity_ranges().unwrap(), vec![(1, 3), (3, 6)]);
    for (i, (bytes, label)) in originals.iter().enumerate() {
        let (h, payload) = r.read_image_record(i as u64 + 1).unwrap();
        assert_eq!(&payload, bytes, "record {}", i + 1);
        assert_eq!((h.flag, h.label), (0, *label as f32));
        assert_eq!(r.get(i).unwrap(), folder.get(i).unwrap());
    }
    // The whole .rec is exactly the records the spec describes, in key order.
    let rec = std::fs::read(d.join("out").join("train.rec")).unwrap();
    let idx = std::fs::read_to_string(d.join("out").join("train.idx")).unwrap();
    assert!(rec.starts_with(&chunk(0, &ir(2, 0.0, 0, &[6.0, 8.0]))));
    assert_eq!(idx.lines().next(), Some("0\t0"));
    assert_eq!(idx.lines().count(), 8);
}

fn open_err(prefix: &Path) -> String {
    let e = RecordIo::open(prefix)
        .and_then(|r| r.labels().map(|_| ()).and_then(|_| r.get(0).map(|_| ())));
    let e = e.unwrap_err();
    assert!(
        matches!(e, DataError::Format { .. } | DataError::Image { .. }),
        "{e}"
    );
    e.to_string()
}

#[test]
fn malformed_packs_are_errors_naming_record_and_offset() {
    let d = common::temp_dir("rec-bad");
    let png = common::png(&common::pattern(2, 2, 1), 2, 2);
    let mut good = ir(0, 0.0, 1, &[]);
    good.extend_from_slice(&png);

    // Wrong magic on the second record (key 8 at offset len(first)).
    let first = chunk(0, &good);
    let mut bad = chunk(0, &good);
    bad[0] = 0xFF;
    let p = write_pack(&d, "magic", &[(7, first.clone()), (8, bad)]);
    let msg = open_err(&p);
    assert!(
        msg.contains(&format!(
            "record key 8: magic at offset {} is 0xced723ff",
            first.len()
        )),
        "{msg}"
    );

    // Truncated record: the chunk claims more bytes than the file holds.
    let mut cut = chunk(0, &good);
    cut.truncate(cut.len() - 8);
    let p = write_pack(&d, "truncated", &[(0, cut)]);
    assert!(open_err(&p).contains("record key 0: truncated"));

    // Offset beyond the file.
    let p = write_pack(&d, "offset", &[(1, chunk(0, &good))]);
    std::fs::write(p.with_extension("idx"), "1\t0\n2\t4096\n").unwrap();
    let msg = open_err(&p);
    assert!(
        msg.contains("line 2: key 2 at offset 4096, beyond the end"),
        "{msg}"
    );

    // Malformed index line.
    std::fs::write(p.with_extension("idx"), "1\t0\nkey two\n").unwrap();
    assert!(open_err(&p).contains("line 2: expected `<key>\\t<offset>`"));

    // Offset pointing inside a record (not at a chunk start).
    std::fs::write(p.with_extension("idx"), "1\t4\n").unwrap();
    assert!(open_err(&p).contains("record key 1: magic at offset 4"));

    // Corrupt image payload.
    let mut junk = ir(0, 0.0, 1, &[]);
    junk.extend_from_slice(b"\x89PNG\r\n\x1a\n broken");
    let p = write_pack(&d, "image", &[(1, chunk(0, &junk))]);
    let msg = open_err(&p);
    assert!(msg.contains("record key 1: cannot decode image"), "{msg}");

    // Non-integer and negative labels.
    for (name, label) in [("fraction", 1.5f32), ("negative", -1.0)] {
        let mut r = ir(0, label, 1, &[]);
        r.extend_from_slice(&png);
        let p = write_pack(&d, name, &[(1, chunk(0, &r))]);
        assert!(open_err(&p).contains("is not a class index"), "{name}");
    }

    // A continuation chunk where a record must start.
    let p = write_pack(&d, "cflag", &[(1, chunk(3, &good))]);
    assert!(open_err(&p).contains("has cflag 3, expected 0 or 1"));

    // A header shorter than 24 bytes, and labels past the end of the record.
    let p = write_pack(&d, "short", &[(1, chunk(0, &[0u8; 10]))]);
    assert!(open_err(&p).contains("shorter than the 24-byte IRHeader"));
    let p = write_pack(&d, "flag", &[(1, chunk(0, &ir(9, 0.0, 1, &[1.0])))]);
    assert!(open_err(&p).contains("IRHeader flag 9 needs 60 bytes"));

    // Header record 0 declaring keys the index lacks.
    let p = write_pack(
        &d,
        "h0",
        &[
            (0, chunk(0, &ir(2, 0.0, 0, &[3.0, 4.0]))),
            (1, chunk(0, &good)),
        ],
    );
    assert!(open_err(&p).contains("key 2 is not in the index"));

    // Malformed property file.
    let p = write_pack(&d, "prop", &[(1, chunk(0, &good))]);
    std::fs::write(d.join("property"), "many,112,112").unwrap();
    assert!(open_err(&p).contains("field 0 (num_classes) is not an integer"));
}
