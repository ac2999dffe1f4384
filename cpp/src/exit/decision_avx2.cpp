// AVX2 + FMA per-row softmax statistics (max probability, entropy, margin, argmax), for heads
// with many classes. Compiled with -mavx2 -mfma in this unit only; reached via dispatch.
#include <immintrin.h>

#include <cmath>
#include <initializer_list>
#include <limits>

#include "wattwise/exit/decision.h"

namespace wattwise::exit::kernels {
namespace {

// exp(x) for x <= 0 (Cephes' expf: range reduction by ln 2, degree-5 polynomial), about
// 2 ulp; inputs below -87 give ~1e-38 instead of 0, which no sum here can notice.
inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  const __m256i pow2 =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(pow2));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes 0..n-1 set (n in 0..8), for the masked tail of a row.
inline __m256i tail_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

}  // namespace

void row_stats_avx2(const RowStats& p, int64_t r_begin, int64_t r_end) {
  const int64_t c = p.cols;
  const int64_t c8 = c & ~int64_t{7};
  const float log_c = c > 1 ? std::log(static_cast<float>(c)) : 1.f;
  const float ninf = -std::numeric_limits<float>::infinity();
  const __m256i tmask = tail_mask(c - c8);
  const __m256 vninf = _mm256_set1_ps(ninf);
  const __m256 vt = _mm256_set1_ps(p.inv_temperature);
  const __m256 vlo = _mm256_set1_ps(-87.f);
  for (int64_t r = r_begin; r < r_end; ++r) {
    const float* x = p.logits + r * c;
    // Top two per lane: the row's top two are then among these 16 values.
    __m256 t1 = vninf, t2 = vninf;
    for (int64_t i = 0; i < c8; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      t2 = _mm256_max_ps(t2, _mm256_min_ps(t1, v));
      t1 = _mm256_max_ps(t1, v);
    }
    __m256 tail = vninf;
    if (c8 < c) {
      tail = _mm256_blendv_ps(vninf, _mm256_maskload_ps(x + c8, tmask), _mm256_castsi256_ps(tmask));
      t2 = _mm256_max_ps(t2, _mm256_min_ps(t1, tail));
      t1 = _mm256_max_ps(t1, tail);
    }
    alignas(32) float l1[8], l2[8];
    _mm256_store_ps(l1, t1);
    _mm256_store_ps(l2, t2);
    float m1 = ninf, m2 = ninf;
    for (int j = 0; j < 8; ++j) {
      for (const float v : {l1[j], l2[j]}) {
        if (v > m1) {
          m2 = m1;
          m1 = v;
        } else if (v > m2) {
          m2 = v;
        }
      }
    }
    // First index holding the maximum (as the reference's strict > scan finds it).
    int64_t arg = 0;
    const __m256 vm1 = _mm256_set1_ps(m1);
    for (int64_t i = 0;; i += 8) {
      if (i >= c8) {
        for (int64_t k = c8; k < c; ++k) {
          if (x[k] == m1) {
            arg = k;
            break;
          }
        }
        break;
      }
      const int bits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vm1, _CMP_EQ_OQ));
      if (bits != 0) {
        arg = i + __builtin_ctz(static_cast<unsigned>(bits));
        break;
      }
    }

    const float m = m1 * p.inv_temperature;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s = _mm256_setzero_ps(), w = _mm256_setzero_ps();
    for (int64_t i = 0; i < c8; i += 8) {
      // Clamped like exp_neg's input, so a -inf logit adds ~0 rather than 0 * -inf = NaN.
      const __m256 d = _mm256_max_ps(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vt, vm), vlo);
      const __m256 e = exp_neg(d);
      s = _mm256_add_ps(s, e);
      w = _mm256_fmadd_ps(e, d, w);
    }
    if (c8 < c) {
      const __m256 fm = _mm256_castsi256_ps(tmask);
      // Masked lanes hold -inf: exp gives 0 but 0 * -inf is NaN, so zero them explicitly.
      const __m256 d = _mm256_and_ps(_mm256_max_ps(_mm256_fmsub_ps(tail, vt, vm), vlo), fm);
      const __m256 e = _mm256_and_ps(exp_neg(d), fm);
      s = _mm256_add_ps(s, e);
      w = _mm256_fmadd_ps(e, d, w);
    }
    const float ss = hsum(s), ws = hsum(w);
    const float h = std::log(ss) - ws / ss;
    p.max_prob[r] = 1.f / ss;
    p.entropy_conf[r] = c > 1 ? 1.f - h / log_c : 1.f;
    p.margin[r] = (1.f - std::exp(m2 * p.inv_temperature - m)) / ss;
    p.argmax[r] = arg;
  }
}

}  // namespace wattwise::exit::kernels
