#!/usr/bin/env python3
"""The PyTorch / FAISS side of `cargo xtask bench compare` (crates/visage-cli/benches/compare.rs).

    peers.py info                 # versions, BLAS, threads (JSON on stdout)
    peers.py run --spec JSON      # one row of the table (JSON on stdout)

The spec comes from the Rust bench, which derives it from the same parameters it builds the
visage model from (backbone, input, embedding, head, classes, batch, optimiser, warm-up and
timed steps, threads), so both sides run the same work:

- train rows: the backbone and head below (layer for layer visage's `sphere_net.rs`,
  `lenet_pp.rs`, `iresnet.rs`, `arcface.rs`, `softmax.rs`, with the same initialisation),
  one fixed random batch already in memory, `warmup` untimed then `steps` timed training
  steps (zero_grad, forward, loss read back with `.item()` as visage's trainer does,
  backward, optimiser step); the figure is batch / median step time (images/s).
- head rows: ArcFace forward + backward at N x d against C classes (gradients of the
  embeddings and of the class weights), median time in ms.
- search: FAISS IndexFlatIP over the L2-normalised distractors, top-k of the normalised
  probes, file read (np.load of the `.npy` files visage identify reads) included, seconds.

Nothing but the standard library, torch, numpy and faiss; every figure uses
`torch.set_num_threads(threads)` (and `faiss.omp_set_num_threads`).
"""

import argparse
import json
import math
import os
import re
import statistics
import sys
import time


