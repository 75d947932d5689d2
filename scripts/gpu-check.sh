#!/usr/bin/env bash
# The GPU check: backend parity (ndarray / flex vs cuda vs wgpu on the NVIDIA Vulkan driver)
# and the head and backbone benchmarks, on a machine with an NVIDIA GPU, in under 10 minutes.
#
#   scripts/gpu-check.sh build   # here, with a Rust toolchain: release `visage` with every
#                                # backend and the two bench binaries, into .gpu-check/bin
#   scripts/gpu-check.sh run     # there (no toolchain needed): runs them, results in $OUT
#                                # (default .gpu-check/out): parity JSONs, logs, summary.txt
#   scripts/gpu-check.sh all     # both, on a GPU machine that has cargo
#
# What runs (each stage under its own time limit, so one slow stage cannot eat the rest):
# 1. parity of configs/synth-arcface.toml, every head kind: ndarray, cuda, wgpu, 5 steps;
# 2. parity of configs/parity-r50-arcface.toml (iresnet50 + ArcFace s 64 m 0.5, batch 128),
#    2 steps: flex, cuda, wgpu. The CPU reference is flex, not ndarray, because burn-ndarray
#    0.21's convolution backward is 50-100x slower than flex's (one r50 step at batch 128
#    would take far longer than the whole budget);
# 3. the heads benchmark (ArcFace / CosFace / AdaCos fwd+bwd at N 128, d 512, C 1k..100k) on
#    flex, cuda and wgpu, with each backend's bare matmul as its baseline;
# 4. the backbones benchmark (mobilefacenet, iresnet18, iresnet50 at batch 128) on cuda and
#    wgpu, each backend's 1024^3 matmul as its baseline;
# 5. a timed training run, `visage train` of configs/gpu-train-r50-arcface.toml (r50 + ArcFace,
#    batch 128, 112x112, 25 steps) on cuda and on wgpu: images/s over steps 6-25 from the run's
#    metrics.jsonl (scripts/train-throughput.awk), beside arcface_torch's published ~764 img/s
#    per V100 (fp16) and ~675 per A100. visage trains in f32 (TF32 matmuls on cuda).
# The stage limits add up to about 13 minutes.
# cuda's f32 matrix products run in TF32 where CubeCL picks a tensor-core kernel (no switch
# in Burn 0.21): the parity tolerances budget for it (crates/visage-cli/src/parity/tolerance.rs).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=.gpu-check/bin
OUT="${OUT:-.gpu-check/out}"

build() {
    set -e
    local target="${CARGO_TARGET_DIR:-target}"
    cargo build --release -p visage-cli --no-default-features --features ndarray,flex,wgpu,cuda
    mkdir -p "$BIN_DIR"
    cp "$target/release/visage" "$BIN_DIR/visage"
    for pair in visage-heads:heads visage-backbones:backbones; do
        local pkg="${pair%%:*}" bench="${pair##*:}"
        cargo bench --no-run -p "$pkg" --bench "$bench" --features wgpu,cuda \
            --message-format=json 2>/dev/null |
            python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["executable"])' | tail -1 | xargs -I{} cp {} "$BIN_DIR/bench-$bench"
    done
    ls -la "$BIN_DIR"
    set +e
}

stage() { # name, seconds, command...
    local name="$1" secs="$2"
    shift 2
    echo "== $name (limit ${secs}s)" | tee -a "$OUT/summary.txt"
    local start=$SECONDS
    timeout "$secs" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
    # The table and the verdict (parity) or the result rows (benches).
    grep -E "vs |parity: |passed|GFLOP|images/s|^(arcface|cosface|adacos|flex|cuda|wgpu|ndarray) " \
        "$OUT/$name.log" | tail -80 >>"$OUT/summary.txt"
}

run_checks() {
    mkdir -p "$OUT"
    : >"$OUT/summary.txt"
    # The Vulkan loader, where the machine lacks it (see the device notes: .gl holds the
    # Debian packages of libvulkan1 and the GL/EGL dispatch libraries).
    if ! ldconfig -p | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$OUT/summary.txt" 2>&1
    local v="$BIN_DIR/visage"
    stage parity-synth-arcface 150 "$v" parity --config configs/synth-arcface.toml \
        --backends ndarray,cuda,wgpu --all-heads --steps 5 --require ndarray,cuda,wgpu \
        --out "$OUT/work-synth" --report "$OUT/parity-synth-arcface.json"
    stage parity-r50-arcface 200 "$v" parity --config configs/parity-r50-arcface.toml \
        --backends flex,cuda,wgpu --steps 2 --require flex,cuda,wgpu \
        --out "$OUT/work-r50" --report "$OUT/parity-r50-arcface.json"
    VISAGE_BENCH_BACKENDS=flex,cuda,wgpu VISAGE_BENCH_REPS=5 \
        stage bench-heads 120 "$BIN_DIR/bench-heads"
    VISAGE_BENCH_BACKENDS=cuda,wgpu VISAGE_BENCH_BATCH=128 VISAGE_BENCH_ITERS=3 \
        stage bench-backbones 120 "$BIN_DIR/bench-backbones"
    for backend in cuda wgpu; do
        stage "train-r50-$backend" 120 "$v" train --backend "$backend" --quiet --overwrite \
            --config configs/gpu-train-r50-arcface.toml --out "$OUT/train-r50-$backend"
        printf '   train r50 + arcface on %s: ' "$backend" | tee -a "$OUT/summary.txt"
        awk -v warm=5 -v batch=128 -f scripts/train-throughput.awk \
            "$OUT/train-r50-$backend/metrics.jsonl" 2>&1 | tee -a "$OUT/summary.txt"
    done
    cat "$OUT/summary.txt"
}

case "${1:-all}" in
    build) build ;;
    run) run_checks ;;
    all) build && run_checks ;;
    *) echo "usage: $0 build|run|all" >&2; exit 2 ;;
esac
