//! Hostile weight files: truncated storages, NaN/Inf weights, named pipes, deep pickles, and
//! a mutation harness over `torch.save` (zip and legacy) and safetensors files: every mutated
//! file must give `Ok` or a typed error - never a panic, an abort or a hang.
//!
//! The harness runs `VISAGE_FUZZ_CASES` cases per reader (default 300) and prints its counts
//! per reader and outcome (`cargo test -p visage-backbones --test hostile_weights --
//! --nocapture` shows them).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use burn::backend::Flex;
use common::*;
use visage_backbones::{
    load_weights, BackboneError, IResNetConfig, LeNetPPConfig, ReadOptions, StateDict,
};

type B = Flex;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-hostile-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A small state dict (LeNets++ keys are few; the reader does not care which net).
fn small_dict(seed: u64) -> Dict {
    let keys: Vec<(String, Vec<usize>)> = vec![
        ("conv1.weight".into(), vec![4, 3, 3, 3]),
        ("bn1.weight".into(), vec![4]),
        ("bn1.running_var".into(), vec![4]),
        ("fc.weight".into(), vec![8, 16]),
        ("fc.bias".into(), vec![8]),
    ];
    random_dict(&keys, seed)
}

fn opts() -> ReadOptions {
    ReadOptions::default()
}

#[test]
fn truncated_storage_is_an_error_naming_the_tensor() {
    for legacy in [false, true] {
        let mut items = torch_items(&small_dict(1), &[]);
        // fc.weight's storage loses its last 10 floats
        let fc = items.iter_mut().find(|i| i.key == "fc.weight").unwrap();
        fc.bytes.truncate(fc.bytes.len() - 40);
        let bytes = torch_save_bytes(&items, legacy);
        let err = StateDict::from_bytes(Path::new("cut.pth"), &bytes, opts()).unwrap_err();
        let text = err.to_string();
        if legacy {
            // the legacy stream has no storage boundaries: the cut shifts every later storage,
            // and the last one runs off the end of the file
            assert!(text.contains("truncated"), "{text}");
        } else {
            assert!(
                matches!(&err, BackboneError::CorruptTensor { key, .. } if key == "fc.weight"),
                "{err:?}"
            );
            assert!(
                text.contains("fc.weight") && text.contains("cut.pth"),
                "{text}"
            );
        }
    }
    // a storage whose declared size is smaller than the tensor's shape
    let mut items = torch_items(&small_dict(2), &[]);
    let fc = items.iter_mut().find(|i| i.key == "fc.bias").unwrap();
    fc.declared_numel = 4;
    fc.bytes.truncate(16);
    let bytes = torch_save_bytes(&items, false);
    let err = StateDict::from_bytes(Path::new("short.pth"), &bytes, opts()).unwrap_err();
    assert!(
        matches!(&err, BackboneError::CorruptTensor { key, .. } if key == "fc.bias"),
        "{err:?}"
    );
    // and a whole file cut short (the zip directory at its end is gone)
    let bytes = torch_save_bytes(&torch_items(&small_dict(3), &[]), false);
    for cut in [bytes.len() / 2, bytes.len() - 30, 100] {
        let err = StateDict::from_bytes(Path::new("half.pth"), &bytes[..cut], opts()).unwrap_err();
        assert!(matches!(err, BackboneError::ReadWeights { .. }), "{err:?}");
    }
}

#[test]
fn flipped_storage_bytes_fail_the_zip_crc() {
    let mut bytes = torch_save_bytes(&torch_items(&small_dict(4), &[]), false);
    // flip a bit in the middle of the first storage's data (after data.pkl)
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let err = StateDict::from_bytes(Path::new("flip.pth"), &bytes, opts()).unwrap_err();
    assert!(err.to_string().contains("CRC"), "{err}");
}

#[test]
fn legacy_and_zip_files_read_the_same_values() {
    let dict = small_dict(5);
    let extra = [("bn1.num_batches_tracked", vec![], vec![7i64])];
    let zip = StateDict::from_bytes(
        Path::new("a.pth"),
        &torch_save_bytes(&torch_items(&dict, &extra), false),
        opts(),
    )
    .unwrap();
    let legacy = StateDict::from_bytes(
        Path::new("b.pth"),
        &torch_save_bytes(&torch_items(&dict, &extra), true),
        opts(),
    )
    .unwrap();
    assert_eq!(zip.tensors.len(), dict.len());
    for (k, (shape, values)) in &dict {
        for sd in [&zip, &legacy] {
            let t = &sd.tensors[k];
            assert_eq!(t.shape.as_slice(), shape.as_slice(), "{k}");
            assert_eq!(t.as_slice::<f32>().unwrap(), values.as_slice(), "{k}");
        }
    }
}