def info():
    out = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "env": {k: os.environ.get(k) for k in (
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }
    missing = []
    try:
        import torch

        cfg = torch.__config__.show()
        found = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
        blas = found.group(1) if found else None
        mkl = re.search(r"Intel\(R\) oneAPI Math Kernel Library Version [^\n]*", cfg)
        try:
            capability = torch.backends.cpu.get_cpu_capability()
        except Exception:  # older torch
            capability = None
        out["torch"] = {
            "version": torch.__version__,
            "blas": blas,
            "blas_detail": mkl.group(0) if mkl else None,
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": capability,
            "default_threads": torch.get_num_threads(),
            "parallel_info": torch.__config__.parallel_info(),
        }
    except Exception as e:  # noqa: BLE001 - reported, not raised
        missing.append(f"torch: {e}")
    try:
        import numpy as np

        np_blas = None
        try:
            deps = np.show_config(mode="dicts").get("Build Dependencies", {})
            b = deps.get("blas", {})
            np_blas = f"{b.get('name')} {b.get('version', '')}".strip()
        except Exception:
            pass
        out["numpy"] = {"version": np.__version__, "blas": np_blas}
    except Exception as e:  # noqa: BLE001
        missing.append(f"numpy: {e}")
    try:
        import faiss

        opts = None
        try:
            opts = faiss.get_compile_options()
        except Exception:
            pass
        out["faiss"] = {"version": getattr(faiss, "__version__", "?"), "compile_options": opts,
                        "default_threads": faiss.omp_get_max_threads()}
    except Exception as e:  # noqa: BLE001
        missing.append(f"faiss: {e}")
    out["missing"] = missing
    return out


# ---------------------------------------------------------------------------------------
# Models: the PyTorch twins of visage's backbones and heads.


def build_models(spec):
    import torch
    from torch import nn
    import torch.nn.functional as F

    def caffe_xavier_(w, fan_in):
        # visage-backbones init.rs `caffe_xavier`: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)).
        bound = math.sqrt(3.0 / fan_in)
        nn.init.uniform_(w, -bound, bound)

    class SphereConv(nn.Module):
        # sphere_net.rs `SphereConv`: 3x3 conv (pad 1, bias) + per-channel PReLU (0.25).
        def __init__(self, cin, cout, stride, init):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=True)
            if init == "xavier":
                caffe_xavier_(self.conv.weight, cin * 9)
            else:  # residual units: Gaussian std 0.01 (SPHERE_RESIDUAL_INIT_STD)
                nn.init.normal_(self.conv.weight, 0.0, 0.01)
            nn.init.zeros_(self.conv.bias)
            self.prelu = nn.PReLU(cout, init=0.25)

        def forward(self, x):
            return self.prelu(self.conv(x))

    class SphereUnit(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = SphereConv(c, c, 1, "gauss")
            self.conv2 = SphereConv(c, c, 1, "gauss")

        def forward(self, x):
            return x + self.conv2(self.conv1(x))

    sphere_units = {4: [0, 0, 0, 0], 10: [0, 1, 2, 0], 20: [1, 2, 4, 1],
                    36: [2, 4, 8, 2], 64: [3, 8, 16, 3]}

    def conv_out(s, k, stride, pad):
        return (s + 2 * pad - k) // stride + 1

    class SphereNet(nn.Module):
        # sphere_net.rs `SphereNet`: four stages (64, 128, 256, 512), each a stride-2
        # SphereConv then residual units; fc (Xavier, zero bias) to the embedding.
        def __init__(self, depth, emb, hw):
            super().__init__()
            layers = []
            cin = 3
            for cout, n in zip([64, 128, 256, 512], sphere_units[depth]):
                layers.append(SphereConv(cin, cout, 2, "xavier"))
                layers += [SphereUnit(cout) for _ in range(n)]
                cin = cout
            self.body = nn.Sequential(*layers)
            h, w = hw
            for _ in range(4):
                h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
            d_in = 512 * h * w
            self.fc = nn.Linear(d_in, emb)
            caffe_xavier_(self.fc.weight, d_in)
            nn.init.zeros_(self.fc.bias)

        def forward(self, x):
            return self.fc(torch.flatten(self.body(x), 1))

    class ConvPRelu(nn.Module):
        # lenet_pp.rs `ConvPRelu`: 5x5 conv (pad 2, bias, Xavier, zero bias) + PReLU (0.25).
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 5, padding=2, bias=True)
            caffe_xavier_(self.conv.weight, cin * 25)
            nn.init.zeros_(self.conv.bias)
            self.prelu = nn.PReLU(cout, init=0.25)

        def forward(self, x):
            return self.prelu(self.conv(x))

    class LeNetPP(nn.Module):
        # lenet_pp.rs `LeNetPP`: (conv 32, conv 32) pool 2/2, (64, 64) pool 2/2,
        # (128, 128) pool 3/2, fc (Xavier, zero bias) + PReLU on the embedding.
        def __init__(self, emb, cin, hw):
            super().__init__()
            convs = []
            c = cin
            for cout in [32, 64, 128]:
                convs += [ConvPRelu(c, cout), ConvPRelu(cout, cout)]
                c = cout
            self.convs = nn.ModuleList(convs)
            self.pool = nn.MaxPool2d(2, 2)
            self.pool3 = nn.MaxPool2d(3, 2)
            h, w = hw
            h, w = conv_out(h, 2, 2, 0), conv_out(w, 2, 2, 0)
            h, w = conv_out(h, 2, 2, 0), conv_out(w, 2, 2, 0)
            h, w = conv_out(h, 3, 2, 0), conv_out(w, 3, 2, 0)
            d_in = 128 * h * w
            self.fc = nn.Linear(d_in, emb)
            caffe_xavier_(self.fc.weight, d_in)
            nn.init.zeros_(self.fc.bias)
            self.prelu = nn.PReLU(emb, init=0.25)

        def forward(self, x):
            for i in range(3):
                x = self.convs[2 * i + 1](self.convs[2 * i](x))
                x = self.pool(x) if i < 2 else self.pool3(x)
            return self.prelu(self.fc(torch.flatten(x, 1)))

    iresnet_layers = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 14, 3],
                      100: [3, 13, 30, 3], 200: [6, 26, 60, 6]}

    def conv3x3(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)

    class IBasicBlock(nn.Module):
        # iresnet.rs `IBasicBlock` (= arcface_torch iresnet.py): BN - conv3x3 - BN - PReLU -
        # conv3x3(stride) - BN, + identity (conv1x1(stride) + BN when the shape changes).
        def __init__(self, inplanes, planes, stride, downsample):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
            self.conv1 = conv3x3(inplanes, planes)
            self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
            self.prelu = nn.PReLU(planes, init=0.25)
            self.conv2 = conv3x3(planes, planes, stride)
            self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
            self.downsample = (nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5)) if downsample else None)

        def forward(self, x):
            out = self.bn1(x)
            out = self.conv1(out)
            out = self.bn2(out)
            out = self.prelu(out)
            out = self.conv2(out)
            out = self.bn3(out)
            identity = self.downsample(x) if self.downsample is not None else x
            return out + identity

    class IResNet(nn.Module):
        # iresnet.rs `IResNet`: conv3x3(3->64) - BN - PReLU; four stages opened by a stride-2
        # block; BN2d - flatten - dropout - fc - BN1d (weight fixed at 1, frozen).
        # Init as arcface_torch: convs N(0, 0.1), BN weight 1 / bias 0, fc PyTorch default.
        def __init__(self, depth, emb, hw, dropout):
            super().__init__()
            self.conv1 = conv3x3(3, 64)
            self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
            self.prelu = nn.PReLU(64, init=0.25)
            blocks = []
            inplanes = 64
            for planes, n in zip([64, 128, 256, 512], iresnet_layers[depth]):
                blocks.append(IBasicBlock(inplanes, planes, 2, True))
                inplanes = planes
                blocks += [IBasicBlock(planes, planes, 1, False) for _ in range(1, n)]
            self.blocks = nn.Sequential(*blocks)
            self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
            h, w = hw
            for _ in range(4):
                h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
            self.dropout = nn.Dropout(p=dropout, inplace=True)
            self.fc = nn.Linear(512 * h * w, emb)
            self.features = nn.BatchNorm1d(emb, eps=1e-5)
            nn.init.constant_(self.features.weight, 1.0)
            self.features.weight.requires_grad = False
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, 0, 0.1)
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def forward(self, x):
            x = self.prelu(self.bn1(self.conv1(x)))
            x = self.blocks(x)
            x = self.bn2(x)
            x = torch.flatten(x, 1)
            x = self.dropout(x)
            x = self.fc(x)
            return self.features(x)

    class ArcFace(nn.Module):
        # arcface.rs: x and W L2-normalised (F.normalize, eps 1e-12), cos = x W^T, target
        # cos(theta + m) = c cos m - sqrt(1 - clamp(c)^2) sin m with the th/mm fallback
        # (c - m sin m where c <= cos(pi - m)), logits * s, mean cross-entropy.
        # W ~ N(0, 0.01^2) [C, d] (class_weight.rs).
        def __init__(self, classes, dim, scale, margin):
            super().__init__()
            self.weight = nn.Parameter(torch.normal(0.0, 0.01, (classes, dim)))
            self.s, self.m = scale, margin
            self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
            self.th = math.cos(math.pi - margin)
            self.mm = math.sin(margin) * margin

        def forward(self, x, labels):
            cos = F.linear(F.normalize(x), F.normalize(self.weight))
            c = cos.gather(1, labels[:, None])
            cc = c.clamp(-1 + 1e-7, 1 - 1e-7)
            sin = torch.sqrt(1.0 - cc * cc)
            phi = c * self.cos_m - sin * self.sin_m
            phi = torch.where(c > self.th, phi, c - self.mm)
            logits = cos.scatter(1, labels[:, None], phi) * self.s
            return F.cross_entropy(logits, labels)

    class Softmax(nn.Module):
        # softmax.rs: logits = x W^T (no bias), W ~ N(0, 0.01^2), mean cross-entropy.
        def __init__(self, classes, dim):
            super().__init__()
            self.weight = nn.Parameter(torch.normal(0.0, 0.01, (classes, dim)))

        def forward(self, x, labels):
            return F.cross_entropy(F.linear(x, self.weight), labels)

    b = spec.get("backbone")
    family = b["family"] if b else None
    depth = b.get("depth") if b else None
    hw = b["input_size"] if b else None
    if b is None:
        backbone = None
    elif family == "sphere_net":
        backbone = SphereNet(depth, b["embedding_dim"], hw)
    elif family == "lenet_pp":
        backbone = LeNetPP(b["embedding_dim"], b["in_channels"], hw)
    elif family == "iresnet":
        backbone = IResNet(depth, b["embedding_dim"], hw, b.get("dropout", 0.0))
    else:
        raise ValueError(f"no PyTorch twin for backbone {family}")
    h = spec["head"]
    if h["kind"] == "arcface":
        head = ArcFace(h["classes"], h["dim"], h["scale"], h["margin"])
    elif h["kind"] == "softmax":
        head = Softmax(h["classes"], h["dim"])
    else:
        raise ValueError(f"no PyTorch twin for head {h['kind']}")
    return backbone, head


