// AVX-512 VNNI kernel for the int8 x int8 product (this unit alone is compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni and reached through run-time dispatch).
//
// vpdpbusd multiplies unsigned by signed bytes and adds each group of four products straight
// into an int32 lane: there is no int16 step that could saturate, so any int8 input is exact.
// The weights are the unsigned operand, u = q + 128 (q ^ 0x80), and
//   sum_k u[k] * x[k] = sum_k q[k] * x[k] + 128 * sum_k x[k],
// so one row sum per activation row undoes the offset in the epilogue. int32 lanes wrap, so
// the identity holds modulo 2^32 and the result equals the reference's own int32 sum.
//
// Weights are packed into panels of 32 output channels with four inputs per channel side by
// side, the layout vpdpbusd reads: panel[g][c][0..3] = u[c][4g .. 4g+3]. Each call packs only
// the channels it computes, one pass over those weights shared by every activation row, so
// the entry point sends batches of a few rows to the row-major GEMV instead.
// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the unused merge source of unmasked
// intrinsics, which -W(maybe-)uninitialized reports at every inlined call site.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "wattwise/quant/dynamic_int8.h"

namespace wattwise::quant::kernels {
namespace {

constexpr int64_t kPanel = 32;                    // output channels per packed panel (two zmm)
constexpr int64_t kPanelGroupBytes = 128;         // one group of four inputs for 32 channels
constexpr int64_t kRowBlockBytes = 160 << 10;     // packed activation rows kept in L2
constexpr int64_t kPackedChunkBytes = 384 << 10;  // packed weights kept in L2

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The last 1..3 inputs of a row as one group, zero padded (zero contributes nothing to the
// product or to the row sum).
inline int32_t load_tail(const int8_t* p, int64_t count) {
  int32_t v = 0;
  std::memcpy(&v, p, static_cast<size_t>(count));
  return v;
}

int32_t row_sum(const int8_t* x, int64_t k) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc = _mm512_setzero_si512();
  int64_t t = 0;
  for (; t + 64 <= k; t += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(x + t));
  if (t < k) {
    const __mmask64 mask = (uint64_t{1} << (k - t)) - 1;  // k - t < 64
    acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(mask, x + t));
  }
  return _mm512_reduce_add_epi32(acc);
}

// 16 x 16 transpose of 32-bit elements: r[i] holds row i, afterwards r[j] holds column j.
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4b + j], 128-bit lane L: rows 4b..4b+3 of column 4L + j.
  for (int b = 0; b < 16; b += 4) {
    u[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
    u[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
    u[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
    u[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);  // lanes 0, 2 of each
    const __m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);  // lanes 1, 3 of each
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
    r[12 + j] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
  }
}

}  // namespace

void int8_pack_vnni(const int8_t* q, int64_t k, int64_t n_begin, int64_t n_end, uint8_t* out) {
  const int64_t groups = (k + 3) / 4, full = k / 4;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t j0 = n_begin; j0 < n_end; j0 += kPanel) {
    const int64_t nc = std::min(kPanel, n_end - j0);
    uint8_t* panel = out + (j0 - n_begin) / kPanel * groups * kPanelGroupBytes;
    for (int64_t h = 0; h < 2; ++h) {
      int64_t g = 0;
      if (16 * h + 16 <= nc) {
        // Sixteen channels by sixteen groups (64 inputs) at a time: a 4-byte transpose.
        for (; g + 16 <= full; g += 16) {
          __m512i r[16];
          for (int i = 0; i < 16; ++i) {
            r[i] = _mm512_loadu_si512(q + (j0 + 16 * h + i) * k + 4 * g);
          }
          transpose16(r);
          for (int i = 0; i < 16; ++i) {
            _mm512_storeu_si512(panel + (g + i) * kPanelGroupBytes + 64 * h,
                                _mm512_xor_si512(r[i], flip));
          }
        }
      }
      for (; g < groups; ++g) {
        for (int64_t c = 16 * h; c < 16 * h + 16; ++c) {
          for (int64_t b = 0; b < 4; ++b) {
            const int64_t t = 4 * g + b;
            const int8_t v = (c < nc && t < k) ? q[(j0 + c) * k + t] : int8_t{0};
            panel[g * kPanelGroupBytes + 4 * c + b] = static_cast<uint8_t>(v) ^ 0x80u;
          }
        }
      }
    }
  }
}

