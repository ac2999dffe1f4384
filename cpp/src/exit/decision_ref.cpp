// Scalar reference of the per-row softmax statistics behind every exit criterion.
#include <cmath>
#include <limits>

#include "wattwise/exit/decision.h"

namespace wattwise::exit::kernels {

void row_stats_ref(const RowStats& p, int64_t r_begin, int64_t r_end) {
  const int64_t c = p.cols;
  const float log_c = c > 1 ? std::log(static_cast<float>(c)) : 1.f;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const float* x = p.logits + r * c;
    float m1 = -std::numeric_limits<float>::infinity(), m2 = m1;
    int64_t arg = 0;
    for (int64_t i = 0; i < c; ++i) {
      const float v = x[i];
      if (v > m1) {
        m2 = m1;
        m1 = v;
        arg = i;
      } else if (v > m2) {
        m2 = v;
      }
    }
    // Scaling by a positive 1/T keeps the order, so the top two scale with it.
    const float m = m1 * p.inv_temperature;
    float s = 0.f, w = 0.f;
    for (int64_t i = 0; i < c; ++i) {
      const float d = x[i] * p.inv_temperature - m;
      const float e = std::exp(d);
      s += e;
      // A -inf logit (a masked class) has e = 0 and adds nothing (0 * -inf would be NaN).
      if (e > 0.f) w += e * d;
    }
    // H = log S - sum(e d) / S, with p_i = e_i / S.
    const float h = std::log(s) - w / s;
    p.max_prob[r] = 1.f / s;
    p.entropy_conf[r] = c > 1 ? 1.f - h / log_c : 1.f;
    p.margin[r] = (1.f - std::exp(m2 * p.inv_temperature - m)) / s;
    p.argmax[r] = arg;
  }
}

}  // namespace wattwise::exit::kernels
