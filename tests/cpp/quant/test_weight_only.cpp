// Every AVX2 weight-only kernel against its _ref, on sizes that hit SIMD tails and on empty
// dimensions; plus the quantization error bounds of each format.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "random_data.h"
#include "wattwise/common/cpu.h"
#include "wattwise/common/half.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::quant {
namespace {

using wattwise::testing::randn;

bool have_avx2() { return detected_simd() >= SimdLevel::kAvx2; }

// Sum of |a_i| |b_i| bounds the rounding error of a dot product of length k.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << "at " << i;
  }
}

// Sizes chosen to hit the 8-wide vector tails, the 2/4/8-row tiles and their remainders.
const int64_t kRows[] = {0, 1, 2, 5, 8, 9, 16, 20, 33};
const int64_t kCols[] = {0, 1, 2, 5, 8, 9, 16, 20, 28, 32, 33, 100};
const int64_t kBatch[] = {0, 1, 2, 3, 4, 5, 7};

class Int8Kernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(Int8Kernels, Avx2MatchesRef) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [n, k] = GetParam();
  const std::vector<float> w = randn(n * k, 1);
  std::vector<int8_t> q_ref(n * k), q_avx(n * k);
  std::vector<float> s_ref(n), s_avx(n);
  kernels::int8_quantize_ref(w.data(), k, 0, n, q_ref.data(), s_ref.data());
  kernels::int8_quantize_avx2(w.data(), k, 0, n, q_avx.data(), s_avx.data());
  EXPECT_EQ(q_ref, q_avx);
  EXPECT_EQ(s_ref, s_avx);

  std::vector<float> d_ref(n * k), d_avx(n * k);
  kernels::int8_dequantize_ref(q_ref.data(), s_ref.data(), k, 0, n, d_ref.data());
  kernels::int8_dequantize_avx2(q_ref.data(), s_ref.data(), k, 0, n, d_avx.data());
  EXPECT_EQ(d_ref, d_avx);

  const std::vector<float> bias = randn(n, 3);
  for (int64_t m : kBatch) {
    const std::vector<float> x = randn(m * k, 2);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      std::vector<float> y_ref(m * n, -1.f), y_avx(m * n, -2.f);
      kernels::int8_linear_ref({x.data(), m, k, q_ref.data(), s_ref.data(), b, n, y_ref.data()}, 0,
                               n);
      kernels::int8_linear_avx2({x.data(), m, k, q_ref.data(), s_ref.data(), b, n, y_avx.data()}, 0,
                                n);
      expect_close(y_avx, y_ref, 1e-4f * std::sqrt(static_cast<float>(k) + 1.f));
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, Int8Kernels,
                         ::testing::Combine(::testing::ValuesIn(kRows),
                                            ::testing::ValuesIn(kCols)));

class Int4Kernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {
};  // n, groups, g

TEST_P(Int4Kernels, Avx2MatchesRef) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [n, groups, g] = GetParam();
  const int64_t k = groups * g;
  const std::vector<float> w = randn(n * k, 4);
  std::vector<uint8_t> p_ref(n * k / 2), p_avx(n * k / 2);
  std::vector<uint16_t> s_ref(n * groups), s_avx(n * groups);
  kernels::int4_quantize_ref(w.data(), k, g, 0, n, p_ref.data(), s_ref.data());
  kernels::int4_quantize_avx2(w.data(), k, g, 0, n, p_avx.data(), s_avx.data());
  EXPECT_EQ(p_ref, p_avx);
  EXPECT_EQ(s_ref, s_avx);

  std::vector<float> d_ref(n * k), d_avx(n * k);
  kernels::int4_dequantize_ref(p_ref.data(), s_ref.data(), k, g, 0, n, d_ref.data());
  kernels::int4_dequantize_avx2(p_ref.data(), s_ref.data(), k, g, 0, n, d_avx.data());
  EXPECT_EQ(d_ref, d_avx);

  const std::vector<float> bias = randn(n, 6);
  for (int64_t m : kBatch) {
    const std::vector<float> x = randn(m * k, 5);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      std::vector<float> y_ref(m * n, -1.f), y_avx(m * n, -2.f);
      kernels::int4_linear_ref({x.data(), m, k, p_ref.data(), s_ref.data(), g, b, n, y_ref.data()},
                               0, n);
      kernels::int4_linear_avx2({x.data(), m, k, p_ref.data(), s_ref.data(), g, b, n, y_avx.data()},
                                0, n);
      expect_close(y_avx, y_ref, 1e-4f * std::sqrt(static_cast<float>(k) + 1.f));
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, Int4Kernels,
                         ::testing::Combine(::testing::ValuesIn(kRows),
                                            ::testing::Values(0, 1, 2, 3),
                                            ::testing::Values(32, 64, 128)));

// Relative error of the dequantized weights, per format (the formats' own error bounds).
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    den += b[i] * static_cast<double>(b[i]);
  }
  return std::sqrt(num / den);
}

