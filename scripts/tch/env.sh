# Source this before building or running `visage` with the `tch` feature (Burn's LibTorch
# backend) against the libtorch inside a `torch` Python wheel:
#
#   . scripts/tch/env.sh [PYTHON]     # PYTHON: one with torch, default $VISAGE_BENCH_PYTHON,
#                                     # else /var/cache/visage-bench-venv/bin/python, else python3
#   cargo xtask bench compare --backends tch --quick
#
# Sets LIBTORCH_USE_PYTORCH (torch-sys asks that Python for libtorch's headers, libraries and
# C++ ABI), LIBTORCH_BYPASS_VERSION_CHECK (tch 0.22 is generated for libtorch 2.9), CXX (the
# wrapper scripts/tch/cxx: C++20 and the shims that libtorch >= 2.10 needs), puts the Python's
# bin/ first on PATH (torch-sys runs `python`), and adds torch/lib to LD_LIBRARY_PATH (the
# binary needs libtorch at run time).
_visage_tch_py="${1:-${VISAGE_BENCH_PYTHON:-}}"
if [ -z "$_visage_tch_py" ]; then
    if [ -x /var/cache/visage-bench-venv/bin/python ]; then
        _visage_tch_py=/var/cache/visage-bench-venv/bin/python
    else
        _visage_tch_py=$(command -v python3)
    fi
fi
_visage_tch_lib=$("$_visage_tch_py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
    echo "scripts/tch/env.sh: $_visage_tch_py cannot import torch" >&2
    return 1 2>/dev/null || exit 1
}
_visage_tch_here=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
export PATH="$(dirname "$_visage_tch_py"):$PATH"
export VIRTUAL_ENV="${VIRTUAL_ENV:-$(cd "$(dirname "$_visage_tch_py")/.." && pwd)}"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=1
export CXX="$_visage_tch_here/cxx"
export LD_LIBRARY_PATH="$_visage_tch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "scripts/tch/env.sh: libtorch of $_visage_tch_py ($_visage_tch_lib)" >&2
unset _visage_tch_py _visage_tch_lib _visage_tch_here