def optimiser(spec, backbone, head):
    import torch

    o = spec["optim"]
    groups = [
        {"params": [p for p in backbone.parameters() if p.requires_grad],
         "weight_decay": o["weight_decay"], "lr": o["lr"]},
        {"params": [p for p in head.parameters() if p.requires_grad],
         "weight_decay": o["head_weight_decay"], "lr": o["head_lr"]},
    ]
    if o["kind"] == "sgd":
        # visage optim.rs: PyTorch semantics, momentum without dampening, coupled decay.
        return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], dampening=0.0,
                               nesterov=o["nesterov"])
    if o["kind"] == "adamw":
        return torch.optim.AdamW(groups, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
    raise ValueError(f"optimiser {o['kind']}")


def param_stats(named):
    """[name, numel, mean, std (population)] of each parameter at initialisation."""
    out = []
    for name, p in named:
        t = p.detach().double()
        out.append([name, t.numel(), t.mean().item(), t.std(unbiased=False).item()])
    return out


def median(xs):
    return statistics.median(xs)


def run_train(spec):
    import torch

    torch.manual_seed(spec.get("seed", 0))
    backbone, head = build_models(spec)
    backbone.train()
    head.train()
    init_stats = param_stats(list(backbone.named_parameters()) + list(head.named_parameters()))
    opt = optimiser(spec, backbone, head)
    n = spec["batch"]
    b = spec["backbone"]
    h, w = b["input_size"]
    images = torch.rand(n, b["in_channels"], h, w) * 2.0 - 1.0
    labels = torch.randint(0, spec["head"]["classes"], (n,))

    def step():
        opt.zero_grad(set_to_none=True)
        emb = backbone(images)
        loss = head(emb, labels)
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"non-finite loss {value}")
        loss.backward()
        opt.step()
        return value

    for _ in range(spec["warmup"]):
        step()
    times = []
    losses = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(spec["steps"]):
        t = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t)
    cpu_timed = time.process_time() - cpu0
    cpu_per_wall = cpu_timed / (time.perf_counter() - wall0)
    med = median(times)
    return {"value": n / med, "unit": "images/s", "step_seconds": times,
            "median_step_s": med, "mean_step_s": sum(times) / len(times),
            "first_loss": losses[0], "last_loss": losses[-1], "cpu_per_wall": cpu_per_wall,
            # CPU seconds per timed step (user + system, all threads; OpenMP's spin-waiting
            # counts too), as the visage side's `cpu_step_s`.
            "cpu_step_s": cpu_timed / len(times),
            "parameters": sum(p.numel() for p in backbone.parameters())
            + sum(p.numel() for p in head.parameters()),
            # BatchNorm running mean and variance (Burn's num_params counts them as well).
            "init_stats": init_stats,
            "running_stats": sum(b.numel() for name, b in backbone.named_buffers()
                                 if name.endswith(("running_mean", "running_var")))}


