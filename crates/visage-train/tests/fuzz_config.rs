//! Mutation harness for training configs: every `configs/*.toml` of the repository, mutated
//! (a value swapped for an extreme or a wrong type, a line dropped or repeated, a byte flipped,
//! the text cut short, a kind renamed), as written (with its `base` resolved) and written out
//! in full after resolving its bases, goes through everything that runs before the first
//! step and needs no data files: parsing, `validate_static`, the backbone's sizes, the head's
//! config and initialisation, and opening synthetic data. Each case must end in `Ok` or a typed error: a panic fails the
//! test naming the case. `VISAGE_FUZZ_CASES` sets the cases per config (default 200;
//! `cargo xtask fuzz` raises it); the counts by outcome are printed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use visage_data::SplitMix64;
use visage_train::{TrainConfig, TrainError};

const VALUES: [&str; 18] = [
    "0",
    "-1",
    "1",
    "1e300",
    "-1e300",
    "1e-300",
    "nan",
    "inf",
    "-inf",
    "18446744073709551615",
    "9223372036854775807",
    "4294967297",
    "0.5",
    "\"x\"",
    "true",
    "[]",
    "[1, 2, 3]",
    "{ a = 1 }",
];

const KINDS: [&str; 8] = [
    "\"arcface\"",
    "\"triplet\"",
    "\"center\"",
    "\"iresnet200\"",
    "\"recordio\"",
    "\"\"",
    "\"sphere64\"",
    "\"adacos\"",
];

/// `(name, path, text)` of each run config in `configs/` (the partial configs of
/// `configs/base/` are reached through the `base` keys).
fn configs() -> Vec<(String, PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut out: Vec<(String, PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file() && e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "configs/ not found at {}", dir.display());
    out
}

/// One mutation of `text`, and its description.
fn mutate(text: &str, rng: &mut SplitMix64) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let pick = |rng: &mut SplitMix64, n: usize| rng.below(n.max(1) as u64) as usize;
    match rng.below(6) {
        0 | 1 => {
            // A `key = value` line gets another value.
            let assigns: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains('=') && !lines[i].trim_start().starts_with('#'))
                .collect();
            let i = assigns[pick(rng, assigns.len())];
            let key = lines[i].split('=').next().unwrap().trim();
            let value = if key == "kind" && rng.below(2) == 0 {
                KINDS[pick(rng, KINDS.len())]
            } else {
                VALUES[pick(rng, VALUES.len())]
            };
            let mut out = lines.clone();
            let line = format!("{key} = {value}");
            out[i] = &line;
            (out.join("\n"), format!("line {}: {line}", i + 1))
        }
        2 => {
            let i = pick(rng, lines.len());
            let mut out = lines.clone();
            out.remove(i);
            (out.join("\n"), format!("line {} dropped", i + 1))
        }
        3 => {
            let i = pick(rng, lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            (out.join("\n"), format!("line {} repeated", i + 1))
        }
        4 => {
            let mut bytes = text.as_bytes().to_vec();
            let i = pick(rng, bytes.len());
            bytes[i] ^= 1 << rng.below(8);
            (
                String::from_utf8_lossy(&bytes).into_owned(),
                format!("byte {i} flipped"),
            )
        }
        _ => {
            let cut = pick(rng, text.len());
            let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap();
            (text[..cut].to_string(), format!("cut at byte {cut}"))
        }
    }
}

/// Everything before the first step that needs no data, on `text` read as the file `path`
/// (its `base`, if it names one, is resolved next to `path`).
fn check(path: &Path, text: &str) -> Result<(), TrainError> {
    let config = TrainConfig::from_toml(path, text)?;
    config.validate_static()?;
    config.backbone.input_size()?;
    config.backbone.in_channels()?;
    let dim = config.backbone.embedding_dim()?;
    config
        .head
        .spec
        .init::<Flex>(10, dim, &Default::default())?;
    // Synthetic data is opened (sizes checked, labels read) without drawing an image.
    if config.data.path.is_none() {
        visage_train::data::open_training(&config.data)?;
    }
    Ok(())
}

#[test]
fn fuzz_configs_mutated_never_panic() {
    let cases: usize = std::env::var("VISAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut rng = SplitMix64::new(0x5eed_c0f1);
    let (mut ok, mut err, mut panics) = (0usize, 0usize, Vec::new());
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, path, text) in configs() {
        // The file as written (for most, a `base` and a few overrides), and the config it
        // resolves to written out in full, so that the bases' keys are mutated too.
        let resolved =
            toml::to_string(&visage_train::inherit::resolve_file(&path).unwrap().table).unwrap();
        for case in 0..cases {
            let source = if case % 2 == 0 { &text } else { &resolved };
            let (mutant, what) = mutate(source, &mut rng);
            let what = if case % 2 == 0 {
                what
            } else {
                format!("resolved, {what}")
            };
            match catch_unwind(AssertUnwindSafe(|| check(&path, &mutant))) {
                Ok(Ok(())) => ok += 1,
                Ok(Err(_)) => err += 1,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panics.push(format!("{name}: {what}: {msg}"));
                }
            }
        }
    }
    std::panic::set_hook(quiet);
    println!(
        "configs: {} cases: {ok} ok, {err} errors, {} panics",
        ok + err + panics.len(),
        panics.len()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(ok > 0 && err > 0, "the mutations should give both outcomes");
}