namespace {

struct Panel {
  const uint8_t* data;
  int64_t j0;  // first output channel
  int64_t nc;  // channels in use, 1..32
};

// The first `count` of 16 lanes (count may lie outside 0..16).
inline __mmask16 lane_mask(int64_t count) {
  return static_cast<__mmask16>((1u << std::clamp<int64_t>(count, 0, 16)) - 1);
}

// y for rows [m0, m0 + rows) and 16 channels from col, lanes in `mask`.
template <int MR>
inline void store_tile(const Int8Gemm& p, const __m512i* acc, const int32_t* xsum, int64_t m0,
                       int64_t rows, int64_t col, __mmask16 mask) {
  if (mask == 0) return;
  const __m512 ws = _mm512_maskz_loadu_ps(mask, p.wscales + col);
  const __m512 bias =
      p.bias != nullptr ? _mm512_maskz_loadu_ps(mask, p.bias + col) : _mm512_setzero_ps();
  const __m512i wsum =
      p.xzp != nullptr ? _mm512_maskz_loadu_epi32(mask, p.wsum + col) : _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    const int64_t row = m0 + i;
    // Shifted as unsigned: the offset term wraps like the accumulator (see the top comment).
    __m512i corr = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(xsum[row]) << 7));
    if (p.xzp != nullptr) {
      corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(_mm512_set1_epi32(p.xzp[row]), wsum));
    }
    const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], corr));
    // Multiply, then add: the reference's rounding, never a fused multiply-add.
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(p.xscales[row]), ws);
    _mm512_mask_storeu_ps(p.y + row * p.n + col, mask,
                          _mm512_add_ps(_mm512_mul_ps(s, scale), bias));
  }
}

// kVnniRows interleaved rows (int8_pack_rows_vnni) against one panel; MR = kVnniRows.
template <int MR>
void tile(const Int8Gemm& p, const int32_t* a, const int32_t* xsum, int64_t m0, int64_t rows,
          const Panel& pn) {
  const int64_t groups = (p.k + 3) / 4;
  __m512i acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_si512();
  const uint8_t* b = pn.data;
  for (int64_t g = 0; g < groups; ++g, b += kPanelGroupBytes, a += MR) {
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + 64);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512i x = _mm512_set1_epi32(a[i]);
      acc0[i] = _mm512_dpbusd_epi32(acc0[i], b0, x);
      acc1[i] = _mm512_dpbusd_epi32(acc1[i], b1, x);
    }
  }
  store_tile<MR>(p, acc0, xsum, m0, rows, pn.j0, lane_mask(pn.nc));
  store_tile<MR>(p, acc1, xsum, m0, rows, pn.j0 + 16, lane_mask(pn.nc - 16));
}

// Rows past m in the last register tile multiply like zeros; their results are never
// stored. Done by the call whose range reaches m.
void zero_tail_rows(int64_t m, int64_t groups, int64_t m_end, int32_t* a) {
  if (m_end != m || m % kVnniRows == 0) return;
  for (int64_t r = m; r < (m / kVnniRows + 1) * kVnniRows; ++r) {
    int32_t* out = a + (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
    for (int64_t g = 0; g < groups; ++g) out[g * kVnniRows] = 0;
  }
}

}  // namespace

