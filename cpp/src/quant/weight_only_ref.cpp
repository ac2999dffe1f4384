// Scalar reference kernels for weight-only int8/int4: the definition of the formats that the
// AVX2 kernels must reproduce, and the fallback on CPUs without AVX2.
#include <algorithm>
#include <cmath>

#include "wattwise/common/half.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::quant::kernels {
namespace {

// Scale of an int4 group, already rounded through fp16, as both bits and float.
struct Int4Scale {
  uint16_t bits;
  float value;
};

Int4Scale int4_group_scale(const float* w, int64_t len) {
  float amax = 0.f;
  bool negative_extreme = false;
  for (int64_t i = 0; i < len; ++i) {
    const float a = std::fabs(w[i]);
    if (a > amax) {
      amax = a;
      negative_extreme = w[i] < 0.f;
    } else if (a == amax && w[i] < 0.f) {
      negative_extreme = true;
    }
  }
  // v / -8 with v = -amax (negative extreme) or +amax.
  const float d = amax == 0.f ? 0.f : (negative_extreme ? amax / 8.f : -amax / 8.f);
  const uint16_t bits = float_to_half(d);
  return {bits, half_to_float(bits)};
}

}  // namespace

void int8_quantize_ref(const float* w, int64_t k, int64_t n_begin, int64_t n_end, int8_t* q,
                       float* scales) {
  for (int64_t r = n_begin; r < n_end; ++r) {
    const float* row = w + r * k;
    float amax = 0.f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
    const float scale = amax / 127.f;
    const float inv = scale == 0.f ? 0.f : 1.f / scale;
    scales[r] = scale;
    for (int64_t i = 0; i < k; ++i) {
      const float v = std::nearbyint(row[i] * inv);
      q[r * k + i] = static_cast<int8_t>(std::min(127.f, std::max(-127.f, v)));
    }
  }
}

void int8_dequantize_ref(const int8_t* q, const float* scales, int64_t k, int64_t n_begin,
                         int64_t n_end, float* w) {
  for (int64_t r = n_begin; r < n_end; ++r) {
    for (int64_t i = 0; i < k; ++i) w[r * k + i] = scales[r] * static_cast<float>(q[r * k + i]);
  }
}

void int8_linear_ref(const Int8Linear& p, int64_t n_begin, int64_t n_end) {
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.k;
    for (int64_t r = n_begin; r < n_end; ++r) {
      const int8_t* q = p.q + r * p.k;
      float acc = 0.f;
      for (int64_t j = 0; j < p.k; ++j) acc += x[j] * static_cast<float>(q[j]);
      p.y[i * p.n + r] = acc * p.scales[r] + (p.bias != nullptr ? p.bias[r] : 0.f);
    }
  }
}

void int4_quantize_ref(const float* w, int64_t k, int64_t group_size, int64_t n_begin,
                       int64_t n_end, uint8_t* packed, uint16_t* scales) {
  const int64_t groups = k / group_size;
  for (int64_t r = n_begin; r < n_end; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* src = w + r * k + g * group_size;
      const Int4Scale s = int4_group_scale(src, group_size);
      scales[r * groups + g] = s.bits;
      const float inv = s.value == 0.f ? 0.f : 1.f / s.value;
      for (int64_t b = 0; b < group_size; b += kInt4Block) {
        uint8_t* dst = packed + (r * k + g * group_size + b) / 2;
        for (int64_t j = 0; j < kInt4Block / 2; ++j) {
          const float lo = std::min(7.f, std::max(-8.f, std::nearbyint(src[b + j] * inv)));
          const float hi = std::min(7.f, std::max(-8.f, std::nearbyint(src[b + j + 16] * inv)));
          dst[j] =
              static_cast<uint8_t>((static_cast<int>(lo) + 8) | ((static_cast<int>(hi) + 8) << 4));
        }
      }
    }
  }
}

void int4_dequantize_ref(const uint8_t* packed, const uint16_t* scales, int64_t k,
                         int64_t group_size, int64_t n_begin, int64_t n_end, float* w) {
  const int64_t groups = k / group_size;
  for (int64_t r = n_begin; r < n_end; ++r) {
    for (int64_t i = 0; i < k; i += kInt4Block) {
      const float d = half_to_float(scales[r * groups + i / group_size]);
      const uint8_t* src = packed + (r * k + i) / 2;
      for (int64_t j = 0; j < kInt4Block / 2; ++j) {
        w[r * k + i + j] = d * static_cast<float>((src[j] & 0xf) - 8);
        w[r * k + i + j + 16] = d * static_cast<float>((src[j] >> 4) - 8);
      }
    }
  }
}

void int4_linear_ref(const Int4Linear& p, int64_t n_begin, int64_t n_end) {
  const int64_t groups = p.k / p.group_size;
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.k;
    for (int64_t r = n_begin; r < n_end; ++r) {
      float acc = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        float group_acc = 0.f;
        for (int64_t b = g * p.group_size; b < (g + 1) * p.group_size; b += kInt4Block) {
          const uint8_t* src = p.packed + (r * p.k + b) / 2;
          for (int64_t j = 0; j < kInt4Block / 2; ++j) {
            group_acc += x[b + j] * static_cast<float>((src[j] & 0xf) - 8);
            group_acc += x[b + j + 16] * static_cast<float>((src[j] >> 4) - 8);
          }
        }
        acc += group_acc * half_to_float(p.scales[r * groups + g]);
      }
      p.y[i * p.n + r] = acc + (p.bias != nullptr ? p.bias[r] : 0.f);
    }
  }
}

}  // namespace wattwise::quant::kernels
