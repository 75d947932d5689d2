//! Hostile inputs to `visage head / identify / embed / eval`: labels beyond i32, scales and
//! ranks out of range, huge input sizes, truncated `.pth` files, NaN/Inf weights, images and
//! embeddings, and named pipes. Each must end quickly with a non-zero exit and a message
//! naming the tensor, flag or field - never a panic, a hang or a silently written result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::backend::Flex;
use safetensors::{tensor::TensorView, Dtype};
use visage_backbones::{expected_state_dict, LeNetPPConfig};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `visage ARGS` (ndarray backend where the command takes one), failing the test if it
/// runs for more than 120 s (a hang).
fn visage(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("visage {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a clean failure (exit code 1, no panic) whose stderr holds every `needle`.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure; stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "not a clean exit: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing `{n}` in:\n{err}");
    }
}

fn write_st(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---- visage head ---------------------------------------------------------------------------

fn head_input(dir: &Path, labels: &[i64], scale: Option<f32>) -> PathBuf {
    let n = labels.len();
    let mut t = vec![
        (
            "embeddings",
            Dtype::F32,
            vec![n, 2],
            f32s(&vec![0.5; n * 2]),
        ),
        ("labels", Dtype::I64, vec![n], i64s(labels)),
        (
            "weight",
            Dtype::F32,
            vec![3, 2],
            f32s(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.5]),
        ),
    ];
    if let Some(s) = scale {
        t.push(("scale", Dtype::F32, vec![], f32s(&[s])));
    }
    let path = dir.join("in.safetensors");
    write_st(&path, &t);
    path
}

