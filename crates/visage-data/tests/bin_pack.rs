//! `.bin` verification packs: pickles written here byte by byte from the pickle spec, the way
//! Python 2 `pickle.dump((bins, issame), f, protocol=2)` lays them out, plus the numpy-array
//! variant, Python 3's protocol-2 bytes, and malformed packs.

mod common;

use std::path::Path;

use visage_data::pickle::{parse_pickle, Value};
use visage_data::{BinPack, DataError};

/// SHORT_BINSTRING (`U`, len < 256) or BINSTRING (`T`, u32 length) of `b`, then BINPUT `memo`.
fn py2_str(b: &[u8], memo: u8) -> Vec<u8> {
    let mut out = if b.len() < 256 {
        vec![b'U', b.len() as u8]
    } else {
        let mut o = vec![b'T'];
        o.extend_from_slice(&(b.len() as u32).to_le_bytes());
        o
    };
    out.extend_from_slice(b);
    out.extend_from_slice(&[b'q', memo]);
    out
}

/// Python 2 protocol 2: (bins, issame) with bins a list of str, issame a list of bools.
fn py2_pack(images: &[Vec<u8>], issame: &[bool]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'q', 0, b'('];
    for (i, img) in images.iter().enumerate() {
        p.extend(py2_str(img, i as u8 + 1));
    }
    p.push(b'e');
    let m = images.len() as u8 + 1;
    p.extend_from_slice(&[b']', b'q', m, b'(']);
    for &s in issame {
        p.push(if s { 0x88 } else { 0x89 });
    }
    p.extend_from_slice(&[b'e', 0x86, b'q', m + 1, b'.']);
    p
}

fn pngs(n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let pixels: Vec<Vec<u8>> = (0..n)
        .map(|i| common::pattern(3, 3, i as u8 * 50))
        .collect();
    let encoded = pixels.iter().map(|p| common::png(p, 3, 3)).collect();
    (pixels, encoded)
}

#[test]
fn python2_bytes_pack_with_long_and_short_strings() {
    let (pixels, encoded) = pngs(4);
    // Pad image 1 past 255 bytes with trailing bytes after IEND (decoders stop at IEND) so it
    // is written with BINSTRING.
    let mut long = encoded.clone();
    long[1].extend(std::iter::repeat_n(0u8, 300));
    let bytes = py2_pack(&long, &[true, false]);
    let d = common::temp_dir("bin-py2");
    let path = d.join("lfw.bin");
    std::fs::write(&path, &bytes).unwrap();
    let pack = BinPack::open(&path).unwrap();
    assert_eq!(pack.images, long);
    assert_eq!(pack.issame, vec![true, false]);
    assert_eq!(pack.file_size, bytes.len() as u64);
    assert_eq!(pack.sha256.len(), 64);
    assert_eq!(
        pack.sha256,
        visage_data::bin_pack::sha256_file(&path).unwrap()
    );
    let set = pack.decode().unwrap();
    assert_eq!(set.samples.len(), 4);
    for (s, p) in set.samples.iter().zip(&pixels) {
        assert_eq!(&s.pixels, p);
    }
}

