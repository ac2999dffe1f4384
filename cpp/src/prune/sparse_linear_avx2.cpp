// AVX2 + FMA sparse Linear kernels, compiled with -mavx2 -mfma in this unit only. Batch 1
// gathers x at the stored columns (8 per instruction); batch > 1 broadcasts each stored value
// over a column of the transposed input, so every stored weight is read once per call.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "wattwise/prune/sparse_linear.h"

namespace wattwise::prune::kernels {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Accumulates sum_j val[j] * xt[col(j)] over a row for every batch column of xt ([k][mp]),
// 32 columns at a time, and writes y[i][r] for i < m.
template <class ColAt>
void batched_row(const float* xt, int64_t m, int64_t mp, const float* val, int64_t count,
                 ColAt col_at, float bias, int64_t n, int64_t r, float* y) {
  alignas(32) float out[32];
  for (int64_t c0 = 0; c0 < mp; c0 += 32) {
    const int64_t width = mp - c0 < 32 ? mp - c0 : 32;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    if (width == 32) {
      for (int64_t j = 0; j < count; ++j) {
        const __m256 v = _mm256_broadcast_ss(val + j);
        const float* xc = xt + col_at(j) * mp + c0;
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc), a0);
        a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 8), a1);
        a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 16), a2);
        a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 24), a3);
      }
    } else if (width == 8) {
      // One vector per value: split the sum over four chains so FMA latency does not bound it.
      int64_t j = 0;
      for (; j + 4 <= count; j += 4) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + j),
                             _mm256_loadu_ps(xt + col_at(j) * mp + c0), a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + j + 1),
                             _mm256_loadu_ps(xt + col_at(j + 1) * mp + c0), a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + j + 2),
                             _mm256_loadu_ps(xt + col_at(j + 2) * mp + c0), a2);
        a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + j + 3),
                             _mm256_loadu_ps(xt + col_at(j + 3) * mp + c0), a3);
      }
      for (; j < count; ++j) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + j),
                             _mm256_loadu_ps(xt + col_at(j) * mp + c0), a0);
      }
      a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    } else {
      for (int64_t j = 0; j < count; ++j) {
        const __m256 v = _mm256_broadcast_ss(val + j);
        const float* xc = xt + col_at(j) * mp + c0;
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc), a0);
        if (width > 8) a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 8), a1);
        if (width > 16) a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xc + 16), a2);
      }
    }
    _mm256_store_ps(out, a0);
    _mm256_store_ps(out + 8, a1);
    _mm256_store_ps(out + 16, a2);
    _mm256_store_ps(out + 24, a3);
    for (int64_t i = 0; i < width && c0 + i < m; ++i) y[(c0 + i) * n + r] = out[i] + bias;
  }
}

}  // namespace

void csr_linear_avx2(const Csr& p, int64_t r_begin, int64_t r_end) {
  const int64_t kmax = p.k - 1;
  const __m256i vkmax = _mm256_set1_epi32(static_cast<int32_t>(kmax));
  // 8 column indices, widened and clamped into [0, k).
  const auto cols = [vkmax](const uint16_t* at) {
    return _mm256_min_epu32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at))), vkmax);
  };
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t b = p.row_ptr[r], e = p.row_ptr[r + 1];
    const float bias = p.bias != nullptr ? p.bias[r] : 0.f;
    if (p.m > 1) {
      const uint16_t* col = p.col + b;
      batched_row(
          p.xt, p.m, p.mp, p.val + b, e - b,
          [col, kmax](int64_t j) { return std::min<int64_t>(col[j], kmax); }, bias, p.n, r, p.y);
      continue;
    }
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t j = b;
    // Four independent gathers in flight: a gather's latency, not its throughput, bounds one.
    for (; j + 32 <= e; j += 32) {
      const __m256 x0 = _mm256_i32gather_ps(p.xt, cols(p.col + j), 4);
      const __m256 x1 = _mm256_i32gather_ps(p.xt, cols(p.col + j + 8), 4);
      const __m256 x2 = _mm256_i32gather_ps(p.xt, cols(p.col + j + 16), 4);
      const __m256 x3 = _mm256_i32gather_ps(p.xt, cols(p.col + j + 24), 4);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p.val + j), x0, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p.val + j + 8), x1, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p.val + j + 16), x2, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p.val + j + 24), x3, a3);
    }
    a0 = _mm256_add_ps(a0, a2);
    a1 = _mm256_add_ps(a1, a3);
    for (; j + 8 <= e; j += 8) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p.val + j),
                           _mm256_i32gather_ps(p.xt, cols(p.col + j), 4), a0);
    }
    float acc = hsum(_mm256_add_ps(a0, a1));
    for (; j < e; ++j) acc += p.val[j] * p.xt[std::min<int64_t>(p.col[j], kmax)];
    p.y[r] = acc + bias;
  }
}