#[test]
fn head_labels_beyond_i32_and_bad_scales_are_named() {
    let dir = temp_dir("head");
    let spec = dir.join("head.toml");
    let out_path = dir.join("out.safetensors");
    std::fs::write(&spec, "kind = \"cosface\"\n").unwrap();
    let input = head_input(&dir, &[0, 1 << 40], None);
    let out = visage(&[
        "head",
        "--spec",
        p(&spec),
        "--input",
        p(&input),
        "--output",
        p(&out_path),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &["`labels`[1]", "1099511627776", "i32"]);
    assert!(!out_path.exists());

    for text in [
        "kind = \"cosface\"\nscale = 1e300\n",
        "kind = \"arcface\"\nscale = -2.0\n",
    ] {
        std::fs::write(&spec, text).unwrap();
        let input = head_input(&dir, &[0, 1], None);
        let out = visage(&[
            "head",
            "--spec",
            p(&spec),
            "--input",
            p(&input),
            "--output",
            p(&out_path),
            "--backend",
            "ndarray",
        ]);
        fails_with(&out, &["`scale`"]);
    }
    std::fs::write(&spec, "kind = \"adacos\"\ndynamic = true\n").unwrap();
    for bad in [-1.0f32, 0.0, 1e30] {
        let input = head_input(&dir, &[0, 1], Some(bad));
        let out = visage(&[
            "head",
            "--spec",
            p(&spec),
            "--input",
            p(&input),
            "--output",
            p(&out_path),
            "--backend",
            "ndarray",
        ]);
        fails_with(&out, &["`scale`"]);
    }
    // NaN in the embeddings: named, unless allowed
    std::fs::write(&spec, "kind = \"softmax\"\n").unwrap();
    let nan_in = dir.join("nan.safetensors");
    write_st(
        &nan_in,
        &[
            (
                "embeddings",
                Dtype::F32,
                vec![2, 2],
                f32s(&[0.5, f32::NAN, 0.1, 0.2]),
            ),
            ("labels", Dtype::I64, vec![2], i64s(&[0, 1])),
            (
                "weight",
                Dtype::F32,
                vec![3, 2],
                f32s(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.5]),
            ),
        ],
    );
    let args = [
        "head",
        "--spec",
        p(&spec),
        "--input",
        p(&nan_in),
        "--output",
        p(&out_path),
        "--backend",
        "ndarray",
    ];
    fails_with(
        &visage(&args),
        &["`embeddings`", "flat index 1", "--allow-non-finite"],
    );
    let mut allowed = args.to_vec();
    allowed.push("--allow-non-finite");
    let out = visage(&allowed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&spec, "kind = \"adacos\"\ndynamic = true\n").unwrap();
    // and a good AdaCos scale still runs
    let input = head_input(&dir, &[0, 1], Some(3.0));
    let out = visage(&[
        "head",
        "--spec",
        p(&spec),
        "--input",
        p(&input),
        "--output",
        p(&out_path),
        "--backend",
        "ndarray",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
fn fifo(path: &Path) -> bool {
    let _ = std::fs::remove_file(path);
    Command::new("mkfifo")
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(unix)]
#[test]
fn named_pipes_are_refused_not_waited_on() {
    let dir = temp_dir("fifo");
    let pipe = dir.join("pipe.safetensors");
    if !fifo(&pipe) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let spec = dir.join("head.toml");
    std::fs::write(&spec, "kind = \"softmax\"\n").unwrap();
    let out_path = dir.join("out.safetensors");
    let out = visage(&[
        "head",
        "--spec",
        p(&spec),
        "--input",
        p(&pipe),
        "--output",
        p(&out_path),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &["not a regular file"]);
    let out = visage(&[
        "head",
        "--spec",
        p(&pipe),
        "--input",
        p(&pipe),
        "--output",
        p(&out_path),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &["not a regular file"]);
    let npipe = dir.join("pipe.npy");
    assert!(fifo(&npipe));
    let report = dir.join("r.json");
    let out = visage(&[
        "identify",
        "--probes",
        p(&npipe),
        "--probe-labels",
        p(&npipe),
        "--distractors",
        p(&npipe),
        "--report",
        p(&report),
    ]);
    fails_with(&out, &["not a regular file"]);
    let wpipe = dir.join("w.pth");
    assert!(fifo(&wpipe));
    let out = visage(&[
        "embed",
        "--backbone",
        "lenet_pp",
        "--weights",
        p(&wpipe),
        "--input",
        p(&dir),
        "--output",
        p(&dir.join("e.npy")),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &["not a regular file"]);
}

// ---- visage identify -----------------------------------------------------------------------

#[test]
fn identify_ranks_are_bounded_before_reading() {
    let dir = temp_dir("ranks");
    let report = dir.join("r.json");
    // the files do not even exist: the flag is checked first
    for ranks in ["0", "1,18446744073709551615", "10001"] {
        let out = visage(&[
            "identify",
            "--probes",
            "nope.npy",
            "--probe-labels",
            "nope.npy",
            "--distractors",
            "nope.npy",
            "--ranks",
            ranks,
            "--report",
            p(&report),
        ]);
        fails_with(&out, &["--ranks", "10000"]);
    }
}

// ---- visage embed / eval -------------------------------------------------------------------

/// LeNets++ weights (1 channel, 2-d embedding) in PyTorch layout, every value `v`.
fn lenet_dict(v: f32) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let model = LeNetPPConfig::new().init::<Flex>(&Default::default());
    expected_state_dict(&model)
        .into_iter()
        .map(|(k, s)| {
            let n = s.iter().product();
            (k, s, vec![v; n])
        })
        .collect()
}

fn write_weights(path: &Path, dict: &[(String, Vec<usize>, Vec<f32>)]) {
    let t: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = dict
        .iter()
        .map(|(k, s, v)| (k.as_str(), Dtype::F32, s.clone(), f32s(v)))
        .collect();
    write_st(path, &t);
}

fn images(dir: &Path, values: &[f32]) -> PathBuf {
    let n = values.len() / (28 * 28);
    let path = dir.join("images.safetensors");
    write_st(
        &path,
        &[("images", Dtype::F32, vec![n, 1, 28, 28], f32s(values))],
    );
    path
}

fn embed(weights: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "embed",
        "--backbone",
        "lenet_pp",
        "--weights",
        p(weights),
        "--input",
        p(input),
        "--output",
        p(output),
        "--backend",
        "ndarray",
    ];
    args.extend_from_slice(extra);
    visage(&args)
}

#[test]
fn embed_refuses_non_finite_weights_images_and_embeddings_unless_allowed() {
    let dir = temp_dir("embed-nan");
    let out_path = dir.join("e.npy");
    let imgs = images(&dir, &vec![0.1; 2 * 28 * 28]);

    // NaN in a weight: named
    let mut dict = lenet_dict(0.01);
    let key = dict[3].0.clone();
    dict[3].2[1] = f32::NAN;
    let w = dir.join("nan.safetensors");
    write_weights(&w, &dict);
    let out = embed(&w, &imgs, &out_path, &[]);
    fails_with(
        &out,
        &[&format!("`{key}`"), "non-finite", "--allow-non-finite"],
    );
    assert!(!out_path.exists());
    // allowed: runs and writes (NaN embeddings included)
    let out = embed(&w, &imgs, &out_path, &["--allow-non-finite"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_path.exists());
    std::fs::remove_file(&out_path).unwrap();

    // finite weights large enough that the embeddings overflow: the row is named
    let big = dir.join("big.safetensors");
    write_weights(&big, &lenet_dict(1e30));
    let out = embed(&big, &imgs, &out_path, &[]);
    fails_with(&out, &["embeddings", "row 0", "nothing written"]);
    assert!(!out_path.exists());

    // an infinite pixel in the images tensor: named
    let good = dir.join("good.safetensors");
    write_weights(&good, &lenet_dict(0.01));
    let mut v = vec![0.1; 2 * 28 * 28];
    v[28 * 28 + 5] = f32::INFINITY;
    let imgs = images(&dir, &v);
    let out = embed(&good, &imgs, &out_path, &[]);
    fails_with(&out, &["`images`", "image 1"]);
    assert!(!out_path.exists());
}

#[test]
fn embed_and_eval_bound_sizes_from_flags() {
    let dir = temp_dir("embed-size");
    let w = dir.join("w.safetensors");
    write_weights(&w, &lenet_dict(0.01));
    let imgs = images(&dir, &vec![0.1; 28 * 28]);
    let out_path = dir.join("e.npy");
    for size in ["100000x100000", "0x28"] {
        let out = embed(&w, &imgs, &out_path, &["--input-size", size]);
        fails_with(&out, &["input_size"]);
    }
    let out = embed(&w, &imgs, &out_path, &["--embedding-dim", "99999999999"]);
    fails_with(&out, &["embedding_dim"]);
    let report = dir.join("r.json");
    let out = visage(&[
        "eval",
        "--backbone",
        "lenet_pp",
        "--weights",
        p(&w),
        "--dataset",
        "synthetic",
        "--report",
        p(&report),
        "--backend",
        "ndarray",
        "--input-size",
        "100000,100000",
    ]);
    fails_with(&out, &["input_size"]);
}

// ---- a truncated .pth ----------------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive of stored entries, as `torch.save` writes it.
fn zip_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, n) = (crc32(data), data.len() as u32);
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend(20u16.to_le_bytes());
            }
            for v in [20u16, 0, 0] {
                h.extend(v.to_le_bytes());
            }
            h.extend(0u32.to_le_bytes());
            h.extend(crc.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                for v in [0u16, 0, 0] {
                    h.extend(v.to_le_bytes());
                }
                h.extend(0u32.to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(data);
        central.extend(header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
        out.extend(v.to_le_bytes());
    }
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// `torch.save(state_dict)` of f32 tensors; storage `i` holds `storages[i]` bytes.
fn torch_save(dict: &[(String, Vec<usize>, Vec<f32>)], cut: Option<&str>) -> Vec<u8> {
    let global = |p: &mut Vec<u8>, m: &str, n: &str| {
        p.push(b'c');
        p.extend(format!("{m}\n{n}\n").as_bytes());
    };
    let string = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: usize| {
        p.push(b'J');
        p.extend((v as i32).to_le_bytes());
    };
    let mut pk = vec![0x80, 2];
    global(&mut pk, "collections", "OrderedDict");
    pk.extend([b')', b'R', b'(']);
    let mut entries = Vec::new();
    for (i, (key, shape, values)) in dict.iter().enumerate() {
        string(&mut pk, key);
        global(&mut pk, "torch._utils", "_rebuild_tensor_v2");
        pk.extend([b'(', b'(']);
        string(&mut pk, "storage");
        global(&mut pk, "torch", "FloatStorage");
        string(&mut pk, &i.to_string());
        string(&mut pk, "cpu");
        int(&mut pk, values.len());
        pk.extend([b't', b'Q']);
        int(&mut pk, 0);
        pk.push(b'(');
        shape.iter().for_each(|&s| int(&mut pk, s));
        pk.push(b't');
        let mut stride = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        pk.push(b'(');
        stride.iter().for_each(|&s| int(&mut pk, s));
        pk.push(b't');
        pk.push(0x89);
        global(&mut pk, "collections", "OrderedDict");
        pk.extend([b')', b'R', b't', b'R']);
        let mut bytes = f32s(values);
        if cut == Some(key.as_str()) {
            bytes.truncate(bytes.len() / 2);
        }
        entries.push((format!("archive/data/{i}"), bytes));
    }
    pk.extend([b'u', b'.']);
    entries.insert(0, ("archive/data.pkl".to_string(), pk));
    zip_stored(&entries)
}

#[test]
fn truncated_pth_is_an_error_naming_the_tensor_in_embed_and_eval() {
    let dir = temp_dir("pth");
    let dict = lenet_dict(0.01);
    let good = dir.join("good.pth");
    std::fs::write(&good, torch_save(&dict, None)).unwrap();
    let imgs = images(&dir, &vec![0.1; 28 * 28]);
    let out_path = dir.join("e.npy");
    let out = embed(&good, &imgs, &out_path, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let victim = dict[2].0.clone();
    let cut = dir.join("cut.pth");
    std::fs::write(&cut, torch_save(&dict, Some(&victim))).unwrap();
    let out_path = dir.join("cut.npy");
    let out = embed(&cut, &imgs, &out_path, &[]);
    fails_with(&out, &[&format!("`{victim}`"), "cut.pth", "truncated"]);
    assert!(!out_path.exists());
    let report = dir.join("r.json");
    let out = visage(&[
        "eval",
        "--backbone",
        "lenet_pp",
        "--weights",
        p(&cut),
        "--dataset",
        "synthetic",
        "--report",
        p(&report),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &[&format!("`{victim}`"), "truncated"]);
    assert!(!report.exists());

    // NaN in a .pth weight, through eval
    let mut nan = dict.clone();
    nan[1].2[0] = f32::NAN;
    let np = dir.join("nan.pth");
    std::fs::write(&np, torch_save(&nan, None)).unwrap();
    let out = visage(&[
        "eval",
        "--backbone",
        "lenet_pp",
        "--weights",
        p(&np),
        "--dataset",
        "synthetic",
        "--report",
        p(&report),
        "--backend",
        "ndarray",
    ]);
    fails_with(&out, &[&format!("`{}`", nan[1].0), "non-finite"]);
}

#[cfg(unix)]
#[test]
fn embed_folder_with_a_symlink_loop_and_a_pipe_ends() {
    let dir = temp_dir("embed-loop");
    let w = dir.join("w.safetensors");
    write_weights(&w, &lenet_dict(0.01));
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(imgs.join("a")).unwrap();
    std::os::unix::fs::symlink(&imgs, imgs.join("a").join("loop")).unwrap();
    // a named pipe with an image extension is skipped, not opened
    assert!(fifo(&imgs.join("a").join("pipe.png")));
    let out_path = dir.join("e.npy");
    let out = embed(&w, &imgs, &out_path, &[]);
    fails_with(&out, &["no .jpg/.jpeg/.png images"]);
}
