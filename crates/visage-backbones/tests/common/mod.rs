//! Test helpers independent of the code under test: InsightFace state-dict key lists written
//! from `iresnet.py` / `mobilefacenet.py`, a deterministic generator of plausible weights, a
//! safetensors writer, and plain-loop f64 reference forwards (PyTorch semantics, eval mode).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

/// A state dict in PyTorch layout: key -> (shape, values).
pub type Dict = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// xorshift64* in [0, 1).
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f32 {
        (lo + (hi - lo) * self.next()) as f32
    }
}

// ---- InsightFace key lists (name, PyTorch shape), from the Python module definitions ----

fn push_bn(keys: &mut Vec<(String, Vec<usize>)>, prefix: &str, c: usize) {
    for p in ["weight", "bias", "running_mean", "running_var"] {
        keys.push((format!("{prefix}.{p}"), vec![c]));
    }
}

/// Keys of `iresnet.py`'s `IResNet(IBasicBlock, layers)` (without `num_batches_tracked`), for
/// a final feature map of `fc_hw` (7x7 at 112x112).
pub fn iresnet_keys(
    layers: [usize; 4],
    fc_hw: [usize; 2],
    emb: usize,
) -> Vec<(String, Vec<usize>)> {
    let mut k = Vec::new();
    k.push(("conv1.weight".into(), vec![64, 3, 3, 3]));
    push_bn(&mut k, "bn1", 64);
    k.push(("prelu.weight".into(), vec![64]));
    let mut inplanes = 64;
    for (s, (planes, n)) in [64, 128, 256, 512].into_iter().zip(layers).enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{}", s + 1, b);
            let cin = if b == 0 { inplanes } else { planes };
            push_bn(&mut k, &format!("{p}.bn1"), cin);
            k.push((format!("{p}.conv1.weight"), vec![planes, cin, 3, 3]));
            push_bn(&mut k, &format!("{p}.bn2"), planes);
            k.push((format!("{p}.prelu.weight"), vec![planes]));
            k.push((format!("{p}.conv2.weight"), vec![planes, planes, 3, 3]));
            push_bn(&mut k, &format!("{p}.bn3"), planes);
            if b == 0 {
                k.push((format!("{p}.downsample.0.weight"), vec![planes, cin, 1, 1]));
                push_bn(&mut k, &format!("{p}.downsample.1"), planes);
            }
        }
        inplanes = planes;
    }
    push_bn(&mut k, "bn2", 512);
    k.push(("fc.weight".into(), vec![emb, 512 * fc_hw[0] * fc_hw[1]]));
    k.push(("fc.bias".into(), vec![emb]));
    push_bn(&mut k, "features", emb);
    k
}

fn conv_block(
    k: &mut Vec<(String, Vec<usize>)>,
    p: &str,
    cin: usize,
    cout: usize,
    ks: usize,
    g: usize,
) {
    k.push((format!("{p}.layers.0.weight"), vec![cout, cin / g, ks, ks]));
    push_bn(k, &format!("{p}.layers.1"), cout);
    k.push((format!("{p}.layers.2.weight"), vec![cout]));
}

fn linear_block(
    k: &mut Vec<(String, Vec<usize>)>,
    p: &str,
    cin: usize,
    cout: usize,
    ks: usize,
    g: usize,
) {
    k.push((format!("{p}.layers.0.weight"), vec![cout, cin / g, ks, ks]));
    push_bn(k, &format!("{p}.layers.1"), cout);
}

fn depth_wise(k: &mut Vec<(String, Vec<usize>)>, p: &str, cin: usize, cout: usize, g: usize) {
    conv_block(k, &format!("{p}.layers.0"), cin, g, 1, 1);
    conv_block(k, &format!("{p}.layers.1"), g, g, 3, g);
    linear_block(k, &format!("{p}.layers.2"), g, cout, 1, 1);
}

