// AVX2 kernels for int8 x int8 Linear and half-precision weights (-mavx2 -mfma -mf16c in
// this unit only, reached through run-time dispatch). The int8 product is vpmaddubsw on
// |xq| and sign-transferred weights (see dynamic_int8.h for why it cannot saturate), then
// vpmaddwd against ones to widen the int16 pair sums into int32 accumulators.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "wattwise/quant/dynamic_int8.h"

namespace wattwise::quant::kernels {
namespace {

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i load256(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// MR activation rows against NR weight rows, 32 inputs per step.
template <int MR, int NR>
inline void int8_tile(const Int8Gemm& p, int64_t m0, int64_t n0) {
  const int64_t k = p.k;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) {
    __m256i xa[MR];
    for (int i = 0; i < MR; ++i) xa[i] = _mm256_abs_epi8(load256(p.xq + (m0 + i) * k + kk));
    for (int j = 0; j < NR; ++j) {
      const __m256i w = load256(p.q + (n0 + j) * k + kk);
      for (int i = 0; i < MR; ++i) {
        // The signed activations are re-read (an L1 hit folded into vpsignb) rather than
        // held in registers, which would spill the accumulators.
        const __m256i ws = _mm256_sign_epi8(w, load256(p.xq + (m0 + i) * k + kk));
        const __m256i pairs = _mm256_maddubs_epi16(xa[i], ws);
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    const int8_t* x = p.xq + (m0 + i) * k;
    for (int j = 0; j < NR; ++j) {
      const int64_t col = n0 + j;
      const int8_t* w = p.q + col * k;
      int32_t s = hsum_epi32(acc[i][j]);
      for (int64_t t = kk; t < k; ++t) s += static_cast<int32_t>(x[t]) * w[t];
      if (p.xzp != nullptr) s -= p.xzp[m0 + i] * p.wsum[col];
      p.y[(m0 + i) * p.n + col] = static_cast<float>(s) * (p.xscales[m0 + i] * p.wscales[col]) +
                                  (p.bias != nullptr ? p.bias[col] : 0.f);
    }
  }
}

template <int MR, int NR>
inline void int8_rows(const Int8Gemm& p, int64_t m0, int64_t n_begin, int64_t n_end) {
  int64_t c = n_begin;
  for (; c + NR <= n_end; c += NR) int8_tile<MR, NR>(p, m0, c);
  for (; c < n_end; ++c) int8_tile<MR, 1>(p, m0, c);
}

// Weight rows are walked in blocks of about this many bytes, small enough to stay in L2
// while every activation row passes over them (a batch-1 GEMV reads each weight once).
constexpr int64_t kWeightBlockBytes = 192 * 1024;

// ---- half-precision weights -----------------------------------------------------------

template <HalfFormat F>
inline __m256 load_half8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (F == HalfFormat::kFloat16) {
    return _mm256_cvtph_ps(h);
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <HalfFormat F>
inline float half_scalar(uint16_t h) {
  if constexpr (F == HalfFormat::kFloat16) {
    return _cvtsh_ss(h);
  } else {
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(h) << 16)));
  }
}

template <HalfFormat F, int MR, int NR>
inline void half_tile(const HalfLinear& p, int64_t m0, int64_t n0) {
  const int64_t k = p.k;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(p.x + (m0 + i) * k + kk);
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = load_half8<F>(p.w + (n0 + j) * k + kk);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = kk; t < k; ++t) {
        s += p.x[(m0 + i) * k + t] * half_scalar<F>(p.w[(n0 + j) * k + t]);
      }
      const int64_t col = n0 + j;
      p.y[(m0 + i) * p.n + col] = s + (p.bias != nullptr ? p.bias[col] : 0.f);
    }
  }
}

template <HalfFormat F, int MR, int NR>
inline void half_rows(const HalfLinear& p, int64_t m0, int64_t n_begin, int64_t n_end) {
  int64_t c = n_begin;
  for (; c + NR <= n_end; c += NR) half_tile<F, MR, NR>(p, m0, c);
  for (; c < n_end; ++c) half_tile<F, MR, 1>(p, m0, c);
}