def run_head(spec):
    import torch

    torch.manual_seed(spec.get("seed", 0))
    n, d, c = spec["n"], spec["dim"], spec["classes"]
    h = {"kind": "arcface", "classes": c, "dim": d, "scale": spec["scale"],
         "margin": spec["margin"]}
    _, head = build_models({"head": h})
    x = torch.randn(n, d, requires_grad=True)
    labels = torch.randint(0, c, (n,))

    def once():
        x.grad = None
        head.weight.grad = None
        loss = head(x, labels)
        loss.backward()
        # Both gradients exist (PyTorch's backward is eager on the CPU).
        assert x.grad is not None and head.weight.grad is not None

    for _ in range(spec["warmup"]):
        once()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(spec["steps"]):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    cpu_per_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    med = median(times)
    return {"value": med * 1e3, "unit": "ms", "times_s": times, "median_s": med,
            "cpu_per_wall": cpu_per_wall}


def run_search(spec):
    import numpy as np
    import faiss

    faiss.omp_set_num_threads(spec["threads"])
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    probes = np.load(spec["probes"])
    distractors = np.load(spec["distractors"])
    t1 = time.perf_counter()
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    distractors = np.ascontiguousarray(distractors, dtype=np.float32)
    faiss.normalize_L2(probes)
    faiss.normalize_L2(distractors)
    index = faiss.IndexFlatIP(distractors.shape[1])
    index.add(distractors)
    t2 = time.perf_counter()
    scores, ids = index.search(probes, spec["k"])
    t3 = time.perf_counter()
    return {"value": t3 - t0, "unit": "s", "read_s": t1 - t0, "normalise_add_s": t2 - t1,
            "cpu_per_wall": (time.process_time() - cpu0) / (t3 - t0),
            "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE",
                                                            "OPENBLAS_L2_SIZE")},
            "search_s": t3 - t2, "probes": int(probes.shape[0]),
            "distractors": int(distractors.shape[0]), "k": spec["k"],
            "top1_mean_score": float(scores[:, 0].mean())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    r = sub.add_parser("run")
    r.add_argument("--spec", required=True, help="the row as JSON")
    args = p.parse_args()
    if args.cmd == "info":
        print(json.dumps(info()))
        return
    spec = json.loads(args.spec)
    threads = spec["threads"]
    kind = spec["kind"]
    if kind in ("train", "head"):
        import torch

        torch.set_num_threads(threads)
    result = {"train": run_train, "head": run_head, "search": run_search}[kind](spec)
    if kind in ("train", "head"):
        import torch

        result["threads"] = torch.get_num_threads()
    else:
        import faiss

        result["threads"] = faiss.omp_get_max_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
