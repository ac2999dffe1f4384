// Sparse Linear kernels: AVX2 against _ref and both against a dense product, on odd sizes
// (SIMD tails) and empty dimensions, for CSR16 and N:M.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "wattwise/common/cpu.h"
#include "wattwise/prune/sparse_linear.h"

namespace wattwise::prune {
namespace {

struct Csr {
  std::vector<int32_t> row_ptr{0};
  std::vector<uint16_t> col;
  std::vector<float> val;
};

Csr to_csr(const std::vector<float>& w, int64_t n, int64_t k) {
  Csr c;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      if (w[r * k + j] != 0.f) {
        c.col.push_back(static_cast<uint16_t>(j));
        c.val.push_back(w[r * k + j]);
      }
    }
    c.row_ptr.push_back(static_cast<int32_t>(c.col.size()));
  }
  return c;
}

std::vector<float> dense_ref(const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& b, int64_t m, int64_t k, int64_t n) {
  std::vector<float> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < n; ++r) {
      double acc = b[r];
      for (int64_t j = 0; j < k; ++j) acc += double(x[i * k + j]) * w[r * k + j];
      y[i * n + r] = static_cast<float>(acc);
    }
  }
  return y;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, int64_t k) {
  ASSERT_EQ(got.size(), want.size());
  const float tol = 1e-5f * std::sqrt(static_cast<float>(k) + 1.f) * 4.f;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i])));
}

std::vector<float> transpose_padded(const std::vector<float>& x, int64_t m, int64_t k, int64_t mp) {
  if (m == 1) return x;
  std::vector<float> xt(k * mp, 0.f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) xt[j * mp + i] = x[i * k + j];
  return xt;
}

class CsrKernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(CsrKernels, MatchDenseAndEachOther) {
  const auto [m, k, n] = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k * 10 + n));
  std::normal_distribution<float> dist;
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> w(n * k), x(m * k), b(n);
  for (auto& v : w) v = u(rng) < 0.7f ? 0.f : dist(rng);
  for (auto& v : x) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  const Csr c = to_csr(w, n, k);
  const auto want = dense_ref(x, w, b, m, k, n);
  std::vector<float> y(m * n, -1.f);
  csr_linear(x.data(), m, k, c.row_ptr.data(), c.col.data(), c.val.data(), b.data(), n, y.data());
  expect_close(y, want, k);

  if (m == 0 || n == 0) return;
  const int64_t mp = m == 1 ? 1 : (m + 7) / 8 * 8;
  const auto xt = transpose_padded(x, m, k, mp);
  std::vector<float> y_ref(m * n), y_avx(m * n);
  const kernels::Csr pr{xt.data(),    k,        m, mp,          c.row_ptr.data(), c.col.data(),
                        c.val.data(), b.data(), n, y_ref.data()};
  kernels::csr_linear_ref(pr, 0, n);
  expect_close(y_ref, want, k);
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  if (detected_simd() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU: only _ref runs";
  kernels::Csr pa = pr;
  pa.y = y_avx.data();
  kernels::csr_linear_avx2(pa, 0, n);
  expect_close(y_avx, y_ref, k);
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, CsrKernels,
                         ::testing::Combine(::testing::Values(0, 1, 2, 5, 9, 33),
                                            ::testing::Values(0, 1, 5, 8, 9, 16, 20, 28, 32, 33,
                                                              100),
                                            ::testing::Values(0, 1, 2, 9)));

class NmKernels
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, std::tuple<int64_t, int64_t>>> {
};

