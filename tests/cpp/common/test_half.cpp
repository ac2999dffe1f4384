#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "wattwise/common/half.h"

namespace wattwise {
namespace {

// Every half bit pattern converts to float and back unchanged (NaNs stay NaN).
TEST(Half, RoundTripsAllHalfValues) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    const uint16_t back = float_to_half(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(back))) << h;
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 1.0f / 2048)), 1.0f);  // tie -> even
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 3.0f / 2048)), 1.0f + 4.0f / 2048);
  EXPECT_EQ(float_to_half(65520.f), 0x7c00);  // rounds to +inf
  EXPECT_EQ(half_to_float(float_to_half(65519.f)), 65504.f);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0);  // tie below the smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 1);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(std::numeric_limits<float>::infinity()))));
}

}  // namespace
}  // namespace wattwise