template <HalfFormat F>
void half_linear_impl(const HalfLinear& p, int64_t n_begin, int64_t n_end) {
  const int64_t block = std::max<int64_t>(16, kWeightBlockBytes / std::max<int64_t>(2 * p.k, 1));
  for (int64_t c0 = n_begin; c0 < n_end; c0 += block) {
    const int64_t c1 = std::min(n_end, c0 + block);
    int64_t r = 0;
    for (; r + 4 <= p.m; r += 4) half_rows<F, 4, 2>(p, r, c0, c1);
    for (; r + 2 <= p.m; r += 2) half_rows<F, 2, 4>(p, r, c0, c1);
    for (; r < p.m; ++r) half_rows<F, 1, 8>(p, r, c0, c1);
  }
}

}  // namespace

void int8_gemm_avx2(const Int8Gemm& p, int64_t n_begin, int64_t n_end) {
  const int64_t block = std::max<int64_t>(16, kWeightBlockBytes / std::max<int64_t>(p.k, 1));
  for (int64_t c0 = n_begin; c0 < n_end; c0 += block) {
    const int64_t c1 = std::min(n_end, c0 + block);
    int64_t r = 0;
    for (; r + 2 <= p.m; r += 2) int8_rows<2, 4>(p, r, c0, c1);
    for (; r < p.m; ++r) int8_rows<1, 8>(p, r, c0, c1);
  }
}

// ---- packed GEMM ------------------------------------------------------------------------
// The same packed layouts as the VNNI kernel (dynamic_int8.h): weights in 32-channel panels
// of q + 128, activations in 12-row tiles of 4-input words. Each step broadcasts one row's
// four inputs against 16 channels; the sign transfer then works per byte exactly as in the
// row-major kernel, with no horizontal sums at the end.

namespace {

// 8 x 8 transpose of 32-bit elements: r[i] holds row i, afterwards r[j] holds column j.
inline void transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4b + j], 128-bit lane L: rows 4b .. 4b+3 of column 4L + j.
  for (int b = 0; b < 8; b += 4) {
    u[b] = _mm256_unpacklo_epi64(t[b], t[b + 2]);
    u[b + 1] = _mm256_unpackhi_epi64(t[b], t[b + 2]);
    u[b + 2] = _mm256_unpacklo_epi64(t[b + 1], t[b + 3]);
    u[b + 3] = _mm256_unpackhi_epi64(t[b + 1], t[b + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

constexpr int64_t kPanel = 32;
constexpr int64_t kGroupBytes = 128;              // one group of four inputs for a 32-channel panel
constexpr int kMr = 4;                            // activation rows per register tile
constexpr int64_t kRowBlockBytes = 96 << 10;      // packed activation rows kept in L2
constexpr int64_t kPackedChunkBytes = 256 << 10;  // packed weights kept in L2

// Lanes [0, count) of eight, as the all-ones masks vpmaskmov takes.
inline __m256i lane_mask8(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(count, 0, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Rows [m0, m0 + rows) (rows <= MR) of a packed tile, from sub-row `sub`, against 16 channels
// from j0 (`nc` of them valid) whose packed bytes start at b (a panel plus 0 or 64).
template <int MR>
void packed_tile(const Int8Gemm& p, const int32_t* a, const int32_t* a_abs, int64_t groups,
                 int64_t m0, int64_t rows, const uint8_t* b, int64_t j0, int64_t nc) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g, b += kGroupBytes, a += kVnniRows, a_abs += kVnniRows) {
    const __m256i w0 = _mm256_xor_si256(load256(reinterpret_cast<const int8_t*>(b)), flip);
    const __m256i w1 = _mm256_xor_si256(load256(reinterpret_cast<const int8_t*>(b + 32)), flip);
    for (int i = 0; i < MR; ++i) {
      // |x| comes packed beside x: a broadcast load is cheaper than one more vector op.
      const __m256i x = _mm256_set1_epi32(a[i]);
      const __m256i ax = _mm256_set1_epi32(a_abs[i]);
      acc0[i] = _mm256_add_epi32(
          acc0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, x)), ones));
      acc1[i] = _mm256_add_epi32(
          acc1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, x)), ones));
    }
  }
  for (int h = 0; h < 2; ++h) {
    const int64_t col = j0 + 8 * h;
    const __m256i mask = lane_mask8(nc - 8 * h);
    if (_mm256_testz_si256(mask, mask)) continue;
    const __m256 ws = _mm256_maskload_ps(p.wscales + col, mask);
    const __m256 bias =
        p.bias != nullptr ? _mm256_maskload_ps(p.bias + col, mask) : _mm256_setzero_ps();
    const __m256i wsum =
        p.xzp != nullptr ? _mm256_maskload_epi32(p.wsum + col, mask) : _mm256_setzero_si256();
    for (int i = 0; i < MR; ++i) {
      if (i >= rows) break;
      const int64_t row = m0 + i;
      __m256i s = h == 0 ? acc0[i] : acc1[i];
      if (p.xzp != nullptr) {
        s = _mm256_sub_epi32(s, _mm256_mullo_epi32(_mm256_set1_epi32(p.xzp[row]), wsum));
      }
      // Multiply, then add: the reference's rounding, never a fused multiply-add.
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(p.xscales[row]), ws);
      _mm256_maskstore_ps(p.y + row * p.n + col, mask,
                          _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), scale), bias));
    }
  }
}

}  // namespace