TEST_P(NmKernels, MatchDenseAndEachOther) {
  const auto [m, groups, nm] = GetParam();
  const auto [nn, mm] = nm;
  const int64_t k = groups * mm, n = 5, kept = groups * nn;
  std::mt19937 rng(static_cast<uint32_t>(m * 100 + groups * 7 + nn * 3 + mm));
  std::normal_distribution<float> dist;
  std::vector<float> x(m * k), b(n), val(n * kept), w(n * k, 0.f);
  std::vector<uint8_t> idx(n * kept);
  for (auto& v : x) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<int> pos(mm);
      for (int i = 0; i < mm; ++i) pos[i] = i;
      std::shuffle(pos.begin(), pos.end(), rng);
      std::sort(pos.begin(), pos.begin() + nn);
      for (int64_t j = 0; j < nn; ++j) {
        const int64_t at = r * kept + g * nn + j;
        idx[at] = static_cast<uint8_t>(pos[j]);
        val[at] = dist(rng);
        w[r * k + g * mm + pos[j]] = val[at];
      }
    }
  }
  check_nm(idx.data(), n, k, nn, mm);
  const auto want = dense_ref(x, w, b, m, k, n);
  std::vector<float> y(m * n);
  nm_linear(x.data(), m, k, val.data(), idx.data(), nn, mm, b.data(), n, y.data());
  expect_close(y, want, k);
  if (m == 0) return;
  const int64_t mp = m == 1 ? 1 : (m + 7) / 8 * 8;
  const auto xt = transpose_padded(x, m, k, mp);
  std::vector<float> y_ref(m * n), y_avx(m * n);
  const kernels::Nm pr{xt.data(), m,    mp,       val.data(), idx.data(),  nn,
                       mm,        kept, b.data(), n,          y_ref.data()};
  kernels::nm_linear_ref(pr, 0, n);
  expect_close(y_ref, want, k);
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  if (detected_simd() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU: only _ref runs";
  kernels::Nm pa = pr;
  pa.y = y_avx.data();
  kernels::nm_linear_avx2(pa, 0, n);
  expect_close(y_avx, y_ref, k);
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, NmKernels,
    ::testing::Combine(::testing::Values(0, 1, 2, 9, 33), ::testing::Values(0, 1, 2, 5, 9, 16, 33),
                       ::testing::Values(std::make_tuple(2, 4), std::make_tuple(4, 8),
                                         std::make_tuple(1, 4), std::make_tuple(3, 5),
                                         std::make_tuple(1, 2))));

TEST(SparseLinear, RejectsBadStructures) {
  const std::vector<int32_t> rp{0, 2, 1};
  const std::vector<uint16_t> col{0, 1};
  EXPECT_THROW(check_csr(rp.data(), col.data(), 2, 4), std::invalid_argument);
  const std::vector<int32_t> rp2{0, 1, 2};
  const std::vector<uint16_t> col2{0, 7};
  EXPECT_THROW(check_csr(rp2.data(), col2.data(), 2, 4), std::invalid_argument);
  EXPECT_NO_THROW(check_csr(rp2.data(), col2.data(), 2, 8));
  const std::vector<uint8_t> idx{0, 4};
  EXPECT_THROW(check_nm(idx.data(), 1, 4, 2, 4), std::invalid_argument);
  EXPECT_THROW(check_nm(idx.data(), 1, 6, 2, 4), std::invalid_argument);
  EXPECT_THROW(check_nm(idx.data(), 1, 4, 5, 4), std::invalid_argument);
  float y = 0;
  EXPECT_THROW(nm_linear(nullptr, 1, 4, nullptr, nullptr, 2, 4, nullptr, 1, &y),
               std::invalid_argument);
  EXPECT_THROW(check_row_ptr(rp.data(), 2, 1), std::invalid_argument);
  EXPECT_THROW(check_row_ptr(rp2.data(), 2, 3), std::invalid_argument);
  EXPECT_NO_THROW(check_row_ptr(rp2.data(), 2, 2));
}

// The linear kernels clamp indices instead of validating them per call: a malformed structure
// must give finite numbers without touching memory outside x.
TEST(SparseLinear, ClampsOutOfRangeIndices) {
  const std::vector<float> x{1.f, 2.f, 3.f, 4.f};
  const std::vector<int32_t> rp{0, 2};
  const std::vector<uint16_t> col{65535, 1};
  const std::vector<float> val{1.f, 1.f};
  for (int64_t m : {1, 2}) {
    std::vector<float> xm;
    for (int64_t i = 0; i < m; ++i) xm.insert(xm.end(), x.begin(), x.end());
    std::vector<float> y(m, 0.f);
    csr_linear(xm.data(), m, 4, rp.data(), col.data(), val.data(), nullptr, 1, y.data());
    for (float v : y) EXPECT_FLOAT_EQ(v, 4.f + 2.f);  // clamped to the last column
    const std::vector<uint8_t> idx{7, 0};
    const std::vector<float> nv{1.f, 1.f};
    nm_linear(xm.data(), m, 4, nv.data(), idx.data(), 2, 4, nullptr, 1, y.data());
    for (float v : y) EXPECT_FLOAT_EQ(v, 4.f + 1.f);
  }
}

}  // namespace
}  // namespace wattwise::prune
