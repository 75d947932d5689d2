//! Hostile embedding files: shapes larger than the file, overflowing shapes, non-UTF-8
//! headers, named pipes, and a mutation harness over `.npy` and `.safetensors` files: every
//! mutated file must give `Ok` or a typed error - never a panic, an abort or a hang.
//!
//! The harness runs `VISAGE_FUZZ_CASES` cases per reader (default 300) and prints its counts
//! per reader and outcome (`cargo test -p visage-eval --test hostile_readers -- --nocapture`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use visage_eval::identification::{check_ranks, MAX_RANK};
use visage_eval::io::npy::{encode_npy, parse_npy};
use visage_eval::io::safetensors_file::{encode_safetensors_f32, parse_safetensors_tensor};
use visage_eval::io::{
    raw_to_embeddings, raw_to_issame, raw_to_labels, read_embeddings, read_pairs_file,
};
use visage_eval::EvalError;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-hostile-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_shapes_are_checked_against_the_file_size() {
    let p = Path::new("x.npy");
    let data = f32_bytes(&[1.0; 8]);
    for (shape, what) in [
        ("(1000000000, 512)", "truncated"),
        ("(18446744073709551615, 2)", "overflows"),
        ("(4294967296, 4294967296)", "overflows"),
        ("(4611686018427387904,)", "overflows"),
        ("(2, 3)", "trailing"),
    ] {
        let bytes = npy_with_header(
            &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
            &data,
        );
        let err = parse_npy(p, &bytes).unwrap_err();
        assert!(matches!(err, EvalError::Npy { .. }), "{shape}: {err:?}");
        assert!(err.to_string().contains(what), "{shape}: {err}");
        assert!(err.to_string().contains("x.npy"), "{err}");
    }
    // a multi-byte first character in descr used to panic in split_at
    let bytes = npy_with_header(
        "{'descr': '\u{e9}f4', 'fortran_order': False, 'shape': (2,), }",
        &data[..8],
    );
    assert!(parse_npy(p, &bytes).is_err());
}

#[test]
fn safetensors_shapes_are_checked_against_the_file_size() {
    let p = Path::new("x.safetensors");
    for header in [
        r#"{"embeddings":{"dtype":"F32","shape":[1000000000,512],"data_offsets":[0,32]}}"#,
        r#"{"embeddings":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,32]}}"#,
        r#"{"embeddings":{"dtype":"F32","shape":[2,4],"data_offsets":[0,18446744073709551615]}}"#,
    ] {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(f32_bytes(&[0.5; 8]));
        let err = parse_safetensors_tensor(p, &bytes, "embeddings").unwrap_err();
        assert!(matches!(err, EvalError::Safetensors { .. }), "{err:?}");
    }
    // a header length beyond the file
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend(b"{}");
    assert!(parse_safetensors_tensor(p, &bytes, "embeddings").is_err());
}

