// Scalar reference kernels of the sparse Linear formats: obviously correct, used to test the
// AVX2 kernels and on CPUs without AVX2.
#include <algorithm>

#include "wattwise/prune/sparse_linear.h"

namespace wattwise::prune::kernels {
namespace {

// Works for both layouts: xt is [k][mp] (m == 1 gives plain x).
template <class Cols>
void sparse_rows(const float* xt, int64_t m, int64_t mp, const float* bias, int64_t n, float* y,
                 int64_t r_begin, int64_t r_end, Cols cols) {
  for (int64_t r = r_begin; r < r_end; ++r) {
    for (int64_t i = 0; i < m; ++i) {
      float acc = 0.f;
      cols(r, [&](int64_t c, float v) { acc += v * xt[c * mp + i]; });
      y[i * n + r] = acc + (bias != nullptr ? bias[r] : 0.f);
    }
  }
}

}  // namespace

void csr_linear_ref(const Csr& p, int64_t r_begin, int64_t r_end) {
  sparse_rows(p.xt, p.m, p.mp, p.bias, p.n, p.y, r_begin, r_end, [&](int64_t r, auto&& f) {
    for (int32_t j = p.row_ptr[r]; j < p.row_ptr[r + 1]; ++j) {
      f(std::min<int64_t>(p.col[j], p.k - 1), p.val[j]);
    }
  });
}

void nm_linear_ref(const Nm& p, int64_t r_begin, int64_t r_end) {
  sparse_rows(p.xt, p.m, p.mp, p.bias, p.n, p.y, r_begin, r_end, [&](int64_t r, auto&& f) {
    const float* v = p.val + r * p.kept;
    const uint8_t* ix = p.idx + r * p.kept;
    for (int64_t j = 0; j < p.kept; ++j) {
      f((j / p.nn) * p.mm + std::min<int64_t>(ix[j], p.mm - 1), v[j]);
    }
  });
}

}  // namespace wattwise::prune::kernels
