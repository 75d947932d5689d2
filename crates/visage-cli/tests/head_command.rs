//! `visage head` end to end: a hand-computed softmax case, and bad inputs named in errors.

use std::path::Path;
use std::process::Command;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

fn write(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_f32(bytes: &[u8], name: &str) -> Vec<f32> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn visage(dir: &Path, spec: &str) -> std::process::Output {
    std::fs::write(dir.join("head.toml"), spec).unwrap();
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["head", "--spec"])
        .arg(dir.join("head.toml"))
        .arg("--input")
        .arg(dir.join("in.safetensors"))
        .arg("--output")
        .arg(dir.join("out.safetensors"))
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("visage-head-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn softmax_hand_computed() {
    // x = (1, 0), W = I, label 0: logits (1, 0); p0 = e / (e + 1); loss = ln(1 + 1/e);
    // grad_x = (p0 - 1) W0 + p1 W1 = (-p1, p1); grad_W0 = (p0 - 1) x, grad_W1 = p1 x.
    let dir = tempdir("softmax");
    write(
        &dir.join("in.safetensors"),
        &[
            ("embeddings", Dtype::F32, vec![1, 2], f32s(&[1.0, 0.0])),
            ("labels", Dtype::I64, vec![1], 0i64.to_le_bytes().to_vec()),
            (
                "weight",
                Dtype::F32,
                vec![2, 2],
                f32s(&[1.0, 0.0, 0.0, 1.0]),
            ),
        ],
    );
    let out = visage(&dir, "kind = \"softmax\"\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join("out.safetensors")).unwrap();
    let p1 = 1.0 / (1.0 + std::f64::consts::E);
    let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-6;
    assert!(close(
        read_f32(&bytes, "loss")[0],
        (1.0 + (-1.0f64).exp()).ln()
    ));
    assert_eq!(read_f32(&bytes, "logits"), vec![1.0, 0.0]);
    let gx = read_f32(&bytes, "grad_embeddings");
    assert!(close(gx[0], -p1) && close(gx[1], p1), "{gx:?}");
    let gw = read_f32(&bytes, "grad_weight");
    assert!(
        close(gw[0], -p1) && close(gw[1], 0.0) && close(gw[2], p1) && close(gw[3], 0.0),
        "{gw:?}"
    );
}

#[test]
fn bad_inputs_name_the_tensor_or_key() {
    let dir = tempdir("bad");
    let x = (
        "embeddings",
        Dtype::F32,
        vec![2, 2],
        f32s(&[1.0, 0.0, 0.0, 1.0]),
    );
    let labels = (
        "labels",
        Dtype::I64,
        vec![2],
        [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    // Missing weight.
    write(&dir.join("in.safetensors"), &[x.clone(), labels.clone()]);
    let out = visage(&dir, "kind = \"arcface\"\n");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("`weight` is missing"),
        "{err}"
    );
    // Labels as f32.
    write(
        &dir.join("in.safetensors"),
        &[
            x.clone(),
            ("labels", Dtype::F32, vec![2], f32s(&[0.0, 1.0])),
        ],
    );
    let err = String::from_utf8_lossy(&visage(&dir, "kind = \"triplet\"\n").stderr).to_string();
    assert!(err.contains("`labels`") && err.contains("dtype"), "{err}");
    // Weight of the wrong width.
    write(
        &dir.join("in.safetensors"),
        &[
            x.clone(),
            labels.clone(),
            ("weight", Dtype::F32, vec![2, 3], f32s(&[0.0; 6])),
        ],
    );
    let err = String::from_utf8_lossy(&visage(&dir, "kind = \"cosface\"\n").stderr).to_string();
    assert!(err.contains("`weight`") && err.contains("shape"), "{err}");
    // Unknown key and out-of-range label.
    write(
        &dir.join("in.safetensors"),
        &[
            x,
            labels,
            ("weight", Dtype::F32, vec![1, 2], f32s(&[1.0, 0.0])),
        ],
    );
    let err = String::from_utf8_lossy(&visage(&dir, "kind = \"cosface\"\nmargn = 0.1\n").stderr)
        .to_string();
    assert!(err.contains("margn"), "{err}");
    let err = String::from_utf8_lossy(&visage(&dir, "kind = \"cosface\"\n").stderr).to_string();
    assert!(err.contains("labels[1] = 1"), "{err}");
}
