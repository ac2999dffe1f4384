// Entry points for weight-only quantization: argument checks, kernel choice, threading.
#include "wattwise/quant/weight_only.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../common/entry.h"
#include "wattwise/common/thread_pool.h"

namespace wattwise::quant {

using detail::check_dims;
using detail::check_ptr;
using detail::row_grain;
using detail::use_avx2;

void check_int4_group_size(int64_t k, int64_t group_size) {
  if (group_size <= 0 || group_size % kInt4Block != 0) {
    throw std::invalid_argument("group_size must be a positive multiple of 32, got " +
                                std::to_string(group_size));
  }
  if (k % group_size != 0) {
    throw std::invalid_argument("in_features (" + std::to_string(k) +
                                ") must be divisible by group_size (" + std::to_string(group_size) +
                                ")");
  }
}

void int8_quantize(const float* w, int64_t n, int64_t k, int8_t* q, float* scales) {
  check_dims("int8_quantize", n, k);
  check_ptr("int8_quantize", "w", w, n * k);
  check_ptr("int8_quantize", "q", q, n * k);
  check_ptr("int8_quantize", "scales", scales, n);
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int8_quantize_avx2(w, k, b, e, q, scales),
                  kernels::int8_quantize_ref(w, k, b, e, q, scales));
  });
}

void int8_dequantize(const int8_t* q, const float* scales, int64_t n, int64_t k, float* w) {
  check_dims("int8_dequantize", n, k);
  check_ptr("int8_dequantize", "q", q, n * k);
  check_ptr("int8_dequantize", "scales", scales, n);
  check_ptr("int8_dequantize", "w", w, n * k);
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int8_dequantize_avx2(q, scales, k, b, e, w),
                  kernels::int8_dequantize_ref(q, scales, k, b, e, w));
  });
}

void int8_linear(const float* x, int64_t m, int64_t k, const int8_t* q, const float* scales,
                 const float* bias, int64_t n, float* y) {
  check_dims("int8_linear", n, k, m);
  check_ptr("int8_linear", "x", x, m * k);
  check_ptr("int8_linear", "q", q, n * k);
  check_ptr("int8_linear", "scales", scales, n);
  check_ptr("int8_linear", "y", y, m * n);
  const kernels::Int8Linear p{x, m, k, q, scales, bias, n, y};
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k * std::max<int64_t>(m, 1)), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int8_linear_avx2(p, b, e), kernels::int8_linear_ref(p, b, e));
  });
}

void int4_quantize(const float* w, int64_t n, int64_t k, int64_t group_size, uint8_t* packed,
                   uint16_t* scales) {
  check_dims("int4_quantize", n, k);
  check_int4_group_size(k, group_size);
  check_ptr("int4_quantize", "w", w, n * k);
  check_ptr("int4_quantize", "packed", packed, n * k);
  check_ptr("int4_quantize", "scales", scales, n * (k / group_size));
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int4_quantize_avx2(w, k, group_size, b, e, packed, scales),
                  kernels::int4_quantize_ref(w, k, group_size, b, e, packed, scales));
  });
}

void int4_dequantize(const uint8_t* packed, const uint16_t* scales, int64_t n, int64_t k,
                     int64_t group_size, float* w) {
  check_dims("int4_dequantize", n, k);
  check_int4_group_size(k, group_size);
  check_ptr("int4_dequantize", "packed", packed, n * k);
  check_ptr("int4_dequantize", "scales", scales, n * (k / group_size));
  check_ptr("int4_dequantize", "w", w, n * k);
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int4_dequantize_avx2(packed, scales, k, group_size, b, e, w),
                  kernels::int4_dequantize_ref(packed, scales, k, group_size, b, e, w));
  });
}

void int4_linear(const float* x, int64_t m, int64_t k, const uint8_t* packed,
                 const uint16_t* scales, int64_t group_size, const float* bias, int64_t n,
                 float* y) {
  check_dims("int4_linear", n, k, m);
  check_int4_group_size(k, group_size);
  check_ptr("int4_linear", "x", x, m * k);
  check_ptr("int4_linear", "packed", packed, n * k);
  check_ptr("int4_linear", "scales", scales, n * (k / group_size));
  check_ptr("int4_linear", "y", y, m * n);
  const kernels::Int4Linear p{x, m, k, packed, scales, group_size, bias, n, y};
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k * std::max<int64_t>(m, 1)), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int4_linear_avx2(p, b, e), kernels::int4_linear_ref(p, b, e));
  });
}

}  // namespace wattwise::quant