#[test]
fn sha256_of_known_input() {
    // FIPS 180-2 example: SHA-256("abc").
    assert_eq!(
        visage_data::bin_pack::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// A py2 protocol-2 numpy 1-D array of `data` with dtype `code`; the first array defines the
/// globals in the memo (keys 10, 11, 12), later ones fetch them with BINGET.
fn numpy_array(data: &[u8], code: &str, first: bool) -> Vec<u8> {
    let mut p = Vec::new();
    if first {
        p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\x0a");
        p.extend_from_slice(b"cnumpy\nndarray\nq\x0b");
    } else {
        p.extend_from_slice(b"h\x0ah\x0b");
    }
    p.extend_from_slice(b"K\x00\x85U\x01b\x87R(K\x01");
    p.extend_from_slice(b"J");
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.push(0x85);
    if first {
        p.extend_from_slice(b"cnumpy\ndtype\nq\x0c");
    } else {
        p.extend_from_slice(b"h\x0c");
    }
    p.extend_from_slice(&[b'U', code.len() as u8]);
    p.extend_from_slice(code.as_bytes());
    p.extend_from_slice(b"K\x00K\x01\x87R");
    // dtype state: (3, '|', None, None, None, -1, -1, 0), BUILD.
    p.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    p.push(0x89);
    p.extend_from_slice(b"T");
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.extend_from_slice(b"tb");
    p
}

#[test]
fn numpy_array_variant() {
    let (pixels, encoded) = pngs(2);
    let mut p = vec![0x80, 2, b']', b'('];
    p.extend(numpy_array(&encoded[0], "u1", true));
    p.extend(numpy_array(&encoded[1], "u1", false));
    p.push(b'e');
    p.extend(numpy_array(&[1], "b1", false));
    p.extend_from_slice(&[0x86, b'.']);
    let pack = BinPack::from_bytes(&p, Path::new("np.bin")).unwrap();
    assert_eq!(pack.images, encoded);
    assert_eq!(pack.issame, vec![true]);
    assert_eq!(pack.decode().unwrap().samples[1].pixels, pixels[1]);

    // A float32 array is not an encoded image.
    let mut q = vec![0x80, 2, b']', b'('];
    q.extend(numpy_array(&encoded[0], "<f4", true));
    q.extend(numpy_array(&encoded[1], "u1", false));
    q.extend_from_slice(b"e]\x88a\x86.");
    let e = BinPack::from_bytes(&q, Path::new("np.bin")).unwrap_err();
    assert!(
        e.to_string()
            .contains("bins[0]: numpy dtype f4, expected uint8"),
        "{e}"
    );
}

#[test]
fn python3_protocol2_bytes_via_codecs_encode() {
    // Python 3 pickles b"\x01\xff" at protocol 2 as _codecs.encode('\x01\xff', 'latin1'):
    // the str is BINUNICODE in UTF-8 (U+00FF is c3 bf).
    let enc = |p: &mut Vec<u8>| {
        p.extend_from_slice(b"c_codecs\nencode\nq\x01X\x03\x00\x00\x00\x01\xc3\xbfq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05");
    };
    let mut p = vec![0x80, 2, b']', b'q', 0, b'('];
    enc(&mut p);
    p.extend_from_slice(b"h\x05e]q\x06\x89a\x86q\x07.");
    let v = parse_pickle(&p, Path::new("p3.bin")).unwrap();
    let expect = Value::Tuple(vec![
        Value::List(vec![
            Value::Bytes(vec![1, 0xff]),
            Value::Bytes(vec![1, 0xff]),
        ]),
        Value::List(vec![Value::Bool(false)]),
    ]);
    assert_eq!(v, expect);
}

#[test]
fn protocol4_frame_short_unicode_and_memoize() {
    // FRAME, SHORT_BINBYTES, MEMOIZE, BINGET, TUPLE2, STOP.
    let mut p = vec![0x80, 4, 0x95];
    p.extend_from_slice(&12u64.to_le_bytes());
    p.extend_from_slice(&[b'C', 2, 7, 8, 0x94, b'h', 0, 0x86, b'.']);
    let v = parse_pickle(&p, Path::new("x")).unwrap();
    assert_eq!(
        v,
        Value::Tuple(vec![Value::Bytes(vec![7, 8]), Value::Bytes(vec![7, 8])])
    );
}

fn err(bytes: &[u8]) -> String {
    let e = BinPack::from_bytes(bytes, Path::new("bad.bin")).unwrap_err();
    assert!(matches!(e, DataError::Format { .. }), "{e}");
    let m = e.to_string();
    assert!(m.starts_with("bad.bin: "), "{m}");
    m
}

#[test]
fn malformed_packs_name_the_offset_or_field() {
    let (_, encoded) = pngs(3);
    // Wrong shapes.
    assert!(err(b"\x80\x02]q\x00.").contains("holds a list[0], expected a tuple (bins, issame)"));
    assert!(err(b"\x80\x02]]]\x87.").contains("tuple of 3 items, expected 2"));
    assert!(err(&py2_pack(&encoded[..3], &[true])).contains("3 images for 1 pairs"));
    assert!(err(b"\x80\x02K\x01]\x86.").contains("bins is a int"));
    assert!(err(b"\x80\x02]U\x01xa]K\x05a\x86.").contains("issame[0] is int"));
    // Byte-level damage, with offsets.
    let mut cut = py2_pack(&encoded[..2], &[true]);
    cut.truncate(10);
    assert!(
        err(&cut).contains("pickle offset 6: truncated: SHORT_BINSTRING needs"),
        "{}",
        err(&cut)
    );
    assert!(err(b"\x80\x02]\xff").contains("pickle offset 3: unsupported pickle opcode 0xff"));
    assert!(err(b"\x80\x02h\x07").contains("pickle offset 2: BINGET of memo key 7, never stored"));
    assert!(err(b"\x80\x02e").contains("pickle offset 2: APPENDS without a MARK"));
    assert!(err(b"\x80\x02").contains("pickle offset 2: truncated: opcode needs 1 bytes"));
    assert!(err(b"\x80\x02T\xff\xff\xff\x7fab")
        .contains("pickle offset 2: truncated: BINSTRING needs 2147483647 bytes, 2 remain"));
    // A corrupt image is reported when decoding, naming the list index and pair.
    let mut bad = encoded[..2].to_vec();
    bad[1] = b"\xff\xd8\xff garbage".to_vec();
    let pack = BinPack::from_bytes(&py2_pack(&bad, &[true]), Path::new("bad.bin")).unwrap();
    let e = pack.decode().unwrap_err().to_string();
    assert!(
        e.contains("bins[1] (pair 0, image 1): cannot decode image"),
        "{e}"
    );
}
