//! Mutation harness for `.bin` packs and the pickle reader: generated packs (Python 2 str,
//! Python 3 protocol-2 `_codecs.encode`, protocol 4 with FRAME/MEMOIZE, numpy arrays),
//! mutated, then parsed, every image decoded, and `inspect --deep` run on the file.
//! See `fuzz/mod.rs`.

mod fuzz;

use std::path::Path;
use std::sync::Arc;

use fuzz::{below, encoded_image, mutate, outcome, Outcome};
use visage_data::{BinPack, SplitMix64};

/// BINPUT `memo` after a value.
fn put(p: &mut Vec<u8>, memo: &mut u8) {
    p.extend_from_slice(&[b'q', *memo]);
    *memo = memo.wrapping_add(1);
}

/// Python 2 `str`: SHORT_BINSTRING or BINSTRING.
fn py2_str(p: &mut Vec<u8>, b: &[u8]) {
    if b.len() < 256 {
        p.extend_from_slice(&[b'U', b.len() as u8]);
    } else {
        p.push(b'T');
        p.extend_from_slice(&(b.len() as u32).to_le_bytes());
    }
    p.extend_from_slice(b);
}

/// Python 3 bytes at protocol 2: `_codecs.encode(str, 'latin1')`.
fn py3_bytes(p: &mut Vec<u8>, b: &[u8], first: bool) {
    if first {
        p.extend_from_slice(b"c_codecs\nencode\nq\xf0");
    } else {
        p.extend_from_slice(b"h\xf0");
    }
    let s: String = b.iter().map(|&c| c as char).collect();
    p.push(b'X');
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
    p.extend_from_slice(b"X\x06\x00\x00\x00latin1");
    p.extend_from_slice(&[0x86, b'R']);
}

/// A pickled 1-D numpy array of `data` with dtype `code` (globals memoised at 250..252).
fn numpy(p: &mut Vec<u8>, data: &[u8], code: &str, first: bool) {
    if first {
        p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\xfa");
        p.extend_from_slice(b"cnumpy\nndarray\nq\xfb");
    } else {
        p.extend_from_slice(b"h\xfah\xfb");
    }
    p.extend_from_slice(b"K\x00\x85U\x01b\x87R(K\x01J");
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.push(0x85);
    if first {
        p.extend_from_slice(b"cnumpy\ndtype\nq\xfc");
    } else {
        p.extend_from_slice(b"h\xfc");
    }
    p.extend_from_slice(&[b'U', code.len() as u8]);
    p.extend_from_slice(code.as_bytes());
    p.extend_from_slice(
        b"K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T",
    );
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.extend_from_slice(b"tb");
}

/// A valid pack of 1 to 3 pairs in one of four encodings; returns (bytes, encoding).
fn generate(r: &mut SplitMix64) -> (Vec<u8>, &'static str) {
    let pairs = 1 + below(r, 3);
    let (h, w) = (1 + below(r, 5), 1 + below(r, 5));
    let images: Vec<Vec<u8>> = (0..2 * pairs).map(|_| encoded_image(r, h, w)).collect();
    let issame: Vec<bool> = (0..pairs).map(|_| below(r, 2) == 0).collect();
    let kind = below(r, 4);
    let mut p = Vec::new();
    let mut memo = 0u8;
    match kind {
        0 | 1 => {
            p.extend_from_slice(&[0x80, 2, b']']);
            put(&mut p, &mut memo);
            p.push(b'(');
            for (k, img) in images.iter().enumerate() {
                if kind == 0 {
                    py2_str(&mut p, img);
                } else {
                    py3_bytes(&mut p, img, k == 0);
                }
                put(&mut p, &mut memo);
            }
            p.extend_from_slice(b"e]");
            put(&mut p, &mut memo);
            p.push(b'(');
            for &s in &issame {
                p.push(if s { 0x88 } else { 0x89 });
            }
            p.extend_from_slice(&[b'e', 0x86]);
            put(&mut p, &mut memo);
            p.push(b'.');
        }
        2 => {
            // Protocol 4: a FRAME, SHORT_BINBYTES / BINBYTES and MEMOIZE.
            let mut body = vec![b']', 0x94, b'('];
            for img in &images {
                if img.len() < 256 {
                    body.extend_from_slice(&[b'C', img.len() as u8]);
                } else {
                    body.push(b'B');
                    body.extend_from_slice(&(img.len() as u32).to_le_bytes());
                }
                body.extend_from_slice(img);
                body.push(0x94);
            }
            body.extend_from_slice(&[b'e', b']', 0x94, b'(']);
            for &s in &issame {
                body.push(if s { 0x88 } else { 0x89 });
            }
            body.extend_from_slice(&[b'e', 0x86, 0x94, b'.']);
            p.extend_from_slice(&[0x80, 4, 0x95]);
            p.extend_from_slice(&(body.len() as u64).to_le_bytes());
            p.extend(body);
        }
        _ => {
            p.extend_from_slice(&[0x80, 2, b']', b'(']);
            for (k, img) in images.iter().enumerate() {
                numpy(&mut p, img, "u1", k == 0);
            }
            p.push(b'e');
            let flags: Vec<u8> = issame.iter().map(|&s| s as u8).collect();
            numpy(&mut p, &flags, "b1", false);
            p.extend_from_slice(&[0x86, b'.']);
        }
    }
    (
        p,
        ["py2 str", "py3 protocol 2", "protocol 4", "numpy"][kind],
    )
}

/// Inserts, after the protocol header, a fragment that nests lists deeply or doubles a list
/// through the memo: the stack overflow and the unbounded growth a reader must refuse.
fn hostile_fragment(bytes: &mut Vec<u8>, r: &mut SplitMix64) -> String {
    let mut f = Vec::new();
    let what = if below(r, 2) == 0 {
        let depth = [101, 1_000, 200_000][below(r, 3)];
        f.extend(std::iter::repeat_n(b']', depth));
        f.extend(std::iter::repeat_n(b'a', depth - 1));
        format!("{depth} nested lists")
    } else {
        let doublings = [20, 40, 64][below(r, 3)];
        f.extend([b']', b'q', 0xEE]);
        for _ in 0..doublings {
            f.extend([b']', b'h', 0xEE, b'a', b'h', 0xEE, b'a', b'q', 0xEE]);
        }
        format!("a list doubled {doublings} times through the memo")
    };
    let at = 2.min(bytes.len());
    bytes.splice(at..at, f);
    format!("insert {what} at {at}")
}

fn exercise(bytes: &[u8], file: &Path, valid: bool) -> visage_data::Result<()> {
    let pack = BinPack::from_bytes(bytes, file)?;
    pack.decode()?;
    std::fs::write(file, bytes).map_err(|e| visage_data::DataError::io(file, e))?;
    fuzz::inspect_deep(file, valid)?;
    Ok(())
}

#[test]
fn fuzz_bin_pack() {
    let dir = fuzz::work_dir("bin");
    let case = move |i: usize, r: &mut SplitMix64| -> (String, Outcome) {
        let (mut bytes, kind) = generate(r);
        let desc = if fuzz::valid_case(i) {
            format!("valid {kind}")
        } else if below(r, 8) == 0 {
            format!("{kind}: {}", hostile_fragment(&mut bytes, r))
        } else {
            format!("{kind}: {}", mutate(&mut bytes, r))
        };
        (
            desc,
            outcome(exercise(&bytes, &dir.join("pack.bin"), fuzz::valid_case(i))),
        )
    };
    fuzz::run("bin", Arc::new(case));
}