/// Keys of `mobilefacenet.py`'s `MobileFaceNet(num_features, blocks, scale)`.
pub fn mbf_keys(blocks: [usize; 4], scale: usize, emb: usize) -> Vec<(String, Vec<usize>)> {
    let (c1, c2) = (64 * scale, 128 * scale);
    let mut k = Vec::new();
    conv_block(&mut k, "layers.0", 3, c1, 3, 1);
    if blocks[0] == 1 {
        conv_block(&mut k, "layers.1", c1, c1, 3, 64);
    } else {
        for i in 0..blocks[0] {
            depth_wise(&mut k, &format!("layers.1.layers.{i}"), c1, c1, 128);
        }
    }
    depth_wise(&mut k, "layers.2", c1, c1, 128);
    for i in 0..blocks[1] {
        depth_wise(&mut k, &format!("layers.3.layers.{i}"), c1, c1, 128);
    }
    depth_wise(&mut k, "layers.4", c1, c2, 256);
    for i in 0..blocks[2] {
        depth_wise(&mut k, &format!("layers.5.layers.{i}"), c2, c2, 256);
    }
    depth_wise(&mut k, "layers.6", c2, c2, 512);
    for i in 0..blocks[3] {
        depth_wise(&mut k, &format!("layers.7.layers.{i}"), c2, c2, 256);
    }
    conv_block(&mut k, "conv_sep", c2, 512, 1, 1);
    linear_block(&mut k, "features.layers.0", 512, 512, 7, 512);
    k.push(("features.layers.2.weight".into(), vec![emb, 512]));
    push_bn(&mut k, "features.layers.3", emb);
    k
}

/// Plausible random values for each key: conv/linear weights U(+-sqrt(3 / fan_in)) (unit
/// variance through a layer), BN weight U(0.5, 1.5), bias and running mean U(-0.2, 0.2),
/// running var U(0.5, 1.5), PReLU U(0, 0.5).
pub fn random_dict(keys: &[(String, Vec<usize>)], seed: u64) -> Dict {
    let mut rng = Rng::new(seed);
    let mut d = Dict::new();
    for (key, shape) in keys {
        let n: usize = shape.iter().product();
        let is_prelu = key.ends_with("prelu.weight")
            || (key.ends_with(".layers.2.weight") && shape.len() == 1);
        let vals: Vec<f32> = (0..n)
            .map(|_| {
                if shape.len() >= 2 {
                    let fan_in: usize = shape[1..].iter().product();
                    let a = (3.0 / fan_in as f64).sqrt();
                    rng.uniform(-a, a)
                } else if is_prelu {
                    rng.uniform(0.0, 0.5)
                } else if key.ends_with("running_var") || key.ends_with("weight") {
                    rng.uniform(0.5, 1.5)
                } else {
                    rng.uniform(-0.2, 0.2)
                }
            })
            .collect();
        d.insert(key.clone(), (shape.clone(), vals));
    }
    d
}

/// Writes `dict` as a safetensors file (f32), plus optional extra raw entries.
pub fn write_safetensors(path: &Path, dict: &Dict, extra_i64: &[(&str, Vec<usize>, Vec<i64>)]) {
    use safetensors::tensor::{Dtype, TensorView};
    let mut bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = dict
        .iter()
        .map(|(k, (s, v))| {
            (
                k.clone(),
                Dtype::F32,
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    for (k, s, v) in extra_i64 {
        bytes.push((
            k.to_string(),
            Dtype::I64,
            s.clone(),
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    }
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(k, dt, s, b)| (k.clone(), TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    safetensors::tensor::serialize_to_file(views, &None, path).unwrap();
}

// ---- f64 reference ops on one image, [C, H, W] row-major (PyTorch semantics) ----

#[derive(Clone, Debug)]
pub struct Map {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub v: Vec<f64>,
}

fn get<'a>(d: &'a Dict, key: &str) -> &'a (Vec<usize>, Vec<f32>) {
    d.get(key)
        .unwrap_or_else(|| panic!("reference: no key {key}"))
}

/// nn.Conv2d without bias: weight [O, C/groups, K, K], zero padding.
pub fn conv(d: &Dict, key: &str, x: &Map, stride: usize, pad: usize, groups: usize) -> Map {
    let (shape, w) = get(d, key);
    let (o, cg, k) = (shape[0], shape[1], shape[2]);
    assert_eq!(cg * groups, x.c, "{key}");
    let oh = (x.h + 2 * pad - k) / stride + 1;
    let ow = (x.w + 2 * pad - k) / stride + 1;
    let og = o / groups;
    let mut out = vec![0f64; o * oh * ow];
    for oc in 0..o {
        let g = oc / og;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0f64;
                for ic in 0..cg {
                    let c = g * cg + ic;
                    for ky in 0..k {
                        let iy = (oy * stride + ky) as isize - pad as isize;
                        if iy < 0 || iy >= x.h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * stride + kx) as isize - pad as isize;
                            if ix < 0 || ix >= x.w as isize {
                                continue;
                            }
                            let xv = x.v[(c * x.h + iy as usize) * x.w + ix as usize];
                            let wv = w[((oc * cg + ic) * k + ky) * k + kx] as f64;
                            acc += xv * wv;
                        }
                    }
                }
                out[(oc * oh + oy) * ow + ox] = acc;
            }
        }
    }
    Map {
        c: o,
        h: oh,
        w: ow,
        v: out,
    }
}