void int8_pack_panels_avx2(const int8_t* q, int64_t k, int64_t n_begin, int64_t n_end,
                           uint8_t* out) {
  const int64_t groups = (k + 3) / 4, full = k / 4;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t j0 = n_begin; j0 < n_end; j0 += kPanel) {
    const int64_t nc = std::min(kPanel, n_end - j0);
    uint8_t* panel = out + (j0 - n_begin) / kPanel * groups * kGroupBytes;
    for (int64_t h = 0; h < 4; ++h) {
      int64_t g = 0;
      if (8 * h + 8 <= nc) {
        // Eight channels by eight groups (32 inputs) at a time: a 4-byte transpose.
        for (; g + 8 <= full; g += 8) {
          __m256i r[8];
          for (int i = 0; i < 8; ++i) r[i] = load256(q + (j0 + 8 * h + i) * k + 4 * g);
          transpose8(r);
          for (int i = 0; i < 8; ++i) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(panel + (g + i) * kGroupBytes + 32 * h),
                                _mm256_xor_si256(r[i], flip));
          }
        }
      }
      for (; g < groups; ++g) {
        for (int64_t c = 8 * h; c < 8 * h + 8; ++c) {
          for (int64_t b = 0; b < 4; ++b) {
            const int64_t t = 4 * g + b;
            const int8_t v = (c < nc && t < k) ? q[(j0 + c) * k + t] : int8_t{0};
            panel[g * kGroupBytes + 4 * c + b] = static_cast<uint8_t>(v) ^ 0x80u;
          }
        }
      }
    }
  }
}

void int8_pack_rows_avx2(const int8_t* xq, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                         int32_t* a, int32_t* a_abs) {
  const int64_t groups = (k + 3) / 4, full = k / 4;
  for (int64_t r = m_begin; r < m_end; ++r) {
    const int8_t* x = xq + r * k;
    int32_t* out = a + (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
    for (int64_t g = 0; g < full; ++g) std::memcpy(out + g * kVnniRows, x + 4 * g, 4);
    if (full < groups) {
      int32_t v = 0;
      std::memcpy(&v, x + 4 * full, static_cast<size_t>(k - 4 * full));
      out[full * kVnniRows] = v;
    }
  }
  // Rows past m in the last tile multiply like zeros; their results are never stored.
  const int64_t tile_end = m_end == m ? (m + kVnniRows - 1) / kVnniRows * kVnniRows : m_end;
  for (int64_t r = m; r < tile_end; ++r) {
    int32_t* out = a + (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
    for (int64_t g = 0; g < groups; ++g) out[g * kVnniRows] = 0;
  }
  // The tiles of [m_begin, tile_end) as bytes: |x| beside x.
  const int64_t begin = (m_begin / kVnniRows) * kVnniRows * groups * 4;
  const int64_t end = (tile_end + kVnniRows - 1) / kVnniRows * kVnniRows * groups * 4;
  const auto* src = reinterpret_cast<const int8_t*>(a);
  auto* dst = reinterpret_cast<int8_t*>(a_abs);
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_abs_epi8(load256(src + i)));
  }
  for (; i < end; ++i) dst[i] = static_cast<int8_t>(src[i] < 0 ? -src[i] : src[i]);
}

