// Entry points of the sparse Linear kernels: checks, the transposed input, dispatch, threads.
#include "wattwise/prune/sparse_linear.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/entry.h"
#include "wattwise/common/cpu.h"
#include "wattwise/common/thread_pool.h"

namespace wattwise::prune {

using detail::check_dims;
using detail::check_ptr;

namespace {

// Sparse rows are cheap: smaller chunks than the dense kernels' still pay for a thread.
int64_t prune_grain(int64_t work_per_row) { return detail::row_grain(work_per_row, 1 << 15, 4); }

// Batch > 1 reads each stored weight once for all rows of x: that needs x column-major,
// padded to whole 8-float vectors.
std::vector<float> transpose_padded(const float* x, int64_t m, int64_t k, int64_t mp) {
  std::vector<float> xt(static_cast<size_t>(k * mp), 0.f);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    for (int64_t j = 0; j < k; ++j) xt[j * mp + i] = row[j];
  }
  return xt;
}

}  // namespace

void check_row_ptr(const int32_t* row_ptr, int64_t n, int64_t nnz) {
  if (n < 0) throw std::invalid_argument("check_row_ptr: n must be >= 0, got " + std::to_string(n));
  check_ptr("check_row_ptr", "row_ptr", row_ptr, 1);
  if (row_ptr[0] != 0) {
    throw std::invalid_argument("row_ptr[0] must be 0, got " + std::to_string(row_ptr[0]));
  }
  for (int64_t r = 0; r < n; ++r) {
    if (row_ptr[r + 1] < row_ptr[r]) {
      throw std::invalid_argument("row_ptr decreases at row " + std::to_string(r));
    }
  }
  if (row_ptr[n] != nnz) {
    throw std::invalid_argument("row_ptr[-1]=" + std::to_string(row_ptr[n]) +
                                " must equal the number of stored values " + std::to_string(nnz));
  }
}

// Fills y with the bias (or zeros): the product with an empty input dimension.
void bias_only(const float* bias, int64_t m, int64_t n, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) y[i * n + r] = bias != nullptr ? bias[r] : 0.f;
}

void check_csr(const int32_t* row_ptr, const uint16_t* col, int64_t n, int64_t k) {
  if (n < 0 || k < 0 || k > kCsrMaxCols) {
    throw std::invalid_argument("check_csr: need n >= 0 and 0 <= k <= 65536, got n=" +
                                std::to_string(n) + " k=" + std::to_string(k));
  }
  check_ptr("check_csr", "row_ptr", row_ptr, 1);
  if (row_ptr[0] != 0) {
    throw std::invalid_argument("check_csr: row_ptr[0] must be 0, got " +
                                std::to_string(row_ptr[0]));
  }
  for (int64_t r = 0; r < n; ++r) {
    if (row_ptr[r + 1] < row_ptr[r]) {
      throw std::invalid_argument("check_csr: row_ptr decreases at row " + std::to_string(r));
    }
  }
  check_ptr("check_csr", "col", col, row_ptr[n]);
  for (int64_t j = 0; j < row_ptr[n]; ++j) {
    if (col[j] >= k) {
      throw std::invalid_argument("check_csr: column index " + std::to_string(col[j]) +
                                  " out of range for in_features=" + std::to_string(k));
    }
  }
}

void check_nm(const uint8_t* idx, int64_t n, int64_t k, int64_t nn, int64_t mm) {
  if (n < 0 || k < 0) {
    throw std::invalid_argument("check_nm: dimensions must be >= 0, got n=" + std::to_string(n) +
                                " k=" + std::to_string(k));
  }
  if (mm < 1 || mm > 255 || nn < 1 || nn > mm) {
    throw std::invalid_argument("check_nm: need 1 <= N <= M <= 255, got N=" + std::to_string(nn) +
                                " M=" + std::to_string(mm));
  }
  if (k % mm != 0) {
    throw std::invalid_argument("check_nm: in_features=" + std::to_string(k) +
                                " is not a multiple of M=" + std::to_string(mm));
  }
  const int64_t count = n * (k / mm) * nn;
  check_ptr("check_nm", "idx", idx, count);
  for (int64_t j = 0; j < count; ++j) {
    if (idx[j] >= mm) {
      throw std::invalid_argument("check_nm: index " + std::to_string(idx[j]) +
                                  " out of range for M=" + std::to_string(mm));
    }
  }
}

void csr_linear(const float* x, int64_t m, int64_t k, const int32_t* row_ptr, const uint16_t* col,
                const float* val, const float* bias, int64_t n, float* y) {
  check_dims("csr_linear", n, k, m);
  if (k > kCsrMaxCols) {
    throw std::invalid_argument("csr_linear: in_features must be <= 65536, got " +
                                std::to_string(k));
  }
  check_ptr("csr_linear", "x", x, m * k);
  check_ptr("csr_linear", "row_ptr", row_ptr, 1);
  check_row_ptr(row_ptr, n, row_ptr[n]);
  check_ptr("csr_linear", "col", col, row_ptr[n]);
  check_ptr("csr_linear", "val", val, row_ptr[n]);
  check_ptr("csr_linear", "y", y, m * n);
  if (m == 0 || n == 0) return;
  if (k == 0) return bias_only(bias, m, n, y);
  const int64_t mp = m == 1 ? 1 : (m + 7) / 8 * 8;
  std::vector<float> xt;
  if (m > 1) xt = transpose_padded(x, m, k, mp);
  const kernels::Csr p{m == 1 ? x : xt.data(), k, m, mp, row_ptr, col, val, bias, n, y};
  const bool avx2 = active_simd() == SimdLevel::kAvx2;
  const int64_t nnz_per_row = n > 0 ? row_ptr[n] / n + 1 : 1;
  parallel_for(n, prune_grain(nnz_per_row * mp), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::csr_linear_avx2(p, b, e), kernels::csr_linear_ref(p, b, e));
  });
}

void nm_linear(const float* x, int64_t m, int64_t k, const float* val, const uint8_t* idx,
               int64_t nn, int64_t mm, const float* bias, int64_t n, float* y) {
  check_dims("nm_linear", n, k, m);
  if (mm < 1 || mm > 255 || nn < 1 || nn > mm || k % mm != 0) {
    throw std::invalid_argument(
        "nm_linear: need 1 <= N <= M <= 255 and M dividing in_features, got N=" +
        std::to_string(nn) + " M=" + std::to_string(mm) + " in_features=" + std::to_string(k));
  }
  const int64_t kept = k / mm * nn;
  check_ptr("nm_linear", "x", x, m * k);
  check_ptr("nm_linear", "val", val, n * kept);
  check_ptr("nm_linear", "idx", idx, n * kept);
  check_ptr("nm_linear", "y", y, m * n);
  if (m == 0 || n == 0) return;
  const int64_t mp = m == 1 ? 1 : (m + 7) / 8 * 8;
  std::vector<float> xt;
  if (m > 1) xt = transpose_padded(x, m, k, mp);
  const kernels::Nm p{m == 1 ? x : xt.data(), m, mp, val, idx, nn, mm, kept, bias, n, y};
  const bool avx2 = active_simd() == SimdLevel::kAvx2;
  parallel_for(n, prune_grain((kept + 1) * mp), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::nm_linear_avx2(p, b, e), kernels::nm_linear_ref(p, b, e));
  });
}

}  // namespace wattwise::prune