/// Eval-mode batch norm: (x - running_mean) / sqrt(running_var + eps) * weight + bias.
pub fn bn(d: &Dict, prefix: &str, x: &Map, eps: f64) -> Map {
    let m = &get(d, &format!("{prefix}.running_mean")).1;
    let var = &get(d, &format!("{prefix}.running_var")).1;
    let g = &get(d, &format!("{prefix}.weight")).1;
    let b = &get(d, &format!("{prefix}.bias")).1;
    let hw = x.h * x.w;
    let v =
        x.v.iter()
            .enumerate()
            .map(|(i, &xv)| {
                let c = i / hw;
                (xv - m[c] as f64) / (var[c] as f64 + eps).sqrt() * g[c] as f64 + b[c] as f64
            })
            .collect();
    Map { v, ..x.clone() }
}

/// nn.PReLU(C): max(0, x) + a_c min(0, x).
pub fn prelu(d: &Dict, key: &str, x: &Map) -> Map {
    let a = &get(d, key).1;
    let hw = x.h * x.w;
    let v =
        x.v.iter()
            .enumerate()
            .map(|(i, &xv)| {
                let c = if a.len() == 1 { 0 } else { i / hw };
                if xv >= 0.0 {
                    xv
                } else {
                    a[c] as f64 * xv
                }
            })
            .collect();
    Map { v, ..x.clone() }
}

pub fn add(a: &Map, b: &Map) -> Map {
    assert_eq!((a.c, a.h, a.w), (b.c, b.h, b.w));
    Map {
        v: a.v.iter().zip(&b.v).map(|(x, y)| x + y).collect(),
        ..a.clone()
    }
}

/// nn.Linear: y = W x (+ b), W [out, in].
pub fn linear(d: &Dict, prefix: &str, x: &[f64], bias: bool) -> Vec<f64> {
    let (shape, w) = get(d, &format!("{prefix}.weight"));
    let (o, i) = (shape[0], shape[1]);
    assert_eq!(i, x.len());
    (0..o)
        .map(|r| {
            let mut acc: f64 = (0..i).map(|c| w[r * i + c] as f64 * x[c]).sum();
            if bias {
                acc += get(d, &format!("{prefix}.bias")).1[r] as f64;
            }
            acc
        })
        .collect()
}

/// BatchNorm1d in eval mode on a vector.
pub fn bn1d(d: &Dict, prefix: &str, x: &[f64], eps: f64) -> Vec<f64> {
    let m = Map {
        c: x.len(),
        h: 1,
        w: 1,
        v: x.to_vec(),
    };
    bn(d, prefix, &m, eps).v
}

/// `iresnet.py` IResNet.forward in eval mode.
pub fn iresnet_forward(d: &Dict, layers: [usize; 4], x: &Map) -> Vec<f64> {
    let eps = 1e-5;
    let mut x = conv(d, "conv1.weight", x, 1, 1, 1);
    x = bn(d, "bn1", &x, eps);
    x = prelu(d, "prelu.weight", &x);
    for (s, n) in layers.into_iter().enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{}", s + 1, b);
            let stride = if b == 0 { 2 } else { 1 };
            let mut out = bn(d, &format!("{p}.bn1"), &x, eps);
            out = conv(d, &format!("{p}.conv1.weight"), &out, 1, 1, 1);
            out = bn(d, &format!("{p}.bn2"), &out, eps);
            out = prelu(d, &format!("{p}.prelu.weight"), &out);
            out = conv(d, &format!("{p}.conv2.weight"), &out, stride, 1, 1);
            out = bn(d, &format!("{p}.bn3"), &out, eps);
            let identity = if b == 0 {
                let id = conv(d, &format!("{p}.downsample.0.weight"), &x, stride, 0, 1);
                bn(d, &format!("{p}.downsample.1"), &id, eps)
            } else {
                x.clone()
            };
            x = add(&out, &identity);
        }
    }
    x = bn(d, "bn2", &x, eps);
    let flat = x.v.clone(); // torch.flatten(x, 1): C-major
    let y = linear(d, "fc", &flat, true);
    bn1d(d, "features", &y, eps)
}

