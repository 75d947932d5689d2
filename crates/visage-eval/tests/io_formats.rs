//! `.npy` / `.safetensors` / pairs-file readers on byte-level fixtures written from the
//! format specs, writer round trips, and the errors for bad files.

use std::path::PathBuf;

use visage_eval::io::{
    read_embeddings, read_issame, read_labels, read_pairs_file, write_embeddings,
};
use visage_eval::{Embeddings, EvalError};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-eval-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `\x93NUMPY`, version, u16/u32 header length, header text padded with spaces + `\n`.
fn npy_bytes(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    let prefix = if major == 1 { 10 } else { 12 };
    while !(prefix + h.len() + 1).is_multiple_of(16) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([major, 0]);
    if major == 1 {
        out.extend((h.len() as u16).to_le_bytes());
    } else {
        out.extend((h.len() as u32).to_le_bytes());
    }
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn reads_npy_f4_v1_and_f8_v2() {
    let p = tmp("a.npy");
    let vals = [1.0f32, -2.5, 3.25, 0.0, 1e-3, 7.0];
    let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    std::fs::write(&p, npy_bytes(1, h, &f32_bytes(&vals))).unwrap();
    let e = read_embeddings(&p).unwrap();
    assert_eq!((e.rows, e.dim), (2, 3));
    assert_eq!(e.data, vals.to_vec());
    assert_eq!(e.row(1), &[0.0, 1e-3, 7.0]);

    let p = tmp("b.npy");
    let vals64 = [0.1f64, 0.2, 0.3, 0.4];
    let data: Vec<u8> = vals64.iter().flat_map(|x| x.to_le_bytes()).collect();
    let h = "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (4, 1)}";
    std::fs::write(&p, npy_bytes(2, h, &data)).unwrap();
    let e = read_embeddings(&p).unwrap();
    assert_eq!((e.rows, e.dim), (4, 1));
    assert_eq!(e.data, vec![0.1f32, 0.2, 0.3, 0.4]);
}

#[test]
fn npy_errors_name_the_problem() {
    let h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    let p = tmp("fortran.npy");
    std::fs::write(&p, npy_bytes(1, h, &f32_bytes(&[0.0; 6]))).unwrap();
    let err = read_embeddings(&p).unwrap_err().to_string();
    assert!(
        err.contains("fortran_order") && err.contains("fortran.npy"),
        "{err}"
    );

    let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    let p = tmp("short.npy");
    std::fs::write(&p, npy_bytes(1, h, &f32_bytes(&[0.0; 5]))).unwrap();
    let err = read_embeddings(&p).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");

    let h = "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }";
    let p = tmp("big.npy");
    std::fs::write(&p, npy_bytes(1, h, &f32_bytes(&[0.0]))).unwrap();
    assert!(matches!(read_embeddings(&p), Err(EvalError::Npy { .. })));

    let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }";
    let p = tmp("int.npy");
    std::fs::write(&p, npy_bytes(1, h, &[0u8; 8])).unwrap();
    let err = read_embeddings(&p).unwrap_err().to_string();
    assert!(err.contains("float32"), "{err}");

    let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    let p = tmp("vec.npy");
    std::fs::write(&p, npy_bytes(1, h, &f32_bytes(&[0.0; 3]))).unwrap();
    let err = read_embeddings(&p).unwrap_err().to_string();
    assert!(err.contains("2-D"), "{err}");

    let p = tmp("garbage.npy");
    std::fs::write(&p, b"not a numpy file").unwrap();
    assert!(read_embeddings(&p)
        .unwrap_err()
        .to_string()
        .contains("magic"));

    assert!(matches!(
        read_embeddings(tmp("x.csv")),
        Err(EvalError::UnsupportedExtension { .. })
    ));
    assert!(matches!(
        read_embeddings(tmp("missing.npy")),
        Err(EvalError::Io { .. })
    ));
}