void int8_pack_rows_vnni(const int8_t* xq, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                         int32_t* a, int32_t* xsum) {
  const int64_t groups = (k + 3) / 4, full = k / 4;
  for (int64_t r = m_begin; r < m_end; ++r) {
    const int8_t* x = xq + r * k;
    xsum[r] = row_sum(x, k);
    int32_t* out = a + (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
    for (int64_t g = 0; g < full; ++g) out[g * kVnniRows] = load_i32(x + 4 * g);
    if (full < groups) out[full * kVnniRows] = load_tail(x + 4 * full, k - 4 * full);
  }
  zero_tail_rows(m, groups, m_end, a);
}

void int8_quantize_rows_vnni(const float* x, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                             int32_t* a, int32_t* xsum, float* xscales) {
  const int64_t groups = (k + 3) / 4;
  const __m512 lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
  for (int64_t r = m_begin; r < m_end; ++r) {
    const float* row = x + r * k;
    // The reference's std::max(amax, |x|) skips NaN; vmaxps returns its second operand when
    // either is NaN, so |x| goes first.
    __m512 vmax = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 16 <= k; t += 16) {
      vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(row + t)), vmax);
    }
    if (t < k) {
      const __mmask16 mask = lane_mask(k - t);
      vmax =
          _mm512_mask_max_ps(vmax, mask, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, row + t)), vmax);
    }
    const float amax = _mm512_reduce_max_ps(vmax);
    const float scale = amax / 127.f;
    const float inv = scale == 0.f ? 0.f : 1.f / scale;
    xscales[r] = scale;
    const __m512 vinv = _mm512_set1_ps(inv);
    int32_t* out = a + (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
    __m512i sum = _mm512_setzero_si512();
    for (t = 0; t < k; t += 16) {
      const __mmask16 mask = lane_mask(k - t);
      __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, row + t), vinv);
      v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      // NaN first again: max(NaN, -127) is -127, as std::max(-127.f, NaN) in the reference.
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      const __m512i q = _mm512_cvtps_epi32(v);
      sum = _mm512_add_epi32(sum, q);
      // Sixteen bytes are four groups; masked-off lanes are zeros, the tail's padding.
      alignas(16) int32_t words[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(words), _mm512_cvtepi32_epi8(q));
      const int64_t g0 = t / 4;
      for (int64_t g = 0; g < 4 && g0 + g < groups; ++g) out[(g0 + g) * kVnniRows] = words[g];
    }
    xsum[r] = _mm512_reduce_add_epi32(sum);
  }
  zero_tail_rows(m, groups, m_end, a);
}

void int8_gemm_avx512vnni_packed(const Int8Gemm& p, const int32_t* a, const int32_t* xsum,
                                 int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (m_begin >= m_end || n_begin >= n_end) return;
  const int64_t groups = (p.k + 3) / 4;
  const int64_t panels = (n_end - n_begin + kPanel - 1) / kPanel;
  // Row blocks of whole tiles small enough to stay in L2 while every panel passes over them.
  const int64_t block =
      std::max<int64_t>(1, kRowBlockBytes / (4 * std::max<int64_t>(groups, 1) * kVnniRows)) *
      kVnniRows;
  const int64_t panel_bytes = groups * kPanelGroupBytes;
  // Thread-local scratch: a worker reuses its buffer from call to call.
  thread_local std::vector<uint8_t> packed;
  const auto run_panel = [&](const uint8_t* data, int64_t pi, int64_t r0, int64_t r1) {
    const int64_t j0 = n_begin + pi * kPanel;
    const Panel pn{data, j0, std::min(kPanel, n_end - j0)};
    for (int64_t r = r0; r < r1; r += kVnniRows) {
      tile<kVnniRows>(p, a + r * groups, xsum, r, std::min<int64_t>(kVnniRows, r1 - r), pn);
    }
  };
  if (panels * panel_bytes <= kPackedChunkBytes) {
    // All panels packed up front, then each block of rows passes over all of them while
    // it stays in L2.
    packed.resize(static_cast<size_t>(panels * panel_bytes));
    int8_pack_vnni(p.q, p.k, n_begin, n_end, packed.data());
    for (int64_t r0 = m_begin; r0 < m_end; r0 += block) {
      const int64_t r1 = std::min(m_end, r0 + block);
      for (int64_t pi = 0; pi < panels; ++pi) {
        run_panel(packed.data() + pi * panel_bytes, pi, r0, r1);
      }
    }
  } else {
    // Long rows: the packed chunk would not stay in L2, so each panel is packed and used
    // by every row at once, while it is still in cache.
    packed.resize(static_cast<size_t>(panel_bytes));
    for (int64_t pi = 0; pi < panels; ++pi) {
      const int64_t j0 = n_begin + pi * kPanel;
      int8_pack_vnni(p.q, p.k, j0, std::min(n_end, j0 + kPanel), packed.data());
      run_panel(packed.data(), pi, m_begin, m_end);
    }
  }
}

