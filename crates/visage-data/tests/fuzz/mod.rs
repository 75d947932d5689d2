//! The mutation harness shared by the `fuzz_*` tests: generated valid inputs, mutated (bit
//! flips, truncations at every length class, inserted huge sizes, duplicated and removed
//! bytes, huge numbers in text), each run through a reader on a worker thread. Every case must
//! end in `Ok` or a `DataError`: a panic (caught with `catch_unwind`), a case over the time
//! limit, or a single allocation over [`ALLOC_LIMIT`] fails the test, naming the case.
//!
//! `VISAGE_FUZZ_CASES` sets the cases per reader (default [`DEFAULT_CASES`]; `cargo xtask fuzz
//! --cases N` runs the same tests longer, in release), `VISAGE_FUZZ_SEED` the seed. Each reader
//! writes one line of counts to stderr (ok / error / panic / over time), outside the test
//! harness's capture so that it shows in `cargo test` output.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use visage_data::SplitMix64;

/// Cases per reader in `cargo test`.
pub const DEFAULT_CASES: usize = 300;
/// Wall-clock limit of one case: beyond it the case counts as a hang.
pub const CASE_LIMIT: Duration = Duration::from_secs(30);
/// Largest single allocation a case may make: inputs are a few KiB, and an image decode may
/// allocate at most 16 MiB for them (`visage_data::sample::MIN_IMAGE_ALLOC`).
pub const ALLOC_LIMIT: usize = 64 << 20;

/// The global allocator of the fuzz test binaries: [`System`], recording the largest single
/// request since the last [`take_largest_alloc`].
pub struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The largest single allocation since the last call, and reset.
pub fn take_largest_alloc() -> usize {
    LARGEST.swap(0, Ordering::Relaxed)
}