#[cfg(unix)]
#[test]
fn named_pipes_are_refused_not_waited_on() {
    for name in ["pipe.npy", "pipe.safetensors", "pairs.txt"] {
        let p = tmp(name);
        let _ = std::fs::remove_file(&p);
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        if !made.map(|s| s.success()).unwrap_or(false) {
            eprintln!("mkfifo unavailable: skipped");
            return;
        }
        let (tx, rx) = mpsc::channel();
        let q = p.clone();
        std::thread::spawn(move || {
            let r = if q.extension().is_some_and(|e| e == "txt") {
                read_pairs_file(&q).map(|_| ())
            } else {
                read_embeddings(&q).map(|_| ())
            };
            let _ =
                tx.send(r.map_err(|e| (matches!(e, EvalError::NotAFile { .. }), e.to_string())));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{name}: reading a named pipe hung"));
        let (typed, text) = got.unwrap_err();
        assert!(typed, "{name}: {text}");
        assert!(text.contains("not a regular file"), "{text}");
        std::fs::remove_file(&p).ok();
    }
    // a folder where a file is expected
    let dir = tmp("a-folder.npy");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(
        read_embeddings(&dir),
        Err(EvalError::NotAFile { .. })
    ));
}

#[test]
fn ranks_are_bounded() {
    assert_eq!(check_ranks(&[10, 1, 5, 5]).unwrap(), vec![1, 5, 10]);
    for bad in [vec![], vec![0], vec![1, MAX_RANK + 1], vec![usize::MAX]] {
        let err = check_ranks(&bad).unwrap_err();
        assert!(err.to_string().contains("ranks"), "{err}");
    }
}

// ---- the mutation harness --------------------------------------------------------------

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Number of cases per reader: `VISAGE_FUZZ_CASES`, default 300.
fn fuzz_cases() -> usize {
    std::env::var("VISAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn mutate(base: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = base.to_vec();
    let desc = match rng.below(8) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            format!("{flips} bit flips")
        }
        1 => {
            let cut = rng.below(b.len());
            b.truncate(cut);
            format!("truncated to {cut}")
        }
        2 => {
            let i = rng.below(b.len());
            let v: &[u8] = match rng.below(3) {
                0 => &[0xff, 0xff, 0xff, 0x7f],
                1 => &[0xff; 8],
                _ => &[0, 0, 0, 0x80],
            };
            for (k, &x) in v.iter().enumerate() {
                if i + k < b.len() {
                    b[i + k] = x;
                }
            }
            format!("huge value at {i}")
        }
        3 => {
            // dtype swap: '<f4' <-> '<i8' <-> '|b1' ..., "F32" <-> "I64" ...
            let names: [&[u8]; 10] = [
                b"<f4",
                b"<f8",
                b"<i8",
                b"|b1",
                b"|u1",
                b"\"F32\"",
                b"\"F64\"",
                b"\"I64\"",
                b"\"BOOL\"",
                b"\"F16\"",
            ];
            let from = names[rng.below(names.len())];
            let to = names[rng.below(names.len())];
            let pos = b.windows(from.len()).position(|w| w == from);
            if let Some(i) = pos {
                b.splice(i..i + from.len(), to.iter().cloned());
            }
            format!(
                "dtype {} -> {}",
                String::from_utf8_lossy(from),
                String::from_utf8_lossy(to)
            )
        }
        4 => {
            // a shape digit changed and digits inserted (huge dims)
            let digits: Vec<usize> = (0..b.len().min(256))
                .filter(|&i| b[i].is_ascii_digit())
                .collect();
            if digits.is_empty() {
                return (b, "no digit".into());
            }
            let i = digits[rng.below(digits.len())];
            b[i] = b"0123456789"[rng.below(10)];
            let n = rng.below(22);
            b.splice(i..i, std::iter::repeat_n(b'9', n));
            format!("digit at {i}, {n} nines inserted")
        }
        5 => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(32);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
            format!("{n} bytes inserted at {i}")
        }
        6 => {
            let i = rng.below(b.len());
            let n = (1 + rng.below(32)).min(b.len() - i);
            b.drain(i..i + n);
            format!("{n} bytes removed at {i}")
        }
        _ => {
            let i = rng.below(b.len());
            let n = (1 + rng.below(64)).min(b.len() - i);
            for x in &mut b[i..i + n] {
                *x = rng.next() as u8;
            }
            format!("{n} bytes randomised at {i}")
        }
    };
    (b, desc)
}

