// int8 x int8 and half-precision weight kernels: every AVX2 kernel against its _ref on
// sizes that hit the 32-byte and tile tails and on empty dimensions, the worst case for
// vpmaddubsw saturation, and the entry points' argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "random_data.h"
#include "wattwise/common/cpu.h"
#include "wattwise/quant/dynamic_int8.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::quant {
namespace {

using wattwise::testing::rand_i8;
using wattwise::testing::randn;

bool have_avx2() { return detected_simd() >= SimdLevel::kAvx2; }
bool have_vnni() { return detected_simd() >= SimdLevel::kAvx512Vnni; }

const int64_t kRows[] = {0, 1, 2, 5, 8, 9, 16, 20, 33};
const int64_t kCols[] = {0, 1, 2, 5, 8, 9, 16, 20, 28, 32, 33, 64, 100};
const int64_t kBatch[] = {0, 1, 2, 3, 5};

// Exact integer reference for y with given activations/weights.
std::vector<float> gemm_exact(const kernels::Int8Gemm& p) {
  std::vector<float> y(p.m * p.n);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      int64_t acc = 0;
      for (int64_t t = 0; t < p.k; ++t) acc += int64_t{p.xq[i * p.k + t]} * p.q[j * p.k + t];
      if (p.xzp != nullptr) acc -= int64_t{p.xzp[i]} * p.wsum[j];
      y[i * p.n + j] = static_cast<float>(acc) * (p.xscales[i] * p.wscales[j]) +
                       (p.bias != nullptr ? p.bias[j] : 0.f);
    }
  }
  return y;
}

