// AVX2 + FMA + F16C weight-only kernels. Compiled with -mavx2 -mfma -mf16c in this unit only
// and reached through run-time dispatch. Linear kernels work on an MR x NR tile (MR input
// rows sharing each weight load, NR weight rows sharing each input load) so that a
// batch-1 GEMV streams every weight byte exactly once.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "wattwise/common/half.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::quant::kernels {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v); }

// Eight int8 weights to eight floats.
inline __m256 load_i8x8(const int8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// ---- int8 -----------------------------------------------------------------------------

template <int MR, int NR>
inline void int8_tile(const Int8Linear& p, int64_t m0, int64_t n0) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const int64_t k = p.k;
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(p.x + (m0 + i) * k + kk);
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = load_i8x8(p.q + (n0 + j) * k + kk);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = kk; t < k; ++t) {
        s += p.x[(m0 + i) * k + t] * static_cast<float>(p.q[(n0 + j) * k + t]);
      }
      const int64_t col = n0 + j;
      p.y[(m0 + i) * p.n + col] = s * p.scales[col] + (p.bias != nullptr ? p.bias[col] : 0.f);
    }
  }
}

template <int MR, int NR>
inline void int8_rows(const Int8Linear& p, int64_t m0, int64_t n_begin, int64_t n_end) {
  int64_t c = n_begin;
  for (; c + NR <= n_end; c += NR) int8_tile<MR, NR>(p, m0, c);
  for (; c < n_end; ++c) int8_tile<MR, 1>(p, m0, c);
}

// ---- int4 -----------------------------------------------------------------------------

// 32 int4 values (16 bytes, Q4_0 order) to four vectors of eight floats in input order.
inline void load_i4x32(const uint8_t* p, __m256 out[4]) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, mask), eight);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight);
  out[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  out[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  out[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  out[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

template <int MR, int NR>
inline void int4_tile(const Int4Linear& p, int64_t m0, int64_t n0) {
  const int64_t k = p.k;
  const int64_t groups = k / p.group_size;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m256 gacc[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) gacc[i][j] = _mm256_setzero_ps();
    const int64_t g_end = (g + 1) * p.group_size;
    for (int64_t b = g * p.group_size; b < g_end; b += kInt4Block) {
      // Inputs are read as memory operands of the FMAs (they sit in L1): keeping them in
      // registers as well would spill the accumulators.
      for (int j = 0; j < NR; ++j) {
        __m256 wv[4];
        load_i4x32(p.packed + ((n0 + j) * k + b) / 2, wv);
        for (int i = 0; i < MR; ++i) {
          const float* x = p.x + (m0 + i) * k + b;
          for (int t = 0; t < 4; ++t) {
            gacc[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * t), wv[t], gacc[i][j]);
          }
        }
      }
    }
    for (int j = 0; j < NR; ++j) {
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(p.scales[(n0 + j) * groups + g]));
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(gacc[i][j], d, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const int64_t col = n0 + j;
      p.y[(m0 + i) * p.n + col] = hsum(acc[i][j]) + (p.bias != nullptr ? p.bias[col] : 0.f);
    }
  }
}

template <int MR, int NR>
inline void int4_rows(const Int4Linear& p, int64_t m0, int64_t n_begin, int64_t n_end) {
  int64_t c = n_begin;
  for (; c + NR <= n_end; c += NR) int4_tile<MR, NR>(p, m0, c);
  for (; c < n_end; ++c) int4_tile<MR, 1>(p, m0, c);
}

// Rows of the output are walked in blocks so that a block of weight rows stays in cache
// while every input row passes over it.
constexpr int64_t kRowBlock = 16;

template <typename P, typename Rows1, typename Rows2, typename Rows4>
inline void linear_driver(const P& p, int64_t n_begin, int64_t n_end, Rows1 rows1, Rows2 rows2,
                          Rows4 rows4) {
  for (int64_t c0 = n_begin; c0 < n_end; c0 += kRowBlock) {
    const int64_t c1 = std::min(n_end, c0 + kRowBlock);
    int64_t r = 0;
    for (; r + 4 <= p.m; r += 4) rows4(p, r, c0, c1);
    for (; r + 2 <= p.m; r += 2) rows2(p, r, c0, c1);
    for (; r < p.m; ++r) rows1(p, r, c0, c1);
  }
}

}  // namespace

void int8_quantize_avx2(const float* w, int64_t k, int64_t n_begin, int64_t n_end, int8_t* q,
                        float* scales) {
  for (int64_t r = n_begin; r < n_end; ++r) {
    const float* row = w + r * k;
    __m256 vmax = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) vmax = _mm256_max_ps(vmax, abs_ps(_mm256_loadu_ps(row + i)));
    float amax = hmax(vmax);
    for (; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
    const float scale = amax / 127.f;
    const float inv = scale == 0.f ? 0.f : 1.f / scale;
    scales[r] = scale;
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256 lo = _mm256_set1_ps(-127.f), hi = _mm256_set1_ps(127.f);
    int8_t* dst = q + r * k;
    i = 0;
    for (; i + 8 <= k; i += 8) {
      __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(row + i), vinv),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
      const __m256i v32 = _mm256_cvtps_epi32(v);
      const __m128i v16 =
          _mm_packs_epi32(_mm256_castsi256_si128(v32), _mm256_extracti128_si256(v32, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm_packs_epi16(v16, v16));
    }
    for (; i < k; ++i) {
      const float v = std::nearbyint(row[i] * inv);
      dst[i] = static_cast<int8_t>(std::min(127.f, std::max(-127.f, v)));
    }
  }
}

void int8_dequantize_avx2(const int8_t* q, const float* scales, int64_t k, int64_t n_begin,
                          int64_t n_end, float* w) {
  for (int64_t r = n_begin; r < n_end; ++r) {
    const __m256 s = _mm256_set1_ps(scales[r]);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
      _mm256_storeu_ps(w + r * k + i, _mm256_mul_ps(s, load_i8x8(q + r * k + i)));
    }
    for (; i < k; ++i) w[r * k + i] = scales[r] * static_cast<float>(q[r * k + i]);
  }
}