namespace {

// Eight accumulators to their eight horizontal sums, in order.
inline __m256i reduce8(const __m512i* v) {
  __m512i t[4], u[2];
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  }
  // u[i], 128-bit lane L: the partial sums of accumulators 4i .. 4i+3 over lane L.
  for (int i = 0; i < 2; ++i) {
    u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]),
                            _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
  }
  const __m512i v0 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], 0x88),
                                      _mm512_shuffle_i32x4(u[0], u[1], 0xdd));
  return _mm512_castsi512_si256(
      _mm512_add_epi32(_mm512_shuffle_i32x4(v0, v0, 0x88), _mm512_shuffle_i32x4(v0, v0, 0xdd)));
}

// Four accumulators to their four horizontal sums, in order.
inline __m128i reduce4(const __m512i* v) {
  const __m512i t0 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i t1 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  // 128-bit lane L of u: the partial sums of the four accumulators over lane L.
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Rows [m0, m0 + MR) against channels [j0, j0 + NR) of row-major weights; NR is 8, 4 or 1.
template <int MR, int NR>
void gemv_tile(const Int8Gemm& p, const int32_t* xsum, int64_t m0, int64_t j0) {
  const int64_t k = p.k;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[MR * NR];  // [i][j] flattened: a 2-D array makes GCC copy it each step
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i * NR + j] = _mm512_setzero_si512();
  // The main loop and the tail are written out separately: with one shared lambda GCC copies
  // every accumulator through spare registers on each step.
  int64_t t = 0;
  for (; t + 64 <= k; t += 64) {
    __m512i x[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) x[i] = _mm512_loadu_si512(p.xq + (m0 + i) * k + t);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m512i u = _mm512_xor_si512(_mm512_loadu_si512(p.q + (j0 + j) * k + t), flip);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i * NR + j] = _mm512_dpbusd_epi32(acc[i * NR + j], u, x[i]);
    }
  }
  if (t < k) {
    // Past k both loads give zeros: a zero activation cancels the weight's offset.
    const __mmask64 mask = (__mmask64{1} << (k - t)) - 1;
    __m512i x[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) x[i] = _mm512_maskz_loadu_epi8(mask, p.xq + (m0 + i) * k + t);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m512i u =
          _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, p.q + (j0 + j) * k + t), flip);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i * NR + j] = _mm512_dpbusd_epi32(acc[i * NR + j], u, x[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const int64_t row = m0 + i;
    const int32_t offset = static_cast<int32_t>(static_cast<uint32_t>(xsum[row]) << 7);
    if constexpr (NR == 8) {
      __m256i corr = _mm256_set1_epi32(offset);
      if (p.xzp != nullptr) {
        const __m256i wsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.wsum + j0));
        corr = _mm256_add_epi32(corr, _mm256_mullo_epi32(_mm256_set1_epi32(p.xzp[row]), wsum));
      }
      // A copy goes to reduce8: passing acc's own address would make GCC keep every
      // accumulator in memory through the loop.
      __m512i sums[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) sums[j] = acc[i * NR + j];
      const __m256 s = _mm256_cvtepi32_ps(_mm256_sub_epi32(reduce8(sums), corr));
      const __m256 scale =
          _mm256_mul_ps(_mm256_set1_ps(p.xscales[row]), _mm256_loadu_ps(p.wscales + j0));
      const __m256 bias = p.bias != nullptr ? _mm256_loadu_ps(p.bias + j0) : _mm256_setzero_ps();
      _mm256_storeu_ps(p.y + row * p.n + j0, _mm256_add_ps(_mm256_mul_ps(s, scale), bias));
    } else if constexpr (NR == 4) {
      __m128i corr = _mm_set1_epi32(offset);
      if (p.xzp != nullptr) {
        const __m128i wsum = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p.wsum + j0));
        corr = _mm_add_epi32(corr, _mm_mullo_epi32(_mm_set1_epi32(p.xzp[row]), wsum));
      }
      __m512i sums[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) sums[j] = acc[i * NR + j];
      const __m128 s = _mm_cvtepi32_ps(_mm_sub_epi32(reduce4(sums), corr));
      const __m128 scale = _mm_mul_ps(_mm_set1_ps(p.xscales[row]), _mm_loadu_ps(p.wscales + j0));
      const __m128 bias = p.bias != nullptr ? _mm_loadu_ps(p.bias + j0) : _mm_setzero_ps();
      _mm_storeu_ps(p.y + row * p.n + j0, _mm_add_ps(_mm_mul_ps(s, scale), bias));
    } else {
      uint32_t s = static_cast<uint32_t>(_mm512_reduce_add_epi32(acc[i * NR])) -
                   static_cast<uint32_t>(offset);
      if (p.xzp != nullptr) {
        s -= static_cast<uint32_t>(p.xzp[row]) * static_cast<uint32_t>(p.wsum[j0]);
      }
      p.y[row * p.n + j0] =
          static_cast<float>(static_cast<int32_t>(s)) * (p.xscales[row] * p.wscales[j0]) +
          (p.bias != nullptr ? p.bias[j0] : 0.f);
    }
  }
}