class Int8GemmKernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(Int8GemmKernels, RefIsExactAndAvx2MatchesRef) {
  const auto [n, k] = GetParam();
  const std::vector<int8_t> q = rand_i8(n * k, 1, -127, 127);
  std::vector<int32_t> wsum(n);
  int8_row_sums(q.data(), n, k, wsum.data());
  const std::vector<float> ws = randn(n, 2), bias = randn(n, 3);
  for (int64_t m : kBatch) {
    const std::vector<int8_t> xq = rand_i8(m * k, 4, -128, 127);
    const std::vector<float> xs = randn(m, 5);
    const std::vector<int32_t> xzp(m, -37);
    for (const int32_t* zp :
         {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(xzp.data())}) {
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        const kernels::Int8Gemm base{xq.data(), xs.data(),   zp, m, k,      q.data(),
                                     ws.data(), wsum.data(), b,  n, nullptr};
        std::vector<float> y_ref(m * n, -1.f);
        kernels::Int8Gemm p = base;
        p.y = y_ref.data();
        kernels::int8_gemm_ref(p, 0, n);
        EXPECT_EQ(y_ref, gemm_exact(p));
#ifdef WATTWISE_HAVE_AVX2_KERNELS
        if (have_avx2()) {
          std::vector<float> y_avx(m * n, -2.f);
          p.y = y_avx.data();
          kernels::int8_gemm_avx2(p, 0, n);
          EXPECT_EQ(y_avx, y_ref) << "m=" << m;
        }
#endif
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, Int8GemmKernels,
                         ::testing::Combine(::testing::ValuesIn(kRows),
                                            ::testing::ValuesIn(kCols)));

// The largest pair sums vpmaddubsw can see: |xq| = 128 against |q| = 127 with equal signs,
// where a plain u8 x s8 product with a +128 offset would saturate int16.
TEST(Int8Gemm, ExtremeValuesDoNotSaturate) {
  const int64_t m = 3, n = 5, k = 96;
  std::vector<int8_t> xq(m * k), q(n * k);
  for (int64_t i = 0; i < m * k; ++i) xq[i] = (i / k) == 1 ? int8_t{127} : int8_t{-128};
  for (int64_t i = 0; i < n * k; ++i) q[i] = (i / k) % 2 == 0 ? int8_t{-127} : int8_t{127};
  const std::vector<float> xs(m, 1.f), ws(n, 1.f);
  std::vector<float> y(m * n);
  kernels::Int8Gemm p{xq.data(), xs.data(), nullptr, m, k,       q.data(),
                      ws.data(), nullptr,   nullptr, n, y.data()};
  const std::vector<float> want = gemm_exact(p);
  EXPECT_FLOAT_EQ(want[0], 128.f * 127.f * k);
  kernels::int8_gemm_ref(p, 0, n);
  EXPECT_EQ(y, want);
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  if (have_avx2()) {
    std::fill(y.begin(), y.end(), 0.f);
    kernels::int8_gemm_avx2(p, 0, n);
    EXPECT_EQ(y, want);
  }
#endif
}

// The VNNI kernels (packed GEMM and row-major GEMV): activation rows across whole register
// tiles and their tails, inputs that are not a multiple of four or of the 64-input step,
// partial 32-channel panels and 8-channel GEMV tiles.
class Int8GemmVnni : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(Int8GemmVnni, MatchesRefExactly) {
  if (!have_vnni()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI: the AVX2 kernel runs instead";
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  const auto [n, k] = GetParam();
  // Full int8 ranges on both sides: vpdpbusd has no int16 step, so -128 weights are exact.
  const std::vector<int8_t> q = rand_i8(n * k, 21, -128, 127);
  std::vector<int32_t> wsum(n);
  int8_row_sums(q.data(), n, k, wsum.data());
  const std::vector<float> ws = randn(n, 22), bias = randn(n, 23);
  for (int64_t m : {1, 4, 11, 12, 13, 25, 40}) {
    const std::vector<int8_t> xq = rand_i8(m * k, 24, -128, 127);
    const std::vector<float> xs = randn(m, 25);
    std::vector<int32_t> xzp(m);
    for (int64_t i = 0; i < m; ++i) xzp[i] = static_cast<int32_t>(i * 37 % 256) - 128;
    for (const int32_t* zp :
         {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(xzp.data())}) {
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        kernels::Int8Gemm p{xq.data(), xs.data(),   zp, m, k,      q.data(),
                            ws.data(), wsum.data(), b,  n, nullptr};
        std::vector<float> y_ref(m * n, -1.f), y_vnni(m * n, -2.f);
        p.y = y_ref.data();
        kernels::int8_gemm_ref(p, 0, n);
        p.y = y_vnni.data();
        kernels::int8_gemm_avx512vnni(p, 0, n);
        ASSERT_EQ(y_vnni, y_ref) << "m=" << m;
        std::vector<int32_t> xsum(m);
        int8_row_sums(xq.data(), m, k, xsum.data());
        std::vector<float> y_gemv(m * n, -4.f);
        p.y = y_gemv.data();
        kernels::int8_gemv_avx512vnni(p, xsum.data(), 0, n);
        ASSERT_EQ(y_gemv, y_ref) << "GEMV, m=" << m;
        // A channel range that starts inside the matrix leaves the other outputs alone.
        if (n > 40) {
          std::vector<float> y_part(m * n, -3.f);
          p.y = y_part.data();
          kernels::int8_gemm_avx512vnni(p, 32, n - 3);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              const float want = (j >= 32 && j < n - 3) ? y_ref[i * n + j] : -3.f;
              ASSERT_EQ(y_part[i * n + j], want) << "i=" << i << " j=" << j;
            }
          }
        }
      }
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, Int8GemmVnni,
                         ::testing::Combine(::testing::Values(1, 16, 31, 32, 33, 77, 100),
                                            ::testing::Values(0, 1, 3, 4, 7, 64, 65, 130, 257)));

// The AVX2 packed GEMM on the same sizes: weights in [-127, 127] (the sign transfer's range),
// activations in the full int8 range, zero points and bias.
class Int8GemmPackedAvx2 : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(Int8GemmPackedAvx2, MatchesRefExactly) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [n, k] = GetParam();
  const std::vector<int8_t> q = rand_i8(n * k, 41, -127, 127);
  std::vector<int32_t> wsum(n);
  int8_row_sums(q.data(), n, k, wsum.data());
  const std::vector<float> ws = randn(n, 42), bias = randn(n, 43);
  for (int64_t m : {1, 4, 11, 12, 13, 25, 40}) {
    const std::vector<int8_t> xq = rand_i8(m * k, 44, -128, 127);
    const std::vector<float> xs = randn(m, 45);
    std::vector<int32_t> xzp(m);
    for (int64_t i = 0; i < m; ++i) xzp[i] = static_cast<int32_t>(i * 53 % 256) - 128;
    const int64_t tiles = (m + kernels::kVnniRows - 1) / kernels::kVnniRows;
    std::vector<int32_t> a(tiles * kernels::kVnniRows * ((k + 3) / 4), 5), a_abs(a.size(), 6);
    // Two packing calls split at a tile boundary, as the threaded entry point makes them.
    const int64_t tile_split = std::min<int64_t>(m, kernels::kVnniRows);
    kernels::int8_pack_rows_avx2(xq.data(), m, k, 0, tile_split, a.data(), a_abs.data());
    kernels::int8_pack_rows_avx2(xq.data(), m, k, tile_split, m, a.data(), a_abs.data());
    for (const int32_t* zp :
         {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(xzp.data())}) {
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        kernels::Int8Gemm p{xq.data(), xs.data(),   zp, m, k,      q.data(),
                            ws.data(), wsum.data(), b,  n, nullptr};
        std::vector<float> y_ref(m * n, -1.f), y(m * n, -2.f);
        p.y = y_ref.data();
        kernels::int8_gemm_ref(p, 0, n);
        p.y = y.data();
        // Two row ranges split at a multiple of four, as the threaded entry point makes them.
        const int64_t split = std::min<int64_t>(m, 8);
        kernels::int8_gemm_avx2_packed(p, a.data(), a_abs.data(), 0, split, 0, n);
        kernels::int8_gemm_avx2_packed(p, a.data(), a_abs.data(), split, m, 0, n);
        ASSERT_EQ(y, y_ref) << "m=" << m;
      }
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, Int8GemmPackedAvx2,
                         ::testing::Combine(::testing::Values(1, 16, 31, 32, 33, 77, 100),
                                            ::testing::Values(0, 1, 3, 4, 7, 32, 33, 130, 257)));

// Per-token quantization into the packed rows equals the reference quantizer followed by the
// packing, including NaN (quantized to -127 and left out of the scale) and infinity.
TEST(Int8QuantizeRowsVnni, MatchesReferenceThenPacking) {
  if (!have_vnni()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI: the packing is never used";
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  for (const auto& [m, k] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {5, 3}, {12, 16}, {13, 17}, {30, 64}, {25, 130}, {3, 0}}) {
    std::vector<float> x = randn(m * k, 27, 2.f);
    if (m * k > 3) {
      x[1] = std::numeric_limits<float>::quiet_NaN();
      x[2] = -std::numeric_limits<float>::quiet_NaN();
    }
    if (m > 1 && k > 0) x[k] = std::numeric_limits<float>::infinity();
    if (m > 2) std::fill(x.begin() + 2 * k, x.begin() + 3 * k, 0.f);  // an all-zero row
    std::vector<int8_t> xq(m * k);
    std::vector<float> xs_ref(m), xs(m, -1.f);
    kernels::int8_quantize_ref(x.data(), k, 0, m, xq.data(), xs_ref.data());
    const int64_t size =
        (m + kernels::kVnniRows - 1) / kernels::kVnniRows * kernels::kVnniRows * ((k + 3) / 4);
    std::vector<int32_t> a_ref(size, 7), a(size, 9), sum_ref(m), sum(m);
    kernels::int8_pack_rows_vnni(xq.data(), m, k, 0, m, a_ref.data(), sum_ref.data());
    // Two calls, split at a tile boundary, as the threaded entry point makes them.
    const int64_t split = std::min<int64_t>(m, kernels::kVnniRows);
    kernels::int8_quantize_rows_vnni(x.data(), m, k, 0, split, a.data(), sum.data(), xs.data());
    kernels::int8_quantize_rows_vnni(x.data(), m, k, split, m, a.data(), sum.data(), xs.data());
    EXPECT_EQ(a, a_ref) << "m=" << m << " k=" << k;
    EXPECT_EQ(sum, sum_ref);
    EXPECT_EQ(xs, xs_ref);
  }
#endif
}

// The packed weight layout, element by element: one definition, two packers (VNNI and AVX2),
// through their transposing fast paths (16 or 8 channels at a time) and scalar edges.
using PackFn = void (*)(const int8_t*, int64_t, int64_t, int64_t, uint8_t*);

void expect_panel_layout(PackFn pack) {
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {32, 32}, {32, 64}, {64, 256}, {45, 130}, {7, 5}, {33, 1}, {40, 0}}) {
    const std::vector<int8_t> q = rand_i8(n * k, 26, -128, 127);
    const int64_t groups = (k + 3) / 4, panels = (n + 31) / 32;
    std::vector<uint8_t> packed(panels * groups * 128, 0);
    pack(q.data(), k, 0, n, packed.data());
    for (int64_t pi = 0; pi < panels; ++pi) {
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t c = 0; c < 32; ++c) {
          for (int64_t b = 0; b < 4; ++b) {
            const int64_t j = pi * 32 + c, t = 4 * g + b;
            const int want = (j < n && t < k) ? q[j * k + t] + 128 : 128;
            ASSERT_EQ(packed[(pi * groups + g) * 128 + 4 * c + b], want)
                << "n=" << n << " k=" << k << " channel " << j << " input " << t;
          }
        }
      }
    }
  }
}