TEST(WeightOnlyFormat, ErrorBounds) {
  const int64_t n = 64, k = 256;
  const std::vector<float> w = randn(n * k, 7);
  std::vector<int8_t> q8(n * k);
  std::vector<float> s8(n), d(n * k);
  int8_quantize(w.data(), n, k, q8.data(), s8.data());
  int8_dequantize(q8.data(), s8.data(), n, k, d.data());
  EXPECT_LT(relative_error(d, w), 0.01);
  for (int64_t g : {32, 64, 128}) {
    std::vector<uint8_t> p(n * k / 2);
    std::vector<uint16_t> s4(n * k / g);
    int4_quantize(w.data(), n, k, g, p.data(), s4.data());
    int4_dequantize(p.data(), s4.data(), n, k, g, d.data());
    EXPECT_LT(relative_error(d, w), 0.12) << "group " << g;
  }
}

TEST(WeightOnlyFormat, Int4LayoutAndExtremes) {
  // One group: input i has value i - 16 scaled; the largest magnitude (-16) is negative,
  // so d = 2 (16 / 8) and q = round(v / 2).
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[i] = static_cast<float>(i - 16);
  std::vector<uint8_t> p(16);
  std::vector<uint16_t> s(1);
  int4_quantize(w.data(), 1, 32, 32, p.data(), s.data());
  EXPECT_EQ(half_to_float(s[0]), 2.f);
  for (int j = 0; j < 16; ++j) {
    const int lo = static_cast<int>(std::nearbyint((j - 16) / 2.f));
    const int hi = std::min(7, static_cast<int>(std::nearbyint((j + 16 - 16) / 2.f)));
    EXPECT_EQ(p[j] & 0xf, lo + 8) << j;
    EXPECT_EQ(p[j] >> 4, hi + 8) << j;
  }
}

TEST(WeightOnlyFormat, ZeroRowsGiveZeroScalesAndOutputs) {
  const int64_t n = 3, k = 64;
  std::vector<float> w(n * k, 0.f), x = randn(k, 9), y(n, 1.f);
  std::vector<int8_t> q(n * k, 1);
  std::vector<float> s(n, 1.f);
  int8_quantize(w.data(), n, k, q.data(), s.data());
  int8_linear(x.data(), 1, k, q.data(), s.data(), nullptr, n, y.data());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(s[i], 0.f);
    EXPECT_EQ(y[i], 0.f);
  }
  std::vector<uint8_t> p(n * k / 2);
  std::vector<uint16_t> s4(n * 2, 1);
  int4_quantize(w.data(), n, k, 32, p.data(), s4.data());
  for (uint16_t v : s4) EXPECT_EQ(v, 0);
  for (uint8_t b : p) EXPECT_EQ(b, 0x88);
}

TEST(WeightOnlyFormat, ScalarAndAvx2DispatchAgree) {
  const int64_t n = 37, k = 96, m = 3;
  const std::vector<float> w = randn(n * k, 11), x = randn(m * k, 12);
  std::vector<uint8_t> p(n * k / 2);
  std::vector<uint16_t> s(n * 3);
  int4_quantize(w.data(), n, k, 32, p.data(), s.data());
  std::vector<float> y_auto(m * n), y_scalar(m * n);
  int4_linear(x.data(), m, k, p.data(), s.data(), 32, nullptr, n, y_auto.data());
  set_simd("scalar");
  int4_linear(x.data(), m, k, p.data(), s.data(), 32, nullptr, n, y_scalar.data());
  set_simd("auto");
  expect_close(y_auto, y_scalar, 1e-3f);
}

TEST(WeightOnlyValidation, RejectsBadArguments) {
  std::vector<float> w(64), x(64), y(2);
  std::vector<uint8_t> p(32);
  std::vector<uint16_t> s(2);
  EXPECT_THROW(check_int4_group_size(64, 0), std::invalid_argument);
  EXPECT_THROW(check_int4_group_size(64, 48), std::invalid_argument);
  EXPECT_THROW(check_int4_group_size(96, 64), std::invalid_argument);
  EXPECT_NO_THROW(check_int4_group_size(0, 32));
  EXPECT_THROW(int4_quantize(w.data(), 1, 64, 48, p.data(), s.data()), std::invalid_argument);
  EXPECT_THROW(int8_linear(x.data(), -1, 64, nullptr, nullptr, nullptr, 1, y.data()),
               std::invalid_argument);
  EXPECT_THROW(int8_linear(x.data(), 1, 64, nullptr, nullptr, nullptr, 1, y.data()),
               std::invalid_argument);
  // Empty problems are valid and touch nothing.
  EXPECT_NO_THROW(int8_linear(nullptr, 0, 0, nullptr, nullptr, nullptr, 0, nullptr));
  EXPECT_NO_THROW(int4_linear(nullptr, 0, 64, nullptr, nullptr, 32, nullptr, 0, nullptr));
}

TEST(WeightOnlyValidation, ZeroInputFeaturesGiveBias) {
  const std::vector<float> bias = {1.f, -2.f, 3.f};
  std::vector<float> y(6, 9.f);
  std::vector<float> s(3, 1.f);
  int8_linear(nullptr, 2, 0, nullptr, s.data(), bias.data(), 3, y.data());
  EXPECT_EQ(y, (std::vector<float>{1.f, -2.f, 3.f, 1.f, -2.f, 3.f}));
}

}  // namespace
}  // namespace wattwise::quant
