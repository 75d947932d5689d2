#!/usr/bin/env python3
"""Checks that peers.py's PyTorch modules compute what visage's do (not part of CI).

    check_peers.py --visage target/release/visage      # a `visage` built with the flex backend

- backbones: each twin (sphere4, sphere20, LeNets++, IResNet-18), after two training-mode
  forwards that move the batch-norm statistics, is saved under visage's PyTorch key names and
  `visage embed` embeds the same images; the embeddings must agree to f32 rounding;
- ArcFace: the twin's loss and gradients (embeddings and class weights) against
  `visage head` on the same inputs, with one target cosine in the th/mm fallback.
Prints one line per check and exits non-zero on a mismatch.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for key, a in tensors.items():
        b = a.tobytes()
        dtype = {"f": "F32", "i": "I64"}[a.dtype.kind]
        header[key] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])
    out = {}
    for key, m in meta.items():
        if key == "__metadata__":
            continue
        a, b = m["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[m["dtype"]]
        out[key] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtype).reshape(m["shape"])
    return out


def visage_key(b, key):
    """The twin's state-dict key as visage's PyTorch import names it."""
    if b["family"] == "sphere_net":
        units = {4: [0, 0, 0, 0], 10: [0, 1, 2, 0], 20: [1, 2, 4, 1], 36: [2, 4, 8, 2],
                 64: [3, 8, 16, 3]}[b["depth"]]
        m = re.match(r"body\.(\d+)\.(.*)", key)
        if m:
            j, rest = int(m.group(1)), m.group(2)
            for s, n in enumerate(units):
                if j == 0:
                    return f"stages.{s}.down.{rest}"
                if j <= n:
                    return f"stages.{s}.units.{j - 1}.{rest}"
                j -= n + 1
    if b["family"] == "iresnet":
        layers = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 14, 3]}[b["depth"]]
        m = re.match(r"blocks\.(\d+)\.(.*)", key)
        if m:
            j = int(m.group(1))
            for s, n in enumerate(layers):
                if j < n:
                    return f"layer{s + 1}.{j}.{m.group(2)}"
                j -= n
    return key


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visage", required=True, help="the visage binary")
    args = p.parse_args()
    torch.manual_seed(3)
    tmp = tempfile.mkdtemp(prefix="visage-check-peers-")
    failures = 0
    cases = [
        ("sphere4", {"family": "sphere_net", "depth": 4, "embedding_dim": 128,
                     "in_channels": 3, "input_size": [32, 32]}),
        ("sphere20", {"family": "sphere_net", "depth": 20, "embedding_dim": 64,
                      "in_channels": 3, "input_size": [32, 32]}),
        ("lenet_pp", {"family": "lenet_pp", "embedding_dim": 2, "in_channels": 1,
                      "input_size": [28, 28]}),
        ("iresnet18", {"family": "iresnet", "depth": 18, "embedding_dim": 512,
                       "in_channels": 3, "input_size": [112, 112]}),
    ]
    for kind, b in cases:
        bb, _ = peers.build_models({"backbone": b, "head": {"kind": "softmax", "classes": 3,
                                                            "dim": b["embedding_dim"]}})
        h, w = b["input_size"]
        x = torch.rand(4, b["in_channels"], h, w) * 2 - 1
        bb.train()
        with torch.no_grad():
            for _ in range(2):
                bb(torch.rand(8, b["in_channels"], h, w) * 2 - 1)
        bb.eval()
        with torch.no_grad():
            ref = bb(x).numpy()
        weights = os.path.join(tmp, f"{kind}.pth")
        torch.save({visage_key(b, k): v for k, v in bb.state_dict().items()}, weights)
        images = os.path.join(tmp, "images.safetensors")
        write_safetensors(images, {"images": x.numpy().astype("<f4")})
        out = os.path.join(tmp, "out.npy")
        r = subprocess.run([args.visage, "embed", "--backbone", kind, "--weights", weights,
                            "--input", images, "--output", out, "--input-size", f"{h}x{w}",
                            "--embedding-dim", str(b["embedding_dim"])],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{kind}: visage embed failed: {r.stderr.strip()[-600:]}")
            failures += 1
            continue
        got = np.load(out)
        rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
        ok = rel < 1e-4
        failures += not ok
        print(f"{kind}: max |visage - torch| / max |torch| = {rel:.2e} {'ok' if ok else 'MISMATCH'}")

    n, d, c = 16, 32, 50
    for scale, margin in [(64.0, 0.5), (16.0, 0.3)]:
        _, head = peers.build_models({"head": {"kind": "arcface", "classes": c, "dim": d,
                                               "scale": scale, "margin": margin}})
        x = torch.randn(n, d)
        y = torch.randint(0, c, (n,))
        with torch.no_grad():
            x[0] = -head.weight[y[0]] * 100  # target cosine -1: the th/mm fallback
        x.requires_grad_(True)
        loss = head(x, y)
        loss.backward()
        inp = os.path.join(tmp, "head_in.safetensors")
        write_safetensors(inp, {"embeddings": x.detach().numpy().astype("<f4"),
                                "labels": y.numpy().astype("<i8"),
                                "weight": head.weight.detach().numpy().astype("<f4")})
        spec = os.path.join(tmp, "head.toml")
        with open(spec, "w") as f:
            f.write(f'kind = "arcface"\nscale = {scale}\nmargin = {margin}\n')
        out = os.path.join(tmp, "head_out.safetensors")
        r = subprocess.run([args.visage, "head", "--spec", spec, "--input", inp, "--output", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"arcface s {scale} m {margin}: visage head failed: {r.stderr.strip()[-600:]}")
            failures += 1
            continue
        got = read_safetensors(out)
        dl = abs(float(got["loss"].reshape(-1)[0]) - loss.item()) / abs(loss.item())
        dx = float(np.abs(got["grad_embeddings"] - x.grad.numpy()).max()
                   / np.abs(x.grad.numpy()).max())
        dw = float(np.abs(got["grad_weight"] - head.weight.grad.numpy()).max()
                   / np.abs(head.weight.grad.numpy()).max())
        ok = max(dl, dx, dw) < 1e-4
        failures += not ok
        print(f"arcface s {scale} m {margin}: relative differences loss {dl:.1e}, "
              f"grad x {dx:.1e}, grad W {dw:.1e} {'ok' if ok else 'MISMATCH'}")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
