// Shared by the kernels' entry points (torch-free, internal): argument checks that throw
// std::invalid_argument, the grain of a parallel_for over output rows, and the choice between
// an AVX2 kernel and its _ref twin (AVX-512 VNNI kernels are picked explicitly where they
// exist).
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "wattwise/common/cpu.h"

namespace wattwise::detail {

inline void check_dims(const char* fn, int64_t n, int64_t k, int64_t m = 0) {
  if (n < 0 || k < 0 || m < 0) {
    throw std::invalid_argument(std::string(fn) +
                                ": dimensions must be >= 0, got n=" + std::to_string(n) +
                                " k=" + std::to_string(k) + " m=" + std::to_string(m));
  }
}

inline void check_ptr(const char* fn, const char* name, const void* p, int64_t count) {
  if (p == nullptr && count > 0) {
    throw std::invalid_argument(std::string(fn) + ": " + name + " is null");
  }
}

// Output rows per parallel_for chunk: enough work (`target` multiply-adds) that waking a
// thread pays for itself, and at least `min_rows`.
inline int64_t row_grain(int64_t work_per_row, int64_t target = 1 << 16, int64_t min_rows = 8) {
  if (work_per_row <= 0) return int64_t{1} << 30;
  return std::max<int64_t>(min_rows, (target + work_per_row - 1) / work_per_row);
}

inline bool use_avx2() { return active_simd() >= SimdLevel::kAvx2; }
inline bool use_avx512vnni() { return active_simd() >= SimdLevel::kAvx512Vnni; }

}  // namespace wattwise::detail

// The AVX2 kernels exist only in x86-64 builds; elsewhere active_simd() is always scalar.
#ifdef WATTWISE_HAVE_AVX2_KERNELS
#define WATTWISE_PICK(avx2, avx2_call, ref_call) ((avx2) ? (avx2_call) : (ref_call))
#else
#define WATTWISE_PICK(avx2, avx2_call, ref_call) ((void)(avx2), (ref_call))
#endif