fn conv_block_fwd(d: &Dict, p: &str, x: &Map, stride: usize, pad: usize, groups: usize) -> Map {
    let y = conv(d, &format!("{p}.layers.0.weight"), x, stride, pad, groups);
    let y = bn(d, &format!("{p}.layers.1"), &y, 1e-5);
    prelu(d, &format!("{p}.layers.2.weight"), &y)
}

fn linear_block_fwd(d: &Dict, p: &str, x: &Map, groups: usize) -> Map {
    let y = conv(d, &format!("{p}.layers.0.weight"), x, 1, 0, groups);
    bn(d, &format!("{p}.layers.1"), &y, 1e-5)
}

fn depth_wise_fwd(d: &Dict, p: &str, x: &Map, stride: usize, residual: bool) -> Map {
    let g = get(d, &format!("{p}.layers.1.layers.0.weight")).0[0];
    let y = conv_block_fwd(d, &format!("{p}.layers.0"), x, 1, 0, 1);
    let y = conv_block_fwd(d, &format!("{p}.layers.1"), &y, stride, 1, g);
    let y = linear_block_fwd(d, &format!("{p}.layers.2"), &y, 1);
    if residual {
        add(x, &y)
    } else {
        y
    }
}

/// `mobilefacenet.py` MobileFaceNet.forward in eval mode.
pub fn mbf_forward(d: &Dict, blocks: [usize; 4], x: &Map) -> Vec<f64> {
    let mut x = conv_block_fwd(d, "layers.0", x, 2, 1, 1);
    if blocks[0] == 1 {
        x = conv_block_fwd(d, "layers.1", &x, 1, 1, 64);
    } else {
        for i in 0..blocks[0] {
            x = depth_wise_fwd(d, &format!("layers.1.layers.{i}"), &x, 1, true);
        }
    }
    for (down, stage, n) in [
        ("layers.2", "layers.3", blocks[1]),
        ("layers.4", "layers.5", blocks[2]),
        ("layers.6", "layers.7", blocks[3]),
    ] {
        x = depth_wise_fwd(d, down, &x, 2, false);
        for i in 0..n {
            x = depth_wise_fwd(d, &format!("{stage}.layers.{i}"), &x, 1, true);
        }
    }
    x = conv_block_fwd(d, "conv_sep", &x, 1, 0, 1);
    x = linear_block_fwd(d, "features.layers.0", &x, 512);
    let y = linear(d, "features.layers.2", &x.v, false);
    bn1d(d, "features.layers.3", &y, 1e-5)
}

/// A random image in [-1, 1].
pub fn random_image(c: usize, h: usize, w: usize, seed: u64) -> Map {
    let mut rng = Rng::new(seed);
    Map {
        c,
        h,
        w,
        v: (0..c * h * w)
            .map(|_| rng.uniform(-1.0, 1.0) as f64)
            .collect(),
    }
}

// ---- a minimal `torch.save` writer (zip format of PyTorch >= 1.6, stored entries) ----