#[test]
fn non_finite_weights_are_refused_unless_allowed() {
    for (bad, legacy) in [
        (f32::NAN, false),
        (f32::INFINITY, true),
        (f32::NEG_INFINITY, false),
    ] {
        let mut dict = small_dict(6);
        dict.get_mut("bn1.weight").unwrap().1[2] = bad;
        let bytes = torch_save_bytes(&torch_items(&dict, &[]), legacy);
        let err = StateDict::from_bytes(Path::new("nan.pth"), &bytes, opts()).unwrap_err();
        match &err {
            BackboneError::NonFinite { key, index, .. } => {
                assert_eq!(key, "bn1.weight");
                assert_eq!(*index, 2);
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        assert!(err.to_string().contains("--allow-non-finite"), "{err}");
        let allowed = ReadOptions {
            allow_non_finite: true,
        };
        let sd = StateDict::from_bytes(Path::new("nan.pth"), &bytes, allowed).unwrap();
        let v = sd.tensors["bn1.weight"].as_slice::<f32>().unwrap()[2];
        assert!(!v.is_finite());
    }
    // the same through a safetensors file and load_weights
    let device = Default::default();
    let model = LeNetPPConfig::new().init::<B>(&device);
    let mut dict: Dict = visage_backbones::expected_state_dict(&model)
        .into_iter()
        .map(|(k, s)| {
            let n = s.iter().product();
            (k, (s, vec![0.5f32; n]))
        })
        .collect();
    let key = dict.keys().next().unwrap().clone();
    dict.get_mut(&key).unwrap().1[0] = f32::NAN;
    let p = tmp("nan.safetensors");
    write_safetensors(&p, &dict, &[]);
    let err = load_weights(model, &p).unwrap_err();
    assert!(
        matches!(&err, BackboneError::NonFinite { key: k, index: 0, .. } if *k == key),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_named_pipe_is_refused_not_waited_on() {
    let p = tmp("pipe.pth");
    let _ = std::fs::remove_file(&p);
    let made = std::process::Command::new("mkfifo").arg(&p).status();
    if !made.map(|s| s.success()).unwrap_or(false) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let (tx, rx) = mpsc::channel();
    let q = p.clone();
    std::thread::spawn(move || {
        let _ = tx.send(StateDict::read(&q).map(|_| ()).map_err(|e| e.to_string()));
    });
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading a named pipe hung");
    let err = got.unwrap_err();
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_file(&p).ok();
}

#[test]
fn deep_and_wide_pickles_do_not_overflow_the_stack() {
    // a million nested lists, then STOP: dropping them must not recurse
    let n = 1_000_000;
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    let bytes = zip_stored(&[("archive/data.pkl".to_string(), p)]);
    let r = StateDict::from_bytes(Path::new("deep.pth"), &bytes, opts());
    assert!(r.is_err());
    // a dict nested 1000 deep
    let mut p = vec![0x80, 2, b'}'];
    for _ in 0..1000 {
        p.extend([b'X', 1, 0, 0, 0, b'k', b'}']);
    }
    p.extend(std::iter::repeat_n(b's', 1000));
    p.push(b'.');
    let bytes = zip_stored(&[("archive/data.pkl".to_string(), p)]);
    let err = StateDict::from_bytes(Path::new("nest.pth"), &bytes, opts()).unwrap_err();
    assert!(err.to_string().contains("deeper"), "{err}");
}

#[test]
fn huge_shapes_and_counts_are_errors_without_allocating() {
    let mut items = torch_items(&small_dict(7), &[]);
    items[0].shape = vec![1 << 20, 1 << 20, 1 << 20];
    items[0].declared_numel = i32::MAX as usize;
    for legacy in [false, true] {
        let bytes = torch_save_bytes(&items, legacy);
        let err = StateDict::from_bytes(Path::new("huge.pth"), &bytes, opts()).unwrap_err();
        assert!(
            matches!(
                err,
                BackboneError::CorruptTensor { .. } | BackboneError::ReadWeights { .. }
            ),
            "{err:?}"
        );
    }
    // a BINUNICODE8 claiming 2^62 bytes
    let mut p = vec![0x80, 4, 0x8d];
    p.extend((1u64 << 62).to_le_bytes());
    let bytes = zip_stored(&[("archive/data.pkl".to_string(), p)]);
    assert!(StateDict::from_bytes(Path::new("long.pth"), &bytes, opts()).is_err());
}

#[test]
fn a_truncated_pth_loaded_into_a_model_fails_with_the_key() {
    let device = Default::default();
    let model = IResNetConfig::new()
        .with_depth(18)
        .with_input_size([16, 16])
        .with_embedding_dim(8)
        .init::<B>(&device);
    let dict: Dict = visage_backbones::expected_state_dict(&model)
        .into_iter()
        .map(|(k, s)| {
            let n = s.iter().product();
            (k, (s, vec![0.25f32; n]))
        })
        .collect();
    let mut items = torch_items(&dict, &[]);
    let victim = items
        .iter_mut()
        .find(|i| i.key == "layer3.0.conv1.weight")
        .unwrap();
    victim.bytes.truncate(victim.bytes.len() / 3);
    let p = tmp("r18-cut.pth");
    std::fs::write(&p, torch_save_bytes(&items, false)).unwrap();
    let err = load_weights(model, &p).unwrap_err();
    assert!(
        matches!(&err, BackboneError::CorruptTensor { key, .. } if key == "layer3.0.conv1.weight"),
        "{err:?}"
    );
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

/// One mutation of `base`, described.
fn mutate(base: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = base.to_vec();
    let kind = rng.below(9);
    let desc = match kind {
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
            format!("truncated to {cut} bytes")
        }
        2 => {
            // a 4- or 8-byte field set to a huge value (sizes, counts, offsets, dims)
            let i = rng.below(b.len());
            let v: &[u8] = match rng.below(4) {
                0 => &[0xff, 0xff, 0xff, 0x7f],
                1 => &[0xff, 0xff, 0xff, 0xff],
                2 => &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
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
            // swap a dtype / storage-class name for another
            let names: [&[u8]; 8] = [
                b"FloatStorage",
                b"LongStorage",
                b"HalfStorage",
                b"DoubleStorage",
                b"BoolStorage",
                b"\"F32\"",
                b"\"I64\"",
                b"\"F16\"",
            ];
            let from = names[rng.below(names.len())];
            let to = names[rng.below(names.len())];
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            let mut n = 0;
            while i < b.len() {
                if b[i..].starts_with(from) && rng.below(2) == 0 {
                    out.extend_from_slice(to);
                    i += from.len();
                    n += 1;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            b = out;
            format!(
                "{n} x {} -> {}",
                String::from_utf8_lossy(from),
                String::from_utf8_lossy(to)
            )
        }
        4 => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(64);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
            format!("{n} random bytes inserted at {i}")
        }
        5 => {
            let i = rng.below(b.len());
            let n = (1 + rng.below(64)).min(b.len() - i);
            b.drain(i..i + n);
            format!("{n} bytes removed at {i}")
        }
        6 => {
            let i = rng.below(b.len());
            let n = (1 + rng.below(256)).min(b.len() - i);
            for x in &mut b[i..i + n] {
                *x = rng.next() as u8;
            }
            format!("{n} bytes randomised at {i}")
        }
        7 => {
            // a digit of a shape/size/offset changed (safetensors JSON, pickle text)
            let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
            if digits.is_empty() {
                return (b, "no digit".into());
            }
            let i = digits[rng.below(digits.len())];
            b[i] = b"0123456789"[rng.below(10)];
            let extra: Vec<u8> = (0..rng.below(12)).map(|_| b'9').collect();
            b.splice(i..i, extra.iter().cloned());
            format!("digit at {i} changed, {} nines inserted", extra.len())
        }
        _ => {
            let n = 1 + rng.below(4);
            for _ in 0..n {
                let i = rng.below(b.len());
                b[i] = [0x00, 0xff, b'(', b'.', b'}', 0x8d, b'Q', b'R'][rng.below(8)];
            }
            format!("{n} bytes set to special values")
        }
    };
    (b, desc)
}

#[derive(Default, Debug)]
struct Counts {
    ok: usize,
    error: usize,
    panic: usize,
}

/// Runs `cases` mutations of the `bases` through `read` (each in `catch_unwind`), on a worker
/// thread watched for hangs; returns the counts and the panicking cases.
fn harness(
    reader: &str,
    bases: Vec<(String, Vec<u8>)>,
    cases: usize,
    read: fn(&Path, &[u8]) -> Result<(), String>,
) -> Counts {
    let (tx, rx) = mpsc::channel::<(usize, String, Result<bool, String>)>();
    let name = reader.to_string();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let mut rng = Rng(0x5EED ^ name.len() as u64);
            for case in 0..cases {
                let (base_name, base) = &bases[case % bases.len()];
                let (bytes, desc) = mutate(base, &mut rng);
                let label = format!("{name} case {case} ({base_name}: {desc})");
                let path = PathBuf::from(format!("case-{case}-{base_name}"));
                let outcome = catch_unwind(AssertUnwindSafe(|| read(&path, &bytes).is_ok()))
                    .map_err(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    });
                if tx.send((case, label, outcome)).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let mut counts = Counts::default();
    let mut panics = Vec::new();
    for _ in 0..cases {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((_, _, Ok(true))) => counts.ok += 1,
            Ok((_, _, Ok(false))) => counts.error += 1,
            Ok((_, label, Err(msg))) => {
                counts.panic += 1;
                panics.push(format!("{label}: {msg}"));
            }
            Err(_) => panic!("{reader}: a case hung (no answer within 30 s)"),
        }
    }
    println!(
        "fuzz {reader}: {cases} cases: ok {}, error {}, panic {}",
        counts.ok, counts.error, counts.panic
    );
    assert!(
        panics.is_empty(),
        "{reader}: panics:\n{}",
        panics.join("\n")
    );
    counts
}

fn read_state_dict(path: &Path, bytes: &[u8]) -> Result<(), String> {
    StateDict::from_bytes(path, bytes, ReadOptions::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn mutated_pth_files_never_panic() {
    let extra = [("bn1.num_batches_tracked", vec![], vec![3i64])];
    let bases = vec![
        (
            "zip.pth".to_string(),
            torch_save_bytes(&torch_items(&small_dict(11), &extra), false),
        ),
        (
            "legacy.pth".to_string(),
            torch_save_bytes(&torch_items(&small_dict(12), &extra), true),
        ),
    ];
    // the bases themselves load
    for (n, b) in &bases {
        read_state_dict(Path::new(n), b).unwrap();
    }
    let c = harness("pth", bases, fuzz_cases(), read_state_dict);
    assert!(c.error > 0);
}

/// The storages of the zip base; the pickle under test is wrapped with them into a zip with
/// correct CRCs, so that mutations reach the pickle machine instead of failing the CRC.
fn pickle_in_zip(path: &Path, pickle: &[u8]) -> Result<(), String> {
    let items = torch_items(
        &small_dict(11),
        &[("bn1.num_batches_tracked", vec![], vec![3i64])],
    );
    let mut entries = vec![("archive/data.pkl".to_string(), pickle.to_vec())];
    for (i, item) in items.iter().enumerate() {
        entries.push((format!("archive/data/{i}"), item.bytes.clone()));
    }
    read_state_dict(path, &zip_stored(&entries))
}

/// The `data.pkl` of a zip base.
fn base_pickle() -> Vec<u8> {
    let zip = torch_save_bytes(
        &torch_items(
            &small_dict(11),
            &[("bn1.num_batches_tracked", vec![], vec![3i64])],
        ),
        false,
    );
    // the first entry is archive/data.pkl: local header (30 bytes + name), then the data
    let name_len = u16::from_le_bytes([zip[26], zip[27]]) as usize;
    let size = u32::from_le_bytes([zip[18], zip[19], zip[20], zip[21]]) as usize;
    zip[30 + name_len..30 + name_len + size].to_vec()
}

#[test]
fn mutated_pth_pickles_never_panic() {
    let base = base_pickle();
    pickle_in_zip(Path::new("p.pth"), &base).unwrap();
    let c = harness(
        "pth-pickle",
        vec![("data.pkl".to_string(), base)],
        fuzz_cases(),
        pickle_in_zip,
    );
    assert!(c.error > 0);
}

#[test]
fn mutated_safetensors_weights_never_panic() {
    let p = tmp("base.safetensors");
    write_safetensors(
        &p,
        &small_dict(13),
        &[("bn1.num_batches_tracked", vec![], vec![3])],
    );
    let base = std::fs::read(&p).unwrap();
    read_state_dict(Path::new("w.safetensors"), &base).unwrap();
    let c = harness(
        "weights-safetensors",
        vec![("w.safetensors".to_string(), base)],
        fuzz_cases(),
        read_state_dict,
    );
    assert!(c.error > 0);
}

#[test]
fn many_views_of_one_storage_and_many_keys_are_bounded() {
    // 200,000 entries viewing one 4,096-float storage: 800 M floats if materialised
    let mut p = vec![0x80, 2, b'}', b'('];
    // the tensor once, memoised
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\x00\x10\x00\x00tQ");
    p.extend(b"K\x00(M\x00\x10tK\x01\x85\x89NtR");
    p.extend([b'r', 0, 0, 0, 0, b'0']); // LONG_BINPUT 0, POP
    for i in 0..200_000u32 {
        p.push(b'J');
        p.extend(i.to_le_bytes());
        p.extend([b'j', 0, 0, 0, 0]); // LONG_BINGET 0
    }
    p.extend([b'u', b'.']);
    let storage = vec![0u8; 4096 * 4];
    let bytes = zip_stored(&[
        ("archive/data.pkl".to_string(), p),
        ("archive/data/0".to_string(), storage),
    ]);
    let start = std::time::Instant::now();
    let err = StateDict::from_bytes(Path::new("views.pth"), &bytes, opts()).unwrap_err();
    assert!(err.to_string().contains("views"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
