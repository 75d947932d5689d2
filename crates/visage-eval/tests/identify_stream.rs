//! `identify_stream` (distractors read in chunks while they are scored) gives exactly the
//! report of `identify` on the whole matrix: f32 and f64 `.npy`, several chunks, a last chunk
//! shorter than the others, safetensors (read whole), and the same errors.

use std::path::{Path, PathBuf};

use visage_eval::identification::identify_stream;
use visage_eval::io::npy::encode_npy;
use visage_eval::io::{write_embeddings, EmbeddingReader};
use visage_eval::{identify, Embeddings, EvalError, IdentificationConfig};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "visage-eval-identify-stream-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn normal(&mut self) -> f64 {
        // Irwin-Hall: good enough for test data.
        (0..12)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum::<f64>()
            - 6.0
    }
}

/// 5 identities x 3 images around random centres, and `nd` random distractors, some of
/// which copy probes (exact ties).
fn data(nd: usize, dim: usize, seed: u64) -> (Embeddings, Vec<i64>, Embeddings) {
    let mut rng = Rng(seed);
    let labels: Vec<i64> = (0..15).map(|i| i / 3).collect();
    let centres: Vec<Vec<f64>> = (0..5)
        .map(|_| (0..dim).map(|_| rng.normal()).collect())
        .collect();
    let probes: Vec<f32> = labels
        .iter()
        .flat_map(|&l| {
            centres[l as usize]
                .iter()
                .map(|c| (c + 0.9 * rng.normal()) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut dist = Vec::with_capacity(nd * dim);
    for k in 0..nd {
        if k % 20_011 == 5 {
            let p = (k / 20_011) % 15;
            dist.extend_from_slice(&probes[p * dim..(p + 1) * dim]);
        } else {
            dist.extend((0..dim).map(|_| rng.normal() as f32));
        }
    }
    (
        Embeddings::new(15, dim, probes).unwrap(),
        labels,
        Embeddings::new(nd, dim, dist).unwrap(),
    )
}

fn config() -> IdentificationConfig {
    IdentificationConfig {
        ranks: vec![1, 2, 5, 10],
        distractor_block: 1000,
        ..Default::default()
    }
}

fn write_f64_npy(path: &Path, e: &Embeddings) {
    let data: Vec<u8> = e
        .data
        .iter()
        .flat_map(|&v| (f64::from(v) + 1e-9).to_le_bytes())
        .collect();
    std::fs::write(path, encode_npy("<f8", &[e.rows, e.dim], &data)).unwrap();
}

#[test]
fn streamed_npy_matches_in_memory() {
    // 70,001 rows: three stream chunks, the last one short.
    let (p, labels, d) = data(70_001, 8, 7);
    let dir = temp_dir("match");
    let expected = identify(&p, &labels, &d, &config()).unwrap();
    assert!(expected.tar_at_far_1e_6.is_some());
    let f32_path = dir.join("d.npy");
    write_embeddings(&f32_path, &d).unwrap();
    let reader = EmbeddingReader::open(&f32_path).unwrap();
    assert_eq!((reader.rows(), reader.dim()), (70_001, 8));
    let got = identify_stream(&p, &labels, reader, &config()).unwrap();
    assert_eq!(got, expected);

    // f64 on disk: converted to f32 as read_embeddings does.
    let f64_path = dir.join("d64.npy");
    write_f64_npy(&f64_path, &d);
    let d64 = visage_eval::io::read_embeddings(&f64_path).unwrap();
    let expected64 = identify(&p, &labels, &d64, &config()).unwrap();
    let got64 = identify_stream(
        &p,
        &labels,
        EmbeddingReader::open(&f64_path).unwrap(),
        &config(),
    )
    .unwrap();
    assert_eq!(got64, expected64);

    // safetensors: read whole, same report.
    let st_path = dir.join("d.safetensors");
    write_embeddings(&st_path, &d).unwrap();
    let got_st = identify_stream(
        &p,
        &labels,
        EmbeddingReader::open(&st_path).unwrap(),
        &config(),
    )
    .unwrap();
    assert_eq!(got_st, expected);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_errors_match_in_memory() {
    let (p, labels, mut d) = data(40_000, 4, 3);
    let dir = temp_dir("errors");
    // A NaN in the second stream chunk: the same typed error, naming the first bad value.
    d.data[35_000 * 4 + 2] = f32::NAN;
    d.data[39_000 * 4 + 1] = f32::INFINITY;
    let path = dir.join("nan.npy");
    write_embeddings(&path, &d).unwrap();
    let mem = identify(&p, &labels, &d, &config()).unwrap_err();
    let streamed = identify_stream(
        &p,
        &labels,
        EmbeddingReader::open(&path).unwrap(),
        &config(),
    )
    .unwrap_err();
    match (&mem, &streamed) {
        (
            EvalError::NonFinite {
                what: w1,
                row: r1,
                column: c1,
                ..
            },
            EvalError::NonFinite {
                what: w2,
                row: r2,
                column: c2,
                ..
            },
        ) => assert_eq!((w1, r1, c1), (w2, r2, c2)),
        other => panic!("expected two NonFinite errors, got {other:?}"),
    }
    assert_eq!(mem.to_string(), streamed.to_string());

    // Header and size errors are those of read_embeddings, when the reader is opened.
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.npy");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    let a = visage_eval::io::read_embeddings(&truncated).unwrap_err();
    let b = EmbeddingReader::open(&truncated).unwrap_err();
    assert_eq!(a.to_string(), b.to_string());
    let header_only = dir.join("header.npy");
    std::fs::write(&header_only, &bytes[..20]).unwrap();
    let a = visage_eval::io::read_embeddings(&header_only).unwrap_err();
    let b = EmbeddingReader::open(&header_only).unwrap_err();
    assert_eq!(a.to_string(), b.to_string());
    let labels_file = dir.join("labels.npy");
    std::fs::write(&labels_file, encode_npy("<i8", &[3], &[0u8; 24])).unwrap();
    let a = visage_eval::io::read_embeddings(&labels_file).unwrap_err();
    let b = EmbeddingReader::open(&labels_file).unwrap_err();
    assert_eq!(a.to_string(), b.to_string());
    let folder = dir.join("folder.npy");
    std::fs::create_dir_all(&folder).unwrap();
    assert!(matches!(
        EmbeddingReader::open(&folder),
        Err(EvalError::NotAFile { .. })
    ));

    // Shape errors before anything is read.
    let (p3, _, _) = data(1, 3, 1);
    let e = identify_stream(
        &p3,
        &labels,
        EmbeddingReader::open(&path).unwrap(),
        &config(),
    );
    assert!(matches!(e, Err(EvalError::Shape(_))));
    std::fs::remove_dir_all(&dir).ok();
}

/// Near-duplicate distractors with a margin of 1: the f32 selection cannot be certified, so
/// the streamed run must read the whole matrix back for both exact fallbacks and still give
/// the in-memory report.
#[test]
fn streamed_exact_fallbacks_match_in_memory() {
    let mut rng = Rng(11);
    let dim = 16;
    let base: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let mut near = |n: usize, scale: f64| -> Vec<f32> {
        (0..n * dim)
            .map(|k| (base[k % dim] + scale * rng.normal()) as f32)
            .collect()
    };
    let labels: Vec<i64> = vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
    let p = Embeddings::new(10, dim, near(10, 3e-4)).unwrap();
    // 110,000 x 10 kept probes > 1e6 impostors: the TAR is defined
    let nd = 110_000;
    let d = Embeddings::new(nd, dim, near(nd, 1e-4)).unwrap();
    let cfg = IdentificationConfig {
        ranks: (1..=20).collect(),
        margin: 1,
        ..Default::default()
    };
    let expected = identify(&p, &labels, &d, &cfg).unwrap();
    assert!(expected.exact_recomputed_probes > 0);
    assert!(expected.impostor_second_pass);
    let dir = temp_dir("fallbacks");
    let path = dir.join("d.npy");
    write_embeddings(&path, &d).unwrap();
    let got = identify_stream(&p, &labels, EmbeddingReader::open(&path).unwrap(), &cfg).unwrap();
    assert_eq!(got, expected);
    std::fs::remove_dir_all(&dir).ok();
}

/// `identify_files` (what `visage identify` calls) reads the three files, gives the report
/// of `identify` on the matrices, writes it, and checks the ranks before reading anything.
#[test]
fn identify_files_matches_identify_and_writes_the_report() {
    use visage_eval::identification::{identify_files, IdentifyRequest};
    let (p, labels, d) = data(2_500, 8, 3);
    let dir = temp_dir("files");
    write_embeddings(dir.join("p.npy"), &p).unwrap();
    write_embeddings(dir.join("d.npy"), &d).unwrap();
    let label_bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    std::fs::write(
        dir.join("l.npy"),
        encode_npy("<i8", &[labels.len()], &label_bytes),
    )
    .unwrap();
    let request = IdentifyRequest {
        probes: dir.join("p.npy"),
        probe_labels: dir.join("l.npy"),
        distractors: dir.join("d.npy"),
        config: config(),
        report: dir.join("report.json"),
    };
    let got = identify_files(&request, &mut visage_io::NoProgress).unwrap();
    assert_eq!(got, identify(&p, &labels, &d, &config()).unwrap());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["probes"], got.probes);

    let bad = IdentifyRequest {
        probes: dir.join("missing.npy"),
        config: IdentificationConfig {
            ranks: vec![0],
            ..config()
        },
        ..request
    };
    assert!(matches!(
        identify_files(&bad, &mut visage_io::NoProgress),
        Err(EvalError::Protocol(_))
    ));
}
