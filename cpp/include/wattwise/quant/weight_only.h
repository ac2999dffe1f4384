// Weight-only quantized Linear: int8 per output channel and grouped int4, fp32 activations.
//
// Formats (row-major, one row per output channel, k = in_features):
//   int8: q[n][k] in [-127, 127], scales[n] fp32, scale = max|w_row| / 127,
//         q = round_half_even(w * (1 / scale)). An all-zero row has scale 0 and q 0.
//   int4: groups of `group_size` consecutive inputs (a positive multiple of 32 dividing k).
//         d = v / -8 rounded to fp16, where v is the group's largest-magnitude value (the
//         negative one on a tie), so that value maps to -8 and the grid has all 16 levels;
//         q = clamp(round_half_even(w / d), -8, 7) is stored as q + 8 in a nibble.
//         packed[n][k / 2]: within each run of 32 inputs, byte j (0..15) holds input j in its
//         low nibble and input j + 16 in its high nibble (ggml's Q4_0 order: AVX2 unpacks 32
//         values from 16 bytes with one AND and one shift). scales[n][k / group_size] are
//         IEEE fp16 bit patterns.
// y[m][n] = sum_k x[m][k] * dequant(w)[n][k] + bias[n], dequantizing on the fly.
#pragma once

#include <cstdint>

namespace wattwise::quant {

constexpr int64_t kInt4Block = 32;

// Entry points: validate sizes (std::invalid_argument), dispatch on active_simd() and split
// output rows over parallel_for. Zero-sized dimensions are valid.
void int8_quantize(const float* w, int64_t n, int64_t k, int8_t* q, float* scales);
void int8_dequantize(const int8_t* q, const float* scales, int64_t n, int64_t k, float* w);
void int8_linear(const float* x, int64_t m, int64_t k, const int8_t* q, const float* scales,
                 const float* bias, int64_t n, float* y);

void int4_quantize(const float* w, int64_t n, int64_t k, int64_t group_size, uint8_t* packed,
                   uint16_t* scales);
void int4_dequantize(const uint8_t* packed, const uint16_t* scales, int64_t n, int64_t k,
                     int64_t group_size, float* w);
void int4_linear(const float* x, int64_t m, int64_t k, const uint8_t* packed,
                 const uint16_t* scales, int64_t group_size, const float* bias, int64_t n,
                 float* y);

// Throws std::invalid_argument unless group_size is a positive multiple of 32 dividing k.
void check_int4_group_size(int64_t k, int64_t group_size);

// Single-threaded kernels over output rows [n_begin, n_end): `_ref` is the scalar
// reference, `_avx2` needs AVX2 + FMA + F16C (only compiled on x86-64). Exposed for tests
// and benchmarks; arguments are not validated.
namespace kernels {

struct Int8Linear {
  const float* x;
  int64_t m;
  int64_t k;
  const int8_t* q;
  const float* scales;
  const float* bias;
  int64_t n;
  float* y;
};

struct Int4Linear {
  const float* x;
  int64_t m;
  int64_t k;
  const uint8_t* packed;
  const uint16_t* scales;
  int64_t group_size;
  const float* bias;
  int64_t n;
  float* y;
};

void int8_quantize_ref(const float* w, int64_t k, int64_t n_begin, int64_t n_end, int8_t* q,
                       float* scales);
void int8_dequantize_ref(const int8_t* q, const float* scales, int64_t k, int64_t n_begin,
                         int64_t n_end, float* w);
void int8_linear_ref(const Int8Linear& p, int64_t n_begin, int64_t n_end);
void int4_quantize_ref(const float* w, int64_t k, int64_t group_size, int64_t n_begin,
                       int64_t n_end, uint8_t* packed, uint16_t* scales);
void int4_dequantize_ref(const uint8_t* packed, const uint16_t* scales, int64_t k,
                         int64_t group_size, int64_t n_begin, int64_t n_end, float* w);
void int4_linear_ref(const Int4Linear& p, int64_t n_begin, int64_t n_end);

void int8_quantize_avx2(const float* w, int64_t k, int64_t n_begin, int64_t n_end, int8_t* q,
                        float* scales);
void int8_dequantize_avx2(const int8_t* q, const float* scales, int64_t k, int64_t n_begin,
                          int64_t n_end, float* w);
void int8_linear_avx2(const Int8Linear& p, int64_t n_begin, int64_t n_end);
void int4_quantize_avx2(const float* w, int64_t k, int64_t group_size, int64_t n_begin,
                        int64_t n_end, uint8_t* packed, uint16_t* scales);
void int4_dequantize_avx2(const uint8_t* packed, const uint16_t* scales, int64_t k,
                          int64_t group_size, int64_t n_begin, int64_t n_end, float* w);
void int4_linear_avx2(const Int4Linear& p, int64_t n_begin, int64_t n_end);

}  // namespace kernels
}  // namespace wattwise::quant
