#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "wattwise/common/cpu.h"

namespace wattwise {
namespace {

TEST(Cpu, DetectedLevelIsConsistentWithFeatures) {
  const CpuFeatures& f = cpu_features();
  if (detected_simd() >= SimdLevel::kAvx2) {
    EXPECT_TRUE(f.avx2 && f.fma && f.f16c);
  }
  if (detected_simd() == SimdLevel::kAvx512Vnni) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni);
  }
  EXPECT_LE(static_cast<int>(active_simd()), static_cast<int>(detected_simd()));
}

TEST(Cpu, SetSimdAcceptsKnownLevelsAndRejectsOthers) {
  set_simd("scalar");
  EXPECT_EQ(active_simd(), SimdLevel::kScalar);
  set_simd("auto");
  EXPECT_EQ(active_simd(), detected_simd());
  EXPECT_THROW(set_simd("avx9000"), std::invalid_argument);
  EXPECT_THROW(set_simd(""), std::invalid_argument);
  if (detected_simd() == SimdLevel::kScalar) {
    EXPECT_THROW(set_simd("avx2"), std::invalid_argument);
  } else {
    set_simd("avx2");
    EXPECT_EQ(active_simd(), SimdLevel::kAvx2);
    set_simd("auto");
  }
  if (detected_simd() < SimdLevel::kAvx512Vnni) {
    EXPECT_THROW(set_simd("avx512vnni"), std::invalid_argument);
  } else {
    set_simd("avx512vnni");
    EXPECT_EQ(active_simd(), SimdLevel::kAvx512Vnni);
    set_simd("auto");
  }
  EXPECT_EQ(active_simd(), detected_simd());
}

TEST(Cpu, CountsArePositive) {
  EXPECT_GE(logical_cpus(), 1);
  EXPECT_GE(physical_cores(), 1);
  EXPECT_LE(physical_cores(), logical_cpus());
  EXPECT_STREQ(simd_name(SimdLevel::kAvx512Vnni), "avx512vnni");
  EXPECT_STREQ(simd_name(SimdLevel::kAvx2), "avx2");
  EXPECT_STREQ(simd_name(SimdLevel::kScalar), "scalar");
}

}  // namespace
}  // namespace wattwise
