// Scalar fp16 / bf16 conversions shared by the quant sources (private to cpp/src/quant).
#pragma once

#include <cstdint>
#include <cstring>

#include "wattwise/common/half.h"
#include "wattwise/quant/dynamic_int8.h"

namespace wattwise::quant {

// Round to nearest even; NaN stays a (quiet) NaN instead of rounding into Inf.
inline uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, sizeof(f));
  return f;
}

inline float half_value(uint16_t h, HalfFormat format) {
  return format == HalfFormat::kFloat16 ? half_to_float(h) : bf16_to_float(h);
}

}  // namespace wattwise::quant
