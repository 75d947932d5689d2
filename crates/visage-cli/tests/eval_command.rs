//! `visage eval` end to end: a tiny `.bin` pack written byte by byte, a LeNets++ Burn record
//! saved here, a hand-worked 10-fold accuracy, and bad inputs named in errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::backend::Flex;
use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::{Tensor, TensorData};
use visage_backbones::{Backbone, BackboneConfig, BackboneKind};

type B = Flex;

const SIZE: usize = 28;
const PAIRS: usize = 20;
/// Backend seed of the saved model's initialisation.
const SEED: u64 = 3;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-eval-cmd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Pseudo-random RGB pixels (SplitMix64-style), `size x size x 3`.
fn noise(seed: u64, size: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..size * size * 3)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z >> 56) as u8
        })
        .collect()
}

fn png(pixels: &[u8], size: usize) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            pixels,
            size as u32,
            size as u32,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// Python 2 `pickle.dump((bins, issame), f, protocol=2)`: SHORT_BINSTRING/BINSTRING images
/// with BINPUT memos, NEWTRUE/NEWFALSE flags.
fn py2_pack(images: &[Vec<u8>], issame: &[bool]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'q', 0, b'('];
    for (i, img) in images.iter().enumerate() {
        if img.len() < 256 {
            p.extend_from_slice(&[b'U', img.len() as u8]);
        } else {
            p.push(b'T');
            p.extend_from_slice(&(img.len() as u32).to_le_bytes());
        }
        p.extend_from_slice(img);
        p.extend_from_slice(&[b'q', i as u8 + 1]);
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

fn lenet_config() -> BackboneConfig {
    let mut c = BackboneConfig::new(BackboneKind::LeNetPP);
    c.embedding_dim = Some(8);
    c.in_channels = Some(3);
    c
}

/// The test's set: pair 0 is labelled impostor but shows one image twice; the other even
/// pairs are genuine (one image twice), the odd pairs impostors: an image and its negative.
fn pair_images() -> (Vec<Vec<u8>>, Vec<bool>) {
    let mut pixels = Vec::new();
    let mut issame = Vec::new();
    for i in 0..PAIRS as u64 {
        let a = noise(100 + i, SIZE);
        let same = i % 2 == 0 && i != 0;
        let b = if i % 2 == 0 {
            a.clone()
        } else {
            a.iter().map(|&v| 255 - v).collect()
        };
        pixels.push(a);
        pixels.push(b);
        issame.push(same);
    }
    (pixels, issame)
}

/// Squared L2 distance of the L2-normalised f64 embeddings of two images, computed here with
/// the saved model: the plain (inference) backend, flip fusion (image + mirror).
fn distances(model: &Backbone<B>, pixels: &[Vec<u8>]) -> Vec<f64> {
    let mut values = Vec::new();
    for p in pixels {
        for c in 0..3 {
            for i in 0..SIZE * SIZE {
                values.push((p[i * 3 + c] as f32 / 255.0 - 0.5) / 0.5);
            }
        }
    }
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(values, [pixels.len(), 3, SIZE, SIZE]),
        &Default::default(),
    );
    let e = model.forward(x.clone()) + model.forward(x.flip([3]));
    let d = e.dims()[1];
    let v: Vec<f32> = e.into_data().into_vec().unwrap();
    let row = |r: usize| {
        let x: Vec<f64> = v[r * d..(r + 1) * d].iter().map(|&a| a as f64).collect();
        let n = x.iter().map(|a| a * a).sum::<f64>().sqrt();
        x.into_iter().map(move |a| a / n).collect::<Vec<f64>>()
    };
    (0..pixels.len() / 2)
        .map(|i| {
            let (a, b) = (row(2 * i), row(2 * i + 1));
            a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum()
        })
        .collect()
}

/// The 10-fold protocol written out plainly (docs/evaluation.md): contiguous folds (the first
/// n mod 10 one pair longer), thresholds i/100 for i in 0..400, same iff distance < threshold,
/// first threshold maximising the other 9 folds; mean and population std.
fn ten_fold(d: &[f64], same: &[bool]) -> (f64, f64) {
    let n = d.len();
    let mut bounds = vec![0];
    for k in 0..10 {
        bounds.push(bounds[k] + n / 10 + usize::from(k < n % 10));
    }
    let correct = |i: usize, t: f64| (d[i] < t) == same[i];
    let accs: Vec<f64> = (0..10)
        .map(|k| {
            let test = bounds[k]..bounds[k + 1];
            let mut best = (0, 0.0);
            for i in 0..400 {
                let t = i as f64 / 100.0;
                let hits = (0..n)
                    .filter(|j| !test.contains(j) && correct(*j, t))
                    .count();
                if hits > best.0 || i == 0 {
                    best = (hits, t);
                }
            }
            test.clone().filter(|&j| correct(j, best.1)).count() as f64 / test.len() as f64
        })
        .collect();
    let mean = accs.iter().sum::<f64>() / 10.0;
    let var = accs.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / 10.0;
    (mean, var.sqrt())
}