void int8_linear_avx2(const Int8Linear& p, int64_t n_begin, int64_t n_end) {
  linear_driver(p, n_begin, n_end, int8_rows<1, 8>, int8_rows<2, 4>, int8_rows<4, 2>);
}

void int4_quantize_avx2(const float* w, int64_t k, int64_t group_size, int64_t n_begin,
                        int64_t n_end, uint8_t* packed, uint16_t* scales) {
  const int64_t groups = k / group_size;
  for (int64_t r = n_begin; r < n_end; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* src = w + r * k + g * group_size;
      // Largest magnitude, and whether it occurs with a negative sign (ties go negative).
      __m256 vmax = _mm256_setzero_ps();
      for (int64_t i = 0; i < group_size; i += 8) {
        vmax = _mm256_max_ps(vmax, abs_ps(_mm256_loadu_ps(src + i)));
      }
      const float amax = hmax(vmax);
      const __m256 neg_extreme = _mm256_set1_ps(-amax);
      int negative = 0;
      for (int64_t i = 0; i < group_size; i += 8) {
        negative |= _mm256_movemask_ps(
            _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(src + i), neg_extreme, _CMP_EQ_OQ),
                          _mm256_cmp_ps(neg_extreme, _mm256_setzero_ps(), _CMP_LT_OQ)));
      }
      const float d = amax == 0.f ? 0.f : (negative != 0 ? amax / 8.f : -amax / 8.f);
      const uint16_t bits = float_to_half(d);
      const float dq = half_to_float(bits);
      scales[r * groups + g] = bits;
      const __m256 vinv = _mm256_set1_ps(dq == 0.f ? 0.f : 1.f / dq);
      const __m256 lo = _mm256_set1_ps(-8.f), hi = _mm256_set1_ps(7.f);
      const __m256i eight = _mm256_set1_epi32(8);
      for (int64_t b = 0; b < group_size; b += kInt4Block) {
        __m256i v[4];
        for (int t = 0; t < 4; ++t) {
          __m256 f = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(src + b + 8 * t), vinv),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          f = _mm256_min_ps(hi, _mm256_max_ps(lo, f));
          v[t] = _mm256_add_epi32(_mm256_cvtps_epi32(f), eight);
        }
        // Inputs 0..15 go to low nibbles, 16..31 to high nibbles.
        const __m256i lo16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xd8);
        const __m256i hi16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[2], v[3]), 0xd8);
        const __m256i nib = _mm256_or_si256(lo16, _mm256_slli_epi16(hi16, 4));
        const __m128i bytes =
            _mm_packus_epi16(_mm256_castsi256_si128(nib), _mm256_extracti128_si256(nib, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(packed + (r * k + g * group_size + b) / 2),
                         bytes);
      }
    }
  }
}

void int4_dequantize_avx2(const uint8_t* packed, const uint16_t* scales, int64_t k,
                          int64_t group_size, int64_t n_begin, int64_t n_end, float* w) {
  const int64_t groups = k / group_size;
  for (int64_t r = n_begin; r < n_end; ++r) {
    for (int64_t i = 0; i < k; i += kInt4Block) {
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(scales[r * groups + i / group_size]));
      __m256 wv[4];
      load_i4x32(packed + (r * k + i) / 2, wv);
      for (int t = 0; t < 4; ++t) _mm256_storeu_ps(w + r * k + i + 8 * t, _mm256_mul_ps(d, wv[t]));
    }
  }
}

void int4_linear_avx2(const Int4Linear& p, int64_t n_begin, int64_t n_end) {
  linear_driver(p, n_begin, n_end, int4_rows<1, 4>, int4_rows<2, 2>, int4_rows<4, 1>);
}

}  // namespace wattwise::quant::kernels