void int8_gemm_avx2_packed(const Int8Gemm& p, const int32_t* a, const int32_t* a_abs,
                           int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  if (m_begin >= m_end || n_begin >= n_end) return;
  const int64_t groups = (p.k + 3) / 4;
  const int64_t panels = (n_end - n_begin + kPanel - 1) / kPanel;
  const int64_t panel_bytes = groups * kGroupBytes;
  const int64_t block =
      std::max<int64_t>(1, kRowBlockBytes / (4 * std::max<int64_t>(groups, 1) * kVnniRows)) *
      kVnniRows;
  thread_local std::vector<uint8_t> packed;
  const auto run_panel = [&](const uint8_t* data, int64_t pi, int64_t r0, int64_t r1) {
    const int64_t j0 = n_begin + pi * kPanel;
    const int64_t nc = std::min(kPanel, n_end - j0);
    for (int64_t h = 0; h < 2 && 16 * h < nc; ++h) {
      for (int64_t r = r0; r < r1; r += kMr) {
        // r is a multiple of kMr, so a 4-row sub-tile never straddles two 12-row tiles.
        const int64_t offset = (r / kVnniRows) * kVnniRows * groups + r % kVnniRows;
        packed_tile<kMr>(p, a + offset, a_abs + offset, groups, r, std::min<int64_t>(kMr, r1 - r),
                         data + 64 * h, j0 + 16 * h, nc - 16 * h);
      }
    }
  };
  if (panels * panel_bytes <= kPackedChunkBytes) {
    packed.resize(static_cast<size_t>(panels * panel_bytes));
    int8_pack_panels_avx2(p.q, p.k, n_begin, n_end, packed.data());
    for (int64_t r0 = m_begin; r0 < m_end; r0 += block) {
      const int64_t r1 = std::min(m_end, r0 + block);
      for (int64_t pi = 0; pi < panels; ++pi)
        run_panel(packed.data() + pi * panel_bytes, pi, r0, r1);
    }
  } else {
    packed.resize(static_cast<size_t>(panel_bytes));
    for (int64_t pi = 0; pi < panels; ++pi) {
      const int64_t j0 = n_begin + pi * kPanel;
      int8_pack_panels_avx2(p.q, p.k, j0, std::min(n_end, j0 + kPanel), packed.data());
      run_panel(packed.data(), pi, m_begin, m_end);
    }
  }
}

void quantize_affine_avx2(const float* x, int64_t k, int64_t m_begin, int64_t m_end,
                          float inv_scale, int32_t zero_point, int32_t quant_min, int32_t quant_max,
                          int32_t shift, int8_t* xq) {
  const __m256 vinv = _mm256_set1_ps(inv_scale);
  const __m256 vzp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(quant_min));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(quant_max));
  const __m256i vshift = _mm256_set1_epi32(shift);
  int64_t i = m_begin * k;
  const int64_t end = m_end * k;
  for (; i + 8 <= end; i += 8) {
    __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // max(v, lo) returns lo when v is NaN, as the reference does.
    v = _mm256_min_ps(hi, _mm256_max_ps(_mm256_add_ps(v, vzp), lo));
    const __m256i v32 = _mm256_sub_epi32(_mm256_cvtps_epi32(v), vshift);
    const __m128i v16 =
        _mm_packs_epi32(_mm256_castsi256_si128(v32), _mm256_extracti128_si256(v32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(xq + i), _mm_packs_epi16(v16, v16));
  }
  if (i < end) {
    // The tail lies in row (i / k); hand the reference whole elements through a 1-row view.
    quantize_affine_ref(x + i, end - i, 0, 1, inv_scale, zero_point, quant_min, quant_max, shift,
                        xq + i);
  }
}

void half_quantize_avx2(const float* w, int64_t k, HalfFormat format, int64_t n_begin,
                        int64_t n_end, uint16_t* out) {
  int64_t i = n_begin * k;
  const int64_t end = n_end * k;
  if (format == HalfFormat::kFloat16) {
    for (; i + 8 <= end; i += 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(w + i), _MM_FROUND_TO_NEAREST_INT));
    }
  } else {
    const __m256i bias = _mm256_set1_epi32(0x7fff);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x400000);
    for (; i + 8 <= end; i += 8) {
      const __m256i x = _mm256_castps_si256(_mm256_loadu_ps(w + i));
      const __m256i rounded = _mm256_add_epi32(
          x, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(x, 16), one)));
      const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
      const __m256i bits =
          _mm256_srli_epi32(_mm256_blendv_epi8(rounded, _mm256_or_si256(x, quiet), nan), 16);
      const __m128i packed =
          _mm_packus_epi32(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), packed);
    }
  }
  if (i < end) half_quantize_ref(w + i, end - i, format, 0, 1, out + i);
}

void half_linear_avx2(const HalfLinear& p, int64_t n_begin, int64_t n_end) {
  if (p.format == HalfFormat::kFloat16) {
    half_linear_impl<HalfFormat::kFloat16>(p, n_begin, n_end);
  } else {
    half_linear_impl<HalfFormat::kBFloat16>(p, n_begin, n_end);
  }
}

}  // namespace wattwise::quant::kernels
