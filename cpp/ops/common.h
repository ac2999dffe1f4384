// Argument checks shared by the CPU op wrappers: each failure names the op, the argument
// and the offending value, and surfaces in Python as ValueError or TypeError.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

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

}  // namespace wattwise::ops