TEST(Int8PackPanels, VnniLayoutMatchesDefinition) {
  if (!have_vnni()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI: the packing is never used";
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  expect_panel_layout(&kernels::int8_pack_vnni);
#endif
}

TEST(Int8PackPanels, Avx2LayoutMatchesDefinition) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  expect_panel_layout(&kernels::int8_pack_panels_avx2);
#endif
}

class AffineQuantize : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(AffineQuantize, Avx2MatchesRef) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [m, k] = GetParam();
  std::vector<float> x = randn(m * k, 6, 3.f);
  if (!x.empty()) x[0] = std::numeric_limits<float>::quiet_NaN();
  if (x.size() > 1) x[1] = std::numeric_limits<float>::infinity();
  for (const auto& [zp, lo, hi, shift] : std::vector<std::tuple<int, int, int, int>>{
           {0, -128, 127, 0}, {7, -128, 127, 0}, {128, 0, 255, 128}, {3, 0, 255, 128}}) {
    std::vector<int8_t> a(m * k, 1), b(m * k, 2);
    kernels::quantize_affine_ref(x.data(), k, 0, m, 1.f / 0.05f, zp, lo, hi, shift, a.data());
    kernels::quantize_affine_avx2(x.data(), k, 0, m, 1.f / 0.05f, zp, lo, hi, shift, b.data());
    EXPECT_EQ(a, b);
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, AffineQuantize,
                         ::testing::Combine(::testing::ValuesIn(kBatch),
                                            ::testing::ValuesIn(kCols)));

class HalfKernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int>> {};

TEST_P(HalfKernels, Avx2MatchesRef) {
  if (!have_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the _ref path runs";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [n, k, fmt] = GetParam();
  const auto format = static_cast<HalfFormat>(fmt);
  const std::vector<float> w = randn(n * k, 7);
  std::vector<uint16_t> h_ref(n * k), h_avx(n * k);
  kernels::half_quantize_ref(w.data(), k, format, 0, n, h_ref.data());
  kernels::half_quantize_avx2(w.data(), k, format, 0, n, h_avx.data());
  EXPECT_EQ(h_ref, h_avx);
  std::vector<float> back(n * k);
  half_dequantize(h_ref.data(), n, k, format, back.data());
  const float rel = format == HalfFormat::kFloat16 ? 1e-3f : 8e-3f;
  for (int64_t i = 0; i < n * k; ++i) ASSERT_NEAR(back[i], w[i], rel * std::fabs(w[i]) + 1e-6f);

  const std::vector<float> bias = randn(n, 8);
  for (int64_t m : kBatch) {
    const std::vector<float> x = randn(m * k, 9);
    std::vector<float> y_ref(m * n, -1.f), y_avx(m * n, -2.f);
    kernels::half_linear_ref({x.data(), m, k, h_ref.data(), format, bias.data(), n, y_ref.data()},
                             0, n);
    kernels::half_linear_avx2({x.data(), m, k, h_ref.data(), format, bias.data(), n, y_avx.data()},
                              0, n);
    for (int64_t i = 0; i < m * n; ++i) {
      ASSERT_NEAR(y_avx[i], y_ref[i],
                  1e-4f * std::sqrt(static_cast<float>(k) + 1.f) * (1.f + std::fabs(y_ref[i])));
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, HalfKernels,
                         ::testing::Combine(::testing::ValuesIn(kRows), ::testing::ValuesIn(kCols),
                                            ::testing::Values(0, 1)));

// The threaded entry points at every kernel level this CPU has, on row counts that take the
// GEMV and the packed-GEMM paths, against the scalar reference composition. Dynamic and
// static (quint8 with a zero point) activations.
TEST(Int8DynamicLinear, EntryPointsMatchReferenceCompositionAtEveryLevel) {
  const int64_t k = 300, n = 130;
  const std::vector<float> w = randn(n * k, 10), bias = randn(n, 12);
  std::vector<int8_t> q(n * k);
  std::vector<float> ws(n);
  std::vector<int32_t> wsum(n);
  int8_quantize(w.data(), n, k, q.data(), ws.data());
  int8_row_sums(q.data(), n, k, wsum.data());
  std::vector<std::string> levels = {"scalar"};
  if (detected_simd() >= SimdLevel::kAvx2) levels.push_back("avx2");
  if (detected_simd() >= SimdLevel::kAvx512Vnni) levels.push_back("avx512vnni");
  for (const int64_t m : {1, 7, 40}) {
    const std::vector<float> x = randn(m * k, 11);
    std::vector<int8_t> xq(m * k);
    std::vector<float> xs(m), want(m * n), want_static(m * n);
    kernels::int8_quantize_ref(x.data(), k, 0, m, xq.data(), xs.data());
    kernels::int8_gemm_ref({xq.data(), xs.data(), nullptr, m, k, q.data(), ws.data(), nullptr,
                            bias.data(), n, want.data()},
                           0, n);
    // Static: scale 0.02, zero point 131 in [0, 255], stored shifted by 128.
    kernels::quantize_affine_ref(x.data(), k, 0, m, 1.f / 0.02f, 131, 0, 255, 128, xq.data());
    const std::vector<float> xs_static(m, 0.02f);
    const std::vector<int32_t> xzp(m, 3);
    kernels::int8_gemm_ref({xq.data(), xs_static.data(), xzp.data(), m, k, q.data(), ws.data(),
                            wsum.data(), bias.data(), n, want_static.data()},
                           0, n);
    for (const std::string& level : levels) {
      set_simd(level);
      std::vector<float> y(m * n, -1.f);
      int8_dynamic_linear(x.data(), m, k, q.data(), ws.data(), bias.data(), n, y.data());
      EXPECT_EQ(y, want) << level << " m=" << m;
      std::fill(y.begin(), y.end(), -1.f);
      int8_static_linear(x.data(), m, k, 0.02f, 131, 0, 255, q.data(), ws.data(), wsum.data(),
                         bias.data(), n, y.data());
      EXPECT_EQ(y, want_static) << level << " m=" << m;
    }
    set_simd("auto");
  }
}

// Empty dimensions with enough rows for the packed path: nothing to compute (n = 0), or
// outputs that are the bias alone (k = 0).
TEST(Int8DynamicLinear, EmptyDimensionsAtEveryLevel) {
  for (const char* level : {"scalar", "avx2", "avx512vnni"}) {
    try {
      set_simd(level);
    } catch (const std::invalid_argument&) {
      continue;  // not on this CPU
    }
    const int64_t m = 40;
    const std::vector<float> x = randn(m * 8, 30), bias = randn(5, 31);
    std::vector<float> y(m * 5, -1.f);
    int8_dynamic_linear(x.data(), m, 8, nullptr, nullptr, nullptr, 0, nullptr);
    const std::vector<int8_t> q;
    const std::vector<float> ws(5, 1.f);
    int8_dynamic_linear(nullptr, m, 0, q.data(), ws.data(), bias.data(), 5, y.data());
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < 5; ++j) ASSERT_EQ(y[i * 5 + j], bias[j]) << level;
    }
  }
  set_simd("auto");
}

TEST(Int8StaticLinear, RejectsBadQParams) {
  EXPECT_THROW(check_static_qparams(0.f, 0, -128, 127), std::invalid_argument);
  EXPECT_THROW(check_static_qparams(std::nanf(""), 0, -128, 127), std::invalid_argument);
  EXPECT_THROW(check_static_qparams(0.1f, 300, 0, 255), std::invalid_argument);
  EXPECT_THROW(check_static_qparams(0.1f, 0, -200, 127), std::invalid_argument);
  EXPECT_THROW(check_static_qparams(0.1f, 0, 5, 5), std::invalid_argument);
  EXPECT_NO_THROW(check_static_qparams(0.1f, 128, 0, 255));
  EXPECT_THROW(int8_dynamic_linear(nullptr, 1, 4, nullptr, nullptr, nullptr, 1, nullptr),
               std::invalid_argument);
  EXPECT_THROW(int8_dynamic_linear(nullptr, -1, 4, nullptr, nullptr, nullptr, 1, nullptr),
               std::invalid_argument);
}

// A quint8 activation at zero point 128 is level 0 after the shift: the result must equal
// the dequantized float product exactly (integers, small k).
TEST(Int8StaticLinear, AffineMatchesDequantizedProduct) {
  const int64_t m = 4, k = 40, n = 9;
  const std::vector<float> w = randn(n * k, 13);
  std::vector<int8_t> q(n * k);
  std::vector<float> ws(n);
  std::vector<int32_t> wsum(n);
  int8_quantize(w.data(), n, k, q.data(), ws.data());
  int8_row_sums(q.data(), n, k, wsum.data());
  std::vector<float> x(m * k);
  for (int64_t i = 0; i < m * k; ++i) x[i] = 0.5f * static_cast<float>((i * 7) % 41 - 20);
  std::vector<float> y(m * n);
  int8_static_linear(x.data(), m, k, 0.5f, 100, 0, 255, q.data(), ws.data(), wsum.data(), nullptr,
                     n, y.data());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = 0;
      for (int64_t t = 0; t < k; ++t) want += double{x[i * k + t]} * q[j * k + t] * ws[j];
      EXPECT_NEAR(y[i * n + j], want, 1e-3 * (1 + std::fabs(want)));
    }
  }
}

}  // namespace
}  // namespace wattwise::quant
