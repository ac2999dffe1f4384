// Seeded random inputs for the C++ tests: the same seed gives the same data on every run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace wattwise::testing {

inline std::vector<float> randn(size_t count, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(count);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Uniform integers in [lo, hi] as int8.
inline std::vector<int8_t> rand_i8(size_t count, uint32_t seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int8_t> v(count);
  for (auto& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

}  // namespace wattwise::testing