/// Cases per reader: `VISAGE_FUZZ_CASES` or [`DEFAULT_CASES`].
pub fn cases() -> usize {
    std::env::var("VISAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Base seed: `VISAGE_FUZZ_SEED` or 13.
pub fn seed() -> u64 {
    std::env::var("VISAGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13)
}

/// A fresh, empty directory for one reader's cases.
pub fn work_dir(reader: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("visage-fuzz-{reader}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Uniform integer in `[0, n)` (0 when `n` is 0).
pub fn below(r: &mut SplitMix64, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        r.below(n as u64) as usize
    }
}

/// Sizes a hostile header might announce.
const HUGE_U32: [u32; 8] = [
    u32::MAX,
    u32::MAX - 1,
    0x7FFF_FFFF,
    0x8000_0000,
    0x1FFF_FFFF,
    0x0100_0000,
    65_536,
    0,
];
const HUGE_U64: [u64; 4] = [u64::MAX, 0x7FFF_FFFF_FFFF_FFFF, 1 << 40, 1 << 32];
/// Numbers a hostile text file might hold.
const HUGE_NUMBERS: [&str; 9] = [
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "4294967296",
    "2147483648",
    "1000000000",
    "-1",
    "0",
    "1e9",
];

/// Applies one random mutation to `b`; returns its description.
pub fn mutate_once(b: &mut Vec<u8>, r: &mut SplitMix64) -> String {
    let len = b.len();
    match below(r, 9) {
        0 if len > 0 => {
            let n = 1 + below(r, 8);
            for _ in 0..n {
                let i = below(r, len);
                b[i] ^= 1 << below(r, 8);
            }
            format!("flip {n} bits")
        }
        1 => {
            // Truncation at every length class: empty, one byte, inside the first header
            // words, at the half, near the end, anywhere.
            let to = match below(r, 6) {
                0 => 0,
                1 => 1.min(len),
                2 => below(r, 33.min(len + 1)),
                3 => len / 2,
                4 => len.saturating_sub(1 + below(r, 8)),
                _ => below(r, len + 1),
            };
            b.truncate(to);
            format!("truncate to {to}")
        }
        2 if len > 0 => {
            // Half of the time at a 4-byte boundary, where binary formats keep their sizes.
            let at = if below(r, 2) == 0 {
                below(r, len.div_ceil(4)) * 4
            } else {
                below(r, len)
            };
            let (bytes, what): (Vec<u8>, String) = match below(r, 4) {
                0 => {
                    let v = HUGE_U32[below(r, HUGE_U32.len())];
                    (v.to_le_bytes().to_vec(), format!("u32le {v:#x}"))
                }
                1 => {
                    let v = HUGE_U32[below(r, HUGE_U32.len())];
                    (v.to_be_bytes().to_vec(), format!("u32be {v:#x}"))
                }
                2 => {
                    let v = HUGE_U64[below(r, HUGE_U64.len())];
                    (v.to_le_bytes().to_vec(), format!("u64le {v:#x}"))
                }
                _ => (vec![0xFF, 0xFF], "u16 0xffff".to_string()),
            };
            for (k, x) in bytes.iter().enumerate() {
                if at + k < b.len() {
                    b[at + k] = *x;
                }
            }
            format!("huge size {what} at {at}")
        }
        3 if len > 0 => {
            let s = below(r, len);
            let n = 1 + below(r, (len - s).min(64));
            let at = below(r, len + 1);
            let copy = b[s..s + n].to_vec();
            b.splice(at..at, copy);
            format!("duplicate {n} bytes from {s} at {at}")
        }
        4 if len > 0 => {
            let s = below(r, len);
            let n = 1 + below(r, (len - s).min(64));
            b.drain(s..s + n);
            format!("remove {n} bytes at {s}")
        }
        5 if len > 0 => {
            let i = below(r, len);
            let v = r.next_u64() as u8;
            b[i] = v;
            format!("set byte {i} to {v:#04x}")
        }
        6 => {
            let at = below(r, len + 1);
            let n = 1 + below(r, 16);
            let junk: Vec<u8> = (0..n).map(|_| r.next_u64() as u8).collect();
            b.splice(at..at, junk);
            format!("insert {n} random bytes at {at}")
        }
        7 => {
            // Replace a decimal number (text formats) with a huge one.
            let starts: Vec<usize> = (0..len)
                .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
                .collect();
            if starts.is_empty() {
                return mutate_once(b, r);
            }
            let s = starts[below(r, starts.len())];
            let e = (s..len).find(|&i| !b[i].is_ascii_digit()).unwrap_or(len);
            let v = HUGE_NUMBERS[below(r, HUGE_NUMBERS.len())];
            b.splice(s..e, v.bytes());
            format!("number at {s} -> {v}")
        }
        _ => {
            // Duplicate or drop a whole line (text), or a 4-byte word (binary).
            if let Some(nl) = b.iter().position(|&c| c == b'\n') {
                let line = b[..=nl].to_vec();
                if below(r, 2) == 0 {
                    b.splice(0..0, line);
                    "duplicate the first line".into()
                } else {
                    b.drain(..=nl);
                    "drop the first line".into()
                }
            } else if len >= 4 {
                let at = below(r, len - 3);
                let w = b[at..at + 4].to_vec();
                b.splice(at..at, w);
                format!("duplicate the word at {at}")
            } else {
                b.clear();
                "clear".into()
            }
        }
    }
}

/// Applies 1 to 3 mutations; returns their descriptions.
pub fn mutate(b: &mut Vec<u8>, r: &mut SplitMix64) -> String {
    let n = 1 + below(r, 3);
    (0..n)
        .map(|_| mutate_once(b, r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether case `i` is a valid, unmutated input (every 10th case), which must be accepted.
pub fn valid_case(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The reader accepted the input.
    Ok,
    /// The reader returned a `DataError` (its message).
    Error(String),
}

/// One case's run: its description (what was generated and mutated) and its outcome.
pub type CaseFn = dyn Fn(usize, &mut SplitMix64) -> (String, Outcome) + Send + Sync;

/// Counts of one reader's cases, by outcome.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Cases run.
    pub tried: usize,
    /// Accepted.
    pub ok: usize,
    /// Refused with a `DataError`.
    pub error: usize,
    /// Panicked.
    pub panic: usize,
    /// Ran past [`CASE_LIMIT`].
    pub hang: usize,
    /// Allocated more than [`ALLOC_LIMIT`] at once.
    pub big_alloc: usize,
    /// Unmutated (valid) inputs the reader refused.
    pub valid_refused: usize,
}

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Runs `cases()` cases of `reader` through `case` (case `i` gets its own seeded generator;
/// every 10th case, [`valid_case`], is a valid unmutated input that must be accepted), prints
/// the counts, and panics listing the failing cases if any case panicked, hung, allocated
/// past the limit, or a valid input was refused.
pub fn run(reader: &str, case: Arc<CaseFn>) -> Counts {
    let n = cases();
    let base = seed();
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let m = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *PANIC_MESSAGE.lock().unwrap() = Some(format!("{m}{at}"));
    }));
    let mut counts = Counts::default();
    let mut failures: Vec<String> = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut largest = 0usize;
    let started = Instant::now();
    for i in 0..n {
        let (tx, rx) = std::sync::mpsc::channel();
        let c = case.clone();
        let case_seed = base.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64);
        take_largest_alloc();
        let t = Instant::now();
        std::thread::Builder::new()
            .name(format!("fuzz-{reader}-{i}"))
            .spawn(move || {
                let mut r = SplitMix64::from_parts(&[case_seed, 0xF0]);
                let desc = std::sync::Mutex::new(String::new());
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let (d, o) = c(i, &mut r);
                    *desc.lock().unwrap() = d;
                    o
                }));
                let _ = tx.send((desc.into_inner().unwrap_or_default(), result));
            })
            .expect("spawning a fuzz worker");
        counts.tried += 1;
        let name = format!("{reader} case {i} (VISAGE_FUZZ_SEED={base})");
        match rx.recv_timeout(CASE_LIMIT) {
            Err(_) => {
                counts.hang += 1;
                failures.push(format!(
                    "{name}: no result after {CASE_LIMIT:?} (hang); the worker is left running"
                ));
                break;
            }
            Ok((desc, result)) => {
                let dt = t.elapsed();
                slowest = slowest.max(dt);
                let alloc = take_largest_alloc();
                largest = largest.max(alloc);
                if alloc > ALLOC_LIMIT {
                    counts.big_alloc += 1;
                    failures.push(format!(
                        "{name} [{desc}]: one allocation of {alloc} bytes (limit {ALLOC_LIMIT})"
                    ));
                }
                match result {
                    Ok(Outcome::Ok) => counts.ok += 1,
                    Ok(Outcome::Error(e)) => {
                        counts.error += 1;
                        if valid_case(i) {
                            counts.valid_refused += 1;
                            failures.push(format!("{name}: valid input refused: {e}"));
                        }
                    }
                    Err(_) => {
                        counts.panic += 1;
                        let m = PANIC_MESSAGE.lock().unwrap().take().unwrap_or_default();
                        failures.push(format!("{name} [{desc}]: panic: {m}"));
                    }
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    let line = format!(
        "fuzz {reader}: {} cases (seed {base}): {} ok, {} error, {} panic, {} hang, {} over the allocation limit; {} valid inputs refused; slowest case {:.3} s, largest allocation {:.1} MiB, {:.1} s in all\n",
        counts.tried,
        counts.ok,
        counts.error,
        counts.panic,
        counts.hang,
        counts.big_alloc,
        counts.valid_refused,
        slowest.as_secs_f64(),
        largest as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Ok(dir) = std::env::var("VISAGE_FUZZ_REPORT") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{reader}.txt")),
            &line,
        );
    }
    if !failures.is_empty() {
        panic!(
            "{} failing case(s) of {reader}:\n{}",
            failures.len(),
            failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    counts
}

/// The outcome of a reader's result (the `Ok` value is dropped).
pub fn outcome<T>(r: visage_data::Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// A random `h` x `w` RGB image encoded as PNG or JPEG (chosen at random).
pub fn encoded_image(r: &mut SplitMix64, h: usize, w: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..h * w * 3).map(|_| r.next_u64() as u8).collect();
    if below(r, 2) == 0 {
        visage_data::sample::encode_png(&pixels, h, w).unwrap()
    } else {
        visage_data::sample::encode_jpeg(&pixels, h, w, 90).unwrap()
    }
}

/// `inspect --deep` of `path`; for a valid (unmutated) input any listed problem is an error
/// too, so a reader that reports problems in good data fails the harness.
pub fn inspect_deep(path: &std::path::Path, valid: bool) -> visage_data::Result<()> {
    let options = visage_data::inspect::InspectOptions { deep: true };
    let i = visage_data::inspect::inspect_with(path, options)?;
    if valid && !i.problems.is_empty() {
        return Err(visage_data::DataError::Invalid(format!(
            "problems reported for a valid input: {:?}",
            i.problems
        )));
    }
    Ok(())
}