pub fn crc32(data: &[u8]) -> u32 {
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

pub fn zip_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let n = data.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes()); // version made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(0u32.to_le_bytes()); // time, date
            h.extend(crc.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend(0u16.to_le_bytes()); // comment
                h.extend(0u16.to_le_bytes()); // disk
                h.extend(0u16.to_le_bytes()); // internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
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
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn pk_global(p: &mut Vec<u8>, module: &str, name: &str) {
    p.push(b'c');
    p.extend(format!("{module}\n{name}\n").as_bytes());
}

fn pk_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

fn pk_int(p: &mut Vec<u8>, v: i32) {
    p.push(b'J');
    p.extend(v.to_le_bytes());
}

fn pk_int_tuple(p: &mut Vec<u8>, v: &[usize]) {
    p.push(b'(');
    for &x in v {
        pk_int(p, x as i32);
    }
    p.push(b't');
}

/// One tensor for [`torch_save_bytes`]: key, shape, storage class (`FloatStorage`, ...),
/// the storage's raw little-endian bytes, and the element count the pickle declares.
pub struct TorchItem {
    pub key: String,
    pub shape: Vec<usize>,
    pub storage_type: &'static str,
    pub bytes: Vec<u8>,
    pub declared_numel: usize,
}

/// The items of a state dict of f32 tensors plus int64 extras, each in its own storage.
pub fn torch_items(dict: &Dict, extra_i64: &[(&str, Vec<usize>, Vec<i64>)]) -> Vec<TorchItem> {
    let mut items: Vec<TorchItem> = dict
        .iter()
        .map(|(k, (s, v))| TorchItem {
            key: k.clone(),
            shape: s.clone(),
            storage_type: "FloatStorage",
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            declared_numel: s.iter().product(),
        })
        .collect();
    for (k, s, v) in extra_i64 {
        items.push(TorchItem {
            key: k.to_string(),
            shape: s.clone(),
            storage_type: "LongStorage",
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            declared_numel: s.iter().product(),
        });
    }
    items
}

/// The protocol-2 pickle of an `OrderedDict` of `torch._utils._rebuild_tensor_v2` calls, as
/// `torch.save(model.state_dict())` writes it; storage `i` is item `i`.
fn state_dict_pickle(items: &[TorchItem]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    pk_global(&mut p, "collections", "OrderedDict");
    p.push(b')');
    p.push(b'R');
    p.push(b'(');
    for (id, item) in items.iter().enumerate() {
        pk_str(&mut p, &item.key);
        pk_global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.push(b'(');
        p.push(b'(');
        pk_str(&mut p, "storage");
        pk_global(&mut p, "torch", item.storage_type);
        pk_str(&mut p, &id.to_string());
        pk_str(&mut p, "cpu");
        pk_int(&mut p, item.declared_numel as i32);
        p.push(b't');
        p.push(b'Q'); // BINPERSID
        pk_int(&mut p, 0); // storage offset
        pk_int_tuple(&mut p, &item.shape);
        let shape = &item.shape;
        let mut stride = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1];
        }
        pk_int_tuple(&mut p, &stride);
        p.push(0x89); // NEWFALSE: requires_grad
        pk_global(&mut p, "collections", "OrderedDict");
        p.push(b')');
        p.push(b'R');
        p.push(b't');
        p.push(b'R');
    }
    p.push(b'u'); // SETITEMS
    p.push(b'.');
    p
}

/// A `torch.save` file of `items`: the zip format of PyTorch >= 1.6 (`legacy = false`:
/// `archive/data.pkl`, one stored entry per storage under `archive/data/<i>`) or the legacy
/// stream of PyTorch 0.4 - 1.5 (magic, protocol, sys-info and object pickles, the list of
/// storage keys, then per storage an 8-byte element count and the bytes).
pub fn torch_save_bytes(items: &[TorchItem], legacy: bool) -> Vec<u8> {
    let p = state_dict_pickle(items);
    if legacy {
        let mut out = vec![0x80, 2, 0x8a, 0x0a];
        out.extend([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
        out.push(b'.');
        out.extend([0x80, 2, b'M', 0xe9, 0x03, b'.']); // protocol version 1001
        out.extend([0x80, 2, b'}', b'.']); // sys_info (an empty dict is enough here)
        out.extend(&p);
        let mut keys = vec![0x80, 2, b']', b'('];
        for id in 0..items.len() {
            pk_str(&mut keys, &id.to_string());
        }
        keys.push(b'e');
        keys.push(b'.');
        out.extend(keys);
        for item in items {
            out.extend((item.declared_numel as u64).to_le_bytes());
            out.extend(&item.bytes);
        }
        return out;
    }
    let mut entries = vec![("archive/data.pkl".to_string(), p)];
    entries.push(("archive/byteorder".to_string(), b"little".to_vec()));
    for (i, item) in items.iter().enumerate() {
        entries.push((format!("archive/data/{i}"), item.bytes.clone()));
    }
    entries.push(("archive/version".to_string(), b"3\n".to_vec()));
    zip_stored(&entries)
}

/// Writes a state dict the way `torch.save(model.state_dict(), path)` does (zip format).
/// `extra_i64` adds int64 tensors (`num_batches_tracked`).
pub fn write_torch_save(path: &Path, dict: &Dict, extra_i64: &[(&str, Vec<usize>, Vec<i64>)]) {
    std::fs::write(path, torch_save_bytes(&torch_items(dict, extra_i64), false)).unwrap();
}