/// Runs `cases` mutations of `bases` through `read` on a watched worker thread; panics (and
/// fails the test) on any panic or a case that takes more than 30 s. Prints the counts.
fn harness(
    reader: &str,
    bases: Vec<(String, Vec<u8>)>,
    cases: usize,
    read: fn(&Path, &[u8]) -> Result<(), EvalError>,
) -> (usize, usize) {
    let (tx, rx) = mpsc::channel::<(String, Result<bool, String>)>();
    let name = reader.to_string();
    std::thread::spawn(move || {
        let mut rng = Rng(0xE7A1 ^ name.len() as u64);
        for case in 0..cases {
            let (base_name, base) = &bases[case % bases.len()];
            let (bytes, desc) = mutate(base, &mut rng);
            let label = format!("{name} case {case} ({base_name}: {desc})");
            let path = PathBuf::from(base_name);
            let outcome =
                catch_unwind(AssertUnwindSafe(|| read(&path, &bytes).is_ok())).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                });
            if tx.send((label, outcome)).is_err() {
                return;
            }
        }
    });
    let (mut ok, mut error) = (0, 0);
    let mut panics = Vec::new();
    for _ in 0..cases {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((_, Ok(true))) => ok += 1,
            Ok((_, Ok(false))) => error += 1,
            Ok((label, Err(msg))) => panics.push(format!("{label}: {msg}")),
            Err(_) => panic!("{reader}: a case hung (no answer within 30 s)"),
        }
    }
    println!(
        "fuzz {reader}: {cases} cases: ok {ok}, error {error}, panic {}",
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "{reader}: panics:\n{}",
        panics.join("\n")
    );
    (ok, error)
}

/// Reads the array as every kind the CLI reads (embeddings, labels, issame).
fn read_npy_all(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let raw = parse_npy(path, bytes)?;
    let e = raw_to_embeddings(path, &raw);
    let l = raw_to_labels(path, &raw);
    let s = raw_to_issame(path, &raw);
    e.map(|_| ()).or(l.map(|_| ())).or(s.map(|_| ()))
}

fn read_safetensors_all(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let mut any = Err(EvalError::Protocol("no key".into()));
    for key in ["embeddings", "labels", "issame"] {
        if let Ok(raw) = parse_safetensors_tensor(path, bytes, key) {
            let e = raw_to_embeddings(path, &raw);
            let l = raw_to_labels(path, &raw);
            let s = raw_to_issame(path, &raw);
            if e.is_ok() || l.is_ok() || s.is_ok() {
                any = Ok(());
            }
        }
    }
    any
}

#[test]
fn mutated_npy_files_never_panic() {
    let emb = f32_bytes(&(0..24).map(|i| i as f32 * 0.1).collect::<Vec<_>>());
    let labels: Vec<u8> = [3i64, 1, 4, 1, 5, 9]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bases = vec![
        ("e.npy".to_string(), encode_npy("<f4", &[6, 4], &emb)),
        ("l.npy".to_string(), encode_npy("<i8", &[6], &labels)),
        (
            "s.npy".to_string(),
            encode_npy("|b1", &[6], &[1, 0, 1, 1, 0, 0]),
        ),
        ("d.npy".to_string(), encode_npy("<f8", &[3, 1], &[0u8; 24])),
    ];
    for (n, b) in &bases {
        read_npy_all(Path::new(n), b).unwrap();
    }
    let (_, error) = harness("npy", bases, fuzz_cases(), read_npy_all);
    assert!(error > 0);
}

#[test]
fn mutated_safetensors_files_never_panic() {
    let p = Path::new("e.safetensors");
    let emb: Vec<f32> = (0..24).map(|i| i as f32 * 0.1).collect();
    let base = encode_safetensors_f32(p, "embeddings", &[6, 4], &emb).unwrap();
    let labels = {
        use safetensors::tensor::{Dtype, TensorView};
        let l: Vec<u8> = [3i64, 1, 4, 1, 5, 9]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = [1u8, 0, 1, 1, 0, 0];
        let views = vec![
            ("labels", TensorView::new(Dtype::I64, vec![6], &l).unwrap()),
            ("issame", TensorView::new(Dtype::U8, vec![6], &s).unwrap()),
        ];
        safetensors::serialize(views, &None).unwrap()
    };
    let bases = vec![
        ("e.safetensors".to_string(), base),
        ("l.safetensors".to_string(), labels),
    ];
    for (n, b) in &bases {
        read_safetensors_all(Path::new(n), b).unwrap();
    }
    let (_, error) = harness("safetensors", bases, fuzz_cases(), read_safetensors_all);
    assert!(error > 0);
}