// One or two rows: eight channels a step (the weights dominate the loads). Four rows: four
// channels, which loads each activation and weight vector once per 16 vpdpbusd.
template <int MR>
void gemv_rows(const Int8Gemm& p, const int32_t* xsum, int64_t m0, int64_t j0, int64_t j1) {
  constexpr int kNr = MR >= 4 ? 4 : 8;
  for (; j0 + kNr <= j1; j0 += kNr) gemv_tile<MR, kNr>(p, xsum, m0, j0);
  for (; j0 < j1; ++j0) gemv_tile<MR, 1>(p, xsum, m0, j0);
}

}  // namespace

void int8_gemv_avx512vnni(const Int8Gemm& p, const int32_t* xsum, int64_t n_begin, int64_t n_end) {
  // Channel blocks small enough that their weights stay in L1 while every row group passes:
  // the weights come from memory once, however many rows there are.
  const int64_t block = std::max<int64_t>(8, (32 << 10) / std::max<int64_t>(p.k, 1) / 8 * 8);
  for (int64_t c0 = n_begin; c0 < n_end; c0 += block) {
    const int64_t c1 = std::min(n_end, c0 + block);
    int64_t r = 0;
    for (; r + 4 <= p.m; r += 4) gemv_rows<4>(p, xsum, r, c0, c1);
    for (; r + 2 <= p.m; r += 2) gemv_rows<2>(p, xsum, r, c0, c1);
    if (r < p.m) gemv_rows<1>(p, xsum, r, c0, c1);
  }
}

void int8_gemm_avx512vnni(const Int8Gemm& p, int64_t n_begin, int64_t n_end) {
  const int64_t tiles = (p.m + kVnniRows - 1) / kVnniRows;
  std::vector<int32_t> a(static_cast<size_t>(tiles * kVnniRows * ((p.k + 3) / 4)));
  std::vector<int32_t> xsum(static_cast<size_t>(p.m));
  int8_pack_rows_vnni(p.xq, p.m, p.k, 0, p.m, a.data(), xsum.data());
  int8_gemm_avx512vnni_packed(p, a.data(), xsum.data(), 0, p.m, n_begin, n_end);
}

}  // namespace wattwise::quant::kernels
