// Forced into tch 0.22's generated C wrappers (torch-sys libtch/torch_api_generated.cpp) by
// scripts/tch/cxx when building against libtorch 2.15 (the `torch` wheel).
//
// tch 0.22 wraps the ATen API of libtorch 2.9. Six of its wrappers name functions that later
// libtorch removed: the named-tensor `align_as` / `align_tensors` and the long-deprecated
// `cholesky` / `qr` (replaced by `linalg_cholesky` / `linalg_qr`). burn-tch calls none of
// them. Here they are declared so that the file compiles; each raises an error if ever
// called, which tch turns into a Rust `TchError`.
#pragma once

#include <stdexcept>
#include <tuple>
#include <vector>

#include <torch/torch.h>

namespace visage_tch_compat {
[[noreturn]] inline void removed(const char *name) {
    throw std::runtime_error(std::string(name) +
                             ": not in this libtorch (removed after 2.9; visage scripts/tch/compat.h)");
}
} // namespace visage_tch_compat

namespace torch {
inline std::vector<at::Tensor> align_tensors(at::TensorList) {
    visage_tch_compat::removed("align_tensors");
}
inline at::Tensor cholesky(const at::Tensor &, bool) { visage_tch_compat::removed("cholesky"); }
inline at::Tensor &cholesky_out(at::Tensor &, const at::Tensor &, bool) {
    visage_tch_compat::removed("cholesky_out");
}
inline std::tuple<at::Tensor, at::Tensor> qr(const at::Tensor &, bool) {
    visage_tch_compat::removed("qr");
}
inline std::tuple<at::Tensor &, at::Tensor &> qr_out(at::Tensor &, at::Tensor &, const at::Tensor &,
                                                     bool) {
    visage_tch_compat::removed("qr_out");
}
} // namespace torch

// `self->align_as(other)` was a method of at::Tensor; after this point (the libtorch headers
// above are already read) the wrapper's one call site is rewritten to raise instead.
#define align_as(other) alias(); visage_tch_compat::removed("align_as")