struct Fixture {
    dir: PathBuf,
    pack: PathBuf,
    weights: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = temp_dir(name);
    let (pixels, issame) = pair_images();
    let encoded: Vec<Vec<u8>> = pixels.iter().map(|p| png(p, SIZE)).collect();
    let pack = dir.join("pairs.bin");
    std::fs::write(&pack, py2_pack(&encoded, &issame)).unwrap();
    // A fixed seed keeps the random LeNets++ (and so the fixture) the same on every run; the
    // precondition of the hand computation is still checked below with the model itself.
    // (the backend RNG is global: tests running in parallel take turns)
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // Parameters are initialised lazily, on first use: the save (which draws them) must
    // happen inside the turn too.
    {
        let _turn = INIT.lock().unwrap_or_else(|e| e.into_inner());
        <B as burn::tensor::backend::Backend>::seed(&Default::default(), SEED);
        let model: Backbone<B> = lenet_config().init(&Default::default()).unwrap();
        model
            .save_file(
                dir.join("backbone"),
                &BinFileRecorder::<FullPrecisionSettings>::new(),
            )
            .unwrap();
    }
    Fixture {
        weights: dir.join("backbone.bin"),
        pack,
        dir,
    }
}

fn visage(args: &[&str], paths: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_visage"));
    cmd.arg("eval").args(args);
    for (flag, p) in paths {
        cmd.arg(flag).arg(p);
    }
    cmd.output().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bin_pack_with_burn_record_gives_the_hand_worked_accuracy() {
    let f = fixture("ok");
    let report = f.dir.join("run").join("report.json");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let out = visage(
        &[
            "--backbone",
            "lenet_pp",
            "--embedding-dim",
            "8",
            "--in-channels",
            "3",
            "--backend",
            "flex",
            "--batch-size",
            "7",
        ],
        &[
            ("--weights", &f.weights),
            ("--dataset", &f.pack),
            ("--report", &report),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Precondition of the hand computation, checked with the model's own forward here:
    // every true impostor pair is at squared distance >= 0.01 (the first threshold above 0),
    // the genuine pairs and pair 0 (same image twice) at ~0.
    let model: Backbone<B> = lenet_config()
        .init::<B>(&Default::default())
        .unwrap()
        .load_file(
            f.weights.clone(),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            &Default::default(),
        )
        .unwrap();
    let (pixels, _) = pair_images();
    let d = distances(&model, &pixels);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("accuracy 95.0000 %"), "{stdout}");
    assert!(stdout.contains("report.json"), "{stdout}");

    for (i, &di) in d.iter().enumerate() {
        if i % 2 == 1 {
            assert!(di >= 0.01, "impostor pair {i} at distance {di}");
        } else {
            assert!(di < 1e-9, "pair {i} at distance {di}");
        }
    }
    // 20 pairs -> 10 folds of 2. Threshold 0 calls every pair "different"; any threshold in
    // (0, 0.01] calls the genuine pairs and pair 0 "same" and the true impostors "different".
    // Training on folds without fold 0 (all correct at 0.01) or with it (pair 0 always
    // wrong above 0): the first maximising threshold is 0.01. Held-out: fold 0 = pairs 0 and
    // 1 -> 1/2; every other fold 2/2. Mean 9.5/10 = 0.95; std = sqrt((0.45^2 + 9 * 0.05^2)
    // / 10) = sqrt(0.0225) = 0.15.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["pairs"], 20);
    assert_eq!(json["genuine"], 9);
    assert_eq!(json["impostor"], 11);
    assert_eq!(json["dim"], 8);
    let mean = json["accuracy_mean"].as_f64().unwrap();
    let std = json["accuracy_std"].as_f64().unwrap();
    let (_, issame) = pair_images();
    let (m2, s2) = ten_fold(&d, &issame);
    assert!(
        (m2 - 0.95).abs() < 1e-12 && (s2 - 0.15).abs() < 1e-12,
        "{m2} {s2}"
    );
    assert!((mean - 0.95).abs() < 1e-12, "{mean}");
    assert!((std - 0.15).abs() < 1e-12, "{std}");
    for t in json["fold_thresholds"].as_array().unwrap() {
        assert!((t.as_f64().unwrap() - 0.01).abs() < 1e-12, "{t}");
    }
    // 11 impostors: FAR 1e-2 and below cannot be reached.
    assert!(json["tar_at_far"]["1e-2"].is_null());
    assert!(json["tar_at_far"]["1e-1"].is_number());
    // provenance
    let bytes = std::fs::read(&f.pack).unwrap();
    assert_eq!(json["dataset"]["kind"], "bin");
    assert_eq!(json["dataset"]["file_size"], bytes.len() as u64);
    assert_eq!(json["dataset"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(json["model"]["kind"], "lenet_pp");
    assert_eq!(json["flip"], true);
    assert_eq!(json["backend"], "flex");
    // plots and summary beside the report
    let run = report.parent().unwrap();
    for file in ["roc.png", "roc_hist.png", "summary.md"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(md.contains("95.0000 % +- 15.0000 %"), "{md}");
    assert!(md.contains("| 1e-2 | undefined |"), "{md}");
    assert!(
        md.contains("(roc.png)") && md.contains("(roc_hist.png)"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let f = fixture("err");
    let report = f.dir.join("report.json");
    let lenet = [
        "--backbone",
        "lenet_pp",
        "--embedding-dim",
        "8",
        "--in-channels",
        "3",
    ];

    // missing dataset file
    let missing = f.dir.join("nope.bin");
    let out = visage(
        &lenet,
        &[
            ("--weights", &f.weights),
            ("--dataset", &missing),
            ("--report", &report),
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("nope.bin") && e.contains("no such file"), "{e}");
    assert!(!e.contains("panicked"), "{e}");

    // wrong backbone kind for the record
    let out = visage(
        &["--backbone", "sphere4", "--input-size", "28,28"],
        &[
            ("--weights", &f.weights),
            ("--dataset", &f.pack),
            ("--report", &report),
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("backbone.bin") && e.contains("sphere4"), "{e}");
    assert!(!e.contains("panicked"), "{e}");

    // right kind, wrong embedding size
    let out = visage(
        &["--backbone", "lenet_pp", "--in-channels", "3"],
        &[
            ("--weights", &f.weights),
            ("--dataset", &f.pack),
            ("--report", &report),
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("backbone.bin") && e.contains("does not fit"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");

    // image size mismatch: the pack is 28x28, the backbone asked for 32x32
    let out = visage(
        &[
            "--backbone",
            "lenet_pp",
            "--embedding-dim",
            "8",
            "--in-channels",
            "3",
            "--input-size",
            "32,32",
        ],
        &[
            ("--weights", &f.weights),
            ("--dataset", &f.pack),
            ("--report", &report),
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("28x28") && e.contains("32x32"), "{e}");
    assert!(e.contains("pairs.bin"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(!report.exists());
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn lfw_folder_of_the_synthetic_pairs_matches_dataset_synthetic() {
    use visage_data::{PairList, SynthConfig, SyntheticDataset, SyntheticSplit};
    let f = fixture("lfw");
    // the held-out synthetic set written in LFW layout with the same seeds
    let config = SynthConfig {
        size: SIZE,
        seed: 5,
        difficulty: 1.0,
    };
    let lfw = f.dir.join("lfw");
    let pairs = PairList::draw(12, 4, 10, 2, 9).unwrap();
    SyntheticDataset::new(config, SyntheticSplit::HeldOut, 12, 4)
        .write_folder(&lfw, Some(&pairs))
        .unwrap();
    let lenet = [
        "--backbone",
        "lenet_pp",
        "--embedding-dim",
        "8",
        "--in-channels",
        "3",
    ];
    let (r_lfw, r_syn) = (
        f.dir.join("a").join("r.json"),
        f.dir.join("b").join("r.json"),
    );
    for r in [&r_lfw, &r_syn] {
        std::fs::create_dir_all(r.parent().unwrap()).unwrap();
    }
    let out = visage(
        &lenet,
        &[
            ("--weights", &f.weights),
            ("--dataset", &lfw),
            ("--report", &r_lfw),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut args = lenet.to_vec();
    args.extend([
        "--dataset",
        "synthetic",
        "--synthetic-identities",
        "12",
        "--synthetic-images",
        "4",
        "--synthetic-pairs-per-fold",
        "2",
        "--synthetic-seed",
        "5",
        "--pair-seed",
        "9",
    ]);
    let out = visage(&args, &[("--weights", &f.weights), ("--report", &r_syn)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b) = (read(&r_lfw), read(&r_syn));
    assert_eq!(a["pairs"], 40);
    assert_eq!(a["genuine"], 20);
    for key in ["accuracy_mean", "accuracy_std", "eer", "auc", "tar_at_far"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(a["dataset"]["kind"], "lfw");
    assert_eq!(b["dataset"]["kind"], "synthetic");
    assert_eq!(b["dataset"]["seed"], 5);
    assert_eq!(b["dataset"]["pair_seed"], 9);
    assert_eq!(b["dataset"]["size"], SIZE);
    let _ = std::fs::remove_dir_all(&f.dir);
}
