// Argument checks shared by the CPU op wrappers: each failure names the op, the argument
// and the offending value, and surfaces in Python as ValueError or TypeError.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>
#include <vector>

#include "wattwise/common/thread_pool.h"

namespace wattwise::ops {

// Keeps the core's own pool (used when WATTWISE_THREAD_POOL=native, see parallel.cpp) the
// size of torch's intra-op pool, so that torch.set_num_threads() governs wattwise kernels
// whichever pool runs them.
inline void sync_num_threads() {
  const int n = at::get_num_threads();
  if (n >= 1 && n != wattwise::get_num_threads()) wattwise::set_num_threads(n);
}

inline void check_cpu(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": ", arg, " must be a CPU tensor, got device ",
                    t.device());
}

inline void check_dtype(const char* op, const char* arg, const at::Tensor& t, at::ScalarType want) {
  TORCH_CHECK_TYPE(t.scalar_type() == want, op, ": ", arg, " must be ", want, ", got ",
                   t.scalar_type());
}

inline void check_dim(const char* op, const char* arg, const at::Tensor& t, int64_t want) {
  TORCH_CHECK_VALUE(t.dim() == want, op, ": ", arg, " must be ", want, "-D, got shape ", t.sizes());
}

// Checks of a Linear-like op's `input` ([..., k] float32 on the CPU); returns the output's
// shape ([..., n]).
inline std::vector<int64_t> check_linear_input(const char* op, const at::Tensor& input, int64_t k,
                                               int64_t n) {
  check_cpu(op, "input", input);
  check_dtype(op, "input", input, at::kFloat);
  TORCH_CHECK_VALUE(input.dim() >= 1 && input.size(-1) == k, op,
                    ": input's last dimension must be in_features=", k, ", got shape ",
                    input.sizes());
  std::vector<int64_t> out(input.sizes().begin(), input.sizes().end());
  out.back() = n;
  return out;
}

inline void check_linear_bias(const char* op, const std::optional<at::Tensor>& bias, int64_t n) {
  if (!bias.has_value()) return;
  check_cpu(op, "bias", *bias);
  check_dtype(op, "bias", *bias, at::kFloat);
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n, op, ": bias must have shape [", n,
                    "], got ", bias->sizes());
}

// Rows of the [m, k] view of input (k may be 0, so not numel / k).
inline int64_t leading_rows(const at::Tensor& input) {
  int64_t m = 1;
  for (int64_t d = 0; d + 1 < input.dim(); ++d) m *= input.size(d);
  return m;
}

inline const float* optional_data(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<float>() : nullptr;
}

// A Linear-like op's activations after their checks: x, the input made contiguous, seen as
// [m, k]; b, the bias made contiguous (undefined when absent); y, the uninitialized output
// [..., n]. Also brings the core's thread count in line with torch's.
struct LinearOperands {
  at::Tensor x;
  at::Tensor b;
  at::Tensor y;
  int64_t m;
};

inline LinearOperands linear_operands(const char* op, const at::Tensor& input, int64_t k, int64_t n,
                                      const std::optional<at::Tensor>& bias) {
  const std::vector<int64_t> out_shape = check_linear_input(op, input, k, n);
  check_linear_bias(op, bias, n);
  LinearOperands a;
  a.x = input.contiguous();
  a.b = bias.has_value() ? bias->contiguous() : at::Tensor();
  a.y = at::empty(out_shape, a.x.options());
  a.m = leading_rows(a.x);
  sync_num_threads();
  return a;
}

}  // namespace wattwise::ops