void nm_linear_avx2(const Nm& p, int64_t r_begin, int64_t r_end) {
  // Column of the j-th value of a row: its run (j / N) times M plus its index inside the run.
  // With N dividing 8, eight consecutive values starting at a multiple of 8 span 8 / N runs
  // whose offsets are a fixed pattern, so the columns are one add per vector.
  const bool pattern = 8 % p.nn == 0;
  alignas(32) int32_t offs[8];
  for (int l = 0; l < 8; ++l) offs[l] = static_cast<int32_t>((l / p.nn) * p.mm);
  const __m256i voffs = _mm256_load_si256(reinterpret_cast<const __m256i*>(offs));
  const int32_t step = static_cast<int32_t>(8 / p.nn * p.mm);
  const __m256i vmmax = _mm256_set1_epi32(static_cast<int32_t>(p.mm - 1));
  // Lane l's run starts ((l % 4) / N) * M floats into its half of the 16 inputs.
  const bool half = p.mm == 2 * p.nn && 4 % p.nn == 0;
  alignas(32) int32_t hoffs[8];
  for (int l = 0; l < 8; ++l) hoffs[l] = static_cast<int32_t>(((l % 4) / p.nn) * p.mm);
  const __m256i vhalf = _mm256_load_si256(reinterpret_cast<const __m256i*>(hoffs));
  std::vector<int32_t> cols;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const float* v = p.val + r * p.kept;
    const uint8_t* ix = p.idx + r * p.kept;
    const float bias = p.bias != nullptr ? p.bias[r] : 0.f;
    const int64_t nn = p.nn, mm = p.mm;
    if (p.m > 1) {
      // Columns once per row, without a division per value (it would dominate the batch loop).
      cols.resize(static_cast<size_t>(p.kept));
      for (int64_t j = 0, base = 0; j < p.kept; base += mm) {
        for (int64_t t = 0; t < nn; ++t, ++j) {
          cols[j] = static_cast<int32_t>(base + std::min<int64_t>(ix[j], mm - 1));
        }
      }
      const int32_t* cp = cols.data();
      batched_row(
          p.xt, p.m, p.mp, v, p.kept, [cp](int64_t j) { return int64_t{cp[j]}; }, bias, p.n, r,
          p.y);
      continue;
    }
    __m256 a0 = _mm256_setzero_ps();
    int64_t j = 0;
    if (half) {
      // M == 2N (2:4, 4:8, 1:2): 8 values cover 16 consecutive inputs, two vectors of x; pick
      // each value's input with an in-register permute instead of a gather.
      __m256 a1 = _mm256_setzero_ps();
      const auto pick = [&](int64_t at) {
        const float* xb = p.xt + 2 * at;
        const __m128i b8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ix + at));
        const __m256i sel =
            _mm256_add_epi32(vhalf, _mm256_min_epu32(_mm256_cvtepu8_epi32(b8), vmmax));
        return _mm256_blend_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(xb), sel),
                               _mm256_permutevar8x32_ps(_mm256_loadu_ps(xb + 8), sel), 0xF0);
      };
      for (; j + 16 <= p.kept; j += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), pick(j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j + 8), pick(j + 8), a1);
      }
      for (; j + 8 <= p.kept; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), pick(j), a0);
      a0 = _mm256_add_ps(a0, a1);
    } else if (pattern) {
      __m256i base = voffs;
      for (; j + 8 <= p.kept; j += 8) {
        const __m128i b8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ix + j));
        const __m256i cols =
            _mm256_add_epi32(base, _mm256_min_epu32(_mm256_cvtepu8_epi32(b8), vmmax));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), _mm256_i32gather_ps(p.xt, cols, 4), a0);
        base = _mm256_add_epi32(base, _mm256_set1_epi32(step));
      }
    }
    float acc = hsum(a0);
    for (; j < p.kept; ++j) acc += v[j] * p.xt[(j / nn) * mm + std::min<int64_t>(ix[j], mm - 1)];
    p.y[r] = acc + bias;
  }
}

}  // namespace wattwise::prune::kernels