#[test]
fn reads_labels_and_issame_npy() {
    let p = tmp("labels.npy");
    let data: Vec<u8> = [5i64, -1, 1 << 40]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
    std::fs::write(&p, npy_bytes(1, h, &data)).unwrap();
    assert_eq!(read_labels(&p).unwrap(), vec![5, -1, 1 << 40]);

    let p = tmp("issame.npy");
    let h = "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }";
    std::fs::write(&p, npy_bytes(1, h, &[1, 0, 0, 1])).unwrap();
    assert_eq!(read_issame(&p).unwrap(), vec![true, false, false, true]);

    let p = tmp("issame_u8.npy");
    let h = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }";
    std::fs::write(&p, npy_bytes(1, h, &[0, 2, 1])).unwrap();
    let err = read_issame(&p).unwrap_err().to_string();
    assert!(err.contains("issame[1] = 2"), "{err}");
}

/// 8-byte little-endian header length, JSON header, raw data (the safetensors spec).
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn reads_safetensors_fixtures() {
    let p = tmp("e.safetensors");
    let mut data = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    data.extend([7i64, 8].iter().flat_map(|x| x.to_le_bytes()));
    data.extend([1u8, 0]);
    let header = r#"{"embeddings":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"labels":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},"issame":{"dtype":"BOOL","shape":[2],"data_offsets":[32,34]}}"#;
    std::fs::write(&p, safetensors_bytes(header, &data)).unwrap();
    let e = read_embeddings(&p).unwrap();
    assert_eq!(
        (e.rows, e.dim, e.data.clone()),
        (2, 2, vec![1.0, 2.0, 3.0, 4.0])
    );
    assert_eq!(read_labels(&p).unwrap(), vec![7, 8]);
    assert_eq!(read_issame(&p).unwrap(), vec![true, false]);

    let p = tmp("other.safetensors");
    let header = r#"{"feats":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
    std::fs::write(&p, safetensors_bytes(header, &f32_bytes(&[1.0, 2.0]))).unwrap();
    let err = read_embeddings(&p).unwrap_err().to_string();
    assert!(
        err.contains("'embeddings'") && err.contains("feats"),
        "{err}"
    );
    assert_eq!(
        visage_eval::io::read_embeddings_key(&p, "feats")
            .unwrap()
            .data,
        vec![1.0, 2.0]
    );
}

#[test]
fn written_files_read_back_and_npy_header_is_numpy_style() {
    let e = Embeddings::new(3, 2, vec![0.5, -1.0, 2.0, 3.0, f32::MIN_POSITIVE, 1e30]).unwrap();
    for name in ["w.npy", "w.safetensors"] {
        let p = tmp(name);
        write_embeddings(&p, &e).unwrap();
        assert_eq!(read_embeddings(&p).unwrap(), e);
    }
    let bytes = std::fs::read(tmp("w.npy")).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "data offset aligned to 64 like numpy");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"));
    assert!(header.ends_with('\n'));
    assert_eq!(&bytes[10 + hlen..10 + hlen + 4], &0.5f32.to_le_bytes());
    assert_eq!(bytes.len(), 10 + hlen + 24);
}

#[test]
fn pairs_file_lines_and_errors() {
    let p = tmp("pairs.txt");
    std::fs::write(&p, "# i j same\n0 1 1\n2,3,0\n\n4\t5 true\n").unwrap();
    let pairs = read_pairs_file(&p).unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(
        (pairs.0[1].first, pairs.0[1].second, pairs.0[1].same),
        (2, 3, false)
    );
    assert!(pairs.0[2].same);
    std::fs::write(&p, "0 1 1\n2 x 0\n").unwrap();
    match read_pairs_file(&p).unwrap_err() {
        EvalError::PairsFile { line, .. } => assert_eq!(line, 2),
        other => panic!("{other}"),
    }
    std::fs::write(&p, "0 1 maybe\n").unwrap();
    assert!(read_pairs_file(&p).is_err());
}
