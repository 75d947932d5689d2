//! Mutation harness for the RecordIO reader (`.rec` + `.idx` + `property`): generated packs
//! (im2rec and InsightFace layouts, records split at the magic), mutated, then opened, every
//! label read and checked, every image decoded, and `inspect --deep` run. See `fuzz/mod.rs`.

mod fuzz;

use std::path::Path;
use std::sync::Arc;

use fuzz::{below, encoded_image, mutate, outcome, Outcome};
use visage_data::recordio::{encode_record, IrHeader, RecordIo, RECORDIO_MAGIC};
use visage_data::{SampleSource, SplitMix64};

/// A valid pack: `.rec` bytes, `.idx` text, optional `property` text.
fn generate(r: &mut SplitMix64) -> (Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
    let n = 1 + below(r, 5);
    let classes = 1 + below(r, n.min(4));
    let (h, w) = (1 + below(r, 5), 1 + below(r, 5));
    let insightface = below(r, 2) == 0;
    let mut rec = Vec::new();
    let mut idx = String::new();
    let mut put = |rec: &mut Vec<u8>, key: u64, header: IrHeader, payload: &[u8]| {
        let mut logical = header.to_bytes();
        logical.extend_from_slice(payload);
        idx += &format!("{key}\t{}\n", rec.len());
        rec.extend(encode_record(&logical));
    };
    let mut labels: Vec<usize> = (0..n)
        .map(|i| if i < classes { i } else { below(r, classes) })
        .collect();
    if insightface {
        // InsightFace packs are class-major: each identity record is one contiguous range.
        labels.sort_unstable();
    }
    let first = if insightface { 1 } else { 0 };
    if insightface {
        let a = n as f32 + 1.0;
        put(
            &mut rec,
            0,
            IrHeader::with_labels(vec![a, a + classes as f32], 0),
            &[],
        );
    }
    for (i, &l) in labels.iter().enumerate() {
        let mut img = encoded_image(r, h, w);
        if below(r, 3) == 0 {
            // Trailing bytes with the magic at an aligned record offset: a split record.
            while !(img.len() + 24).is_multiple_of(4) {
                img.push(0);
            }
            img.extend_from_slice(&RECORDIO_MAGIC.to_le_bytes());
            img.extend_from_slice(b"tail");
        }
        let key = (first + i) as u64;
        put(&mut rec, key, IrHeader::image(l, key), &img);
    }
    if insightface {
        for c in 0..classes {
            let key = (n + 1 + c) as u64;
            let keys: Vec<u64> = (0..n)
                .filter(|&i| labels[i] == c)
                .map(|i| i as u64 + 1)
                .collect();
            let (s, e) = (keys[0] as f32, *keys.last().unwrap() as f32 + 1.0);
            put(&mut rec, key, IrHeader::with_labels(vec![s, e], key), &[]);
        }
    }
    let property = (below(r, 2) == 0).then(|| format!("{classes},{h},{w}").into_bytes());
    (rec, idx.into_bytes(), property)
}

/// Sets the length word of a random record's first chunk to a huge length (up to 2^29 - 1
/// bytes, with a start, middle or whole-record cflag): the allocation a reader must not make.
fn huge_chunk_length(rec: &mut [u8], idx: &[u8], r: &mut SplitMix64) -> String {
    let offsets: Vec<usize> = String::from_utf8_lossy(idx)
        .lines()
        .filter_map(|l| l.split('\t').nth(1)?.parse().ok())
        .collect();
    let at = offsets[below(r, offsets.len())] + 4;
    let cflag = [0u32, 1, 2][below(r, 3)];
    let len = [(1u32 << 29) - 1, 1 << 28, 1 << 20, 100_000][below(r, 4)];
    rec[at..at + 4].copy_from_slice(&((cflag << 29) | len).to_le_bytes());
    format!(".rec: chunk length word at {at} set to cflag {cflag}, {len} bytes")
}

fn exercise(prefix: &Path, valid: bool) -> visage_data::Result<()> {
    let r = RecordIo::open(prefix)?;
    r.labels()?;
    r.check_labels()?;
    for i in 0..r.len() {
        r.get(i)?;
    }
    r.identity_ranges()?;
    r.end_of_records()?;
    fuzz::inspect_deep(prefix, valid)?;
    Ok(())
}

#[test]
fn fuzz_recordio() {
    let dir = fuzz::work_dir("recordio");
    let case = move |i: usize, r: &mut SplitMix64| -> (String, Outcome) {
        let (mut rec, mut idx, mut property) = generate(r);
        let desc = if fuzz::valid_case(i) {
            "valid".to_string()
        } else {
            match below(r, 12) {
                10 | 11 => huge_chunk_length(&mut rec, &idx, r),
                0..=6 => format!(".rec: {}", mutate(&mut rec, r)),
                7 | 8 => format!(".idx: {}", mutate(&mut idx, r)),
                _ => match property.as_mut() {
                    Some(p) => format!("property: {}", mutate(p, r)),
                    None => format!(".rec: {}", mutate(&mut rec, r)),
                },
            }
        };
        let d = dir.join("case");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("train.rec"), &rec).unwrap();
        std::fs::write(d.join("train.idx"), &idx).unwrap();
        if let Some(p) = &property {
            std::fs::write(d.join("property"), p).unwrap();
        }
        (
            desc,
            outcome(exercise(&d.join("train"), fuzz::valid_case(i))),
        )
    };
    fuzz::run("recordio", Arc::new(case));
}
