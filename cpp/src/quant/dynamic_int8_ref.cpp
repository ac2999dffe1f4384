// Scalar reference kernels for int8 x int8 Linear and half-precision weights: the
// definition the AVX2 kernels are tested against, and the path on CPUs without AVX2.
#include <algorithm>
#include <cmath>

#include "half_formats.h"
#include "wattwise/quant/dynamic_int8.h"

namespace wattwise::quant::kernels {

void int8_gemm_ref(const Int8Gemm& p, int64_t n_begin, int64_t n_end) {
  for (int64_t i = 0; i < p.m; ++i) {
    const int8_t* x = p.xq + i * p.k;
    for (int64_t j = n_begin; j < n_end; ++j) {
      const int8_t* w = p.q + j * p.k;
      int32_t acc = 0;
      for (int64_t t = 0; t < p.k; ++t) acc += static_cast<int32_t>(x[t]) * w[t];
      if (p.xzp != nullptr) acc -= p.xzp[i] * p.wsum[j];
      p.y[i * p.n + j] = static_cast<float>(acc) * (p.xscales[i] * p.wscales[j]) +
                         (p.bias != nullptr ? p.bias[j] : 0.f);
    }
  }
}

void quantize_affine_ref(const float* x, int64_t k, int64_t m_begin, int64_t m_end, float inv_scale,
                         int32_t zero_point, int32_t quant_min, int32_t quant_max, int32_t shift,
                         int8_t* xq) {
  const float lo = static_cast<float>(quant_min), hi = static_cast<float>(quant_max);
  for (int64_t i = m_begin * k; i < m_end * k; ++i) {
    // NaN fails the comparison and goes to quant_min instead of reaching the cast.
    float v = std::nearbyint(x[i] * inv_scale) + static_cast<float>(zero_point);
    if (!(v >= lo)) v = lo;
    v = std::min(hi, v);
    xq[i] = static_cast<int8_t>(static_cast<int32_t>(v) - shift);
  }
}

void half_quantize_ref(const float* w, int64_t k, HalfFormat format, int64_t n_begin, int64_t n_end,
                       uint16_t* out) {
  for (int64_t i = n_begin * k; i < n_end * k; ++i) {
    out[i] = format == HalfFormat::kFloat16 ? float_to_half(w[i]) : float_to_bf16(w[i]);
  }
}

void half_linear_ref(const HalfLinear& p, int64_t n_begin, int64_t n_end) {
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.k;
    for (int64_t j = n_begin; j < n_end; ++j) {
      const uint16_t* w = p.w + j * p.k;
      float acc = 0.f;
      for (int64_t t = 0; t < p.k; ++t) acc += x[t] * half_value(w[t], p.format);
      p.y[i * p.n + j] = acc + (p.bias != nullptr ? p.bias[j] : 0.f);
    }
  }
}

}  // namespace wattwise::quant::kernels
