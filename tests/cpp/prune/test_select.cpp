// The radix select against a full sort, on several tensors, with ties, zeros and empty inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "wattwise/prune/select.h"

namespace wattwise::prune {
namespace {

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b & 0x7fffffffu;
}

// Pruned count and, for every element, whether it is pruned, from the select + mask pair.
std::vector<std::vector<uint8_t>> masks_for(const std::vector<std::vector<float>>& ts, int64_t k) {
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  for (const auto& t : ts) {
    ptrs.push_back(t.data());
    sizes.push_back(static_cast<int64_t>(t.size()));
  }
  const KthMagnitude r = kth_magnitude(ptrs.data(), sizes.data(), ts.size(), k);
  int64_t ties = r.ties;
  std::vector<std::vector<uint8_t>> out;
  for (const auto& t : ts) {
    out.emplace_back(t.size());
    ties = magnitude_mask(t.data(), t.size(), r.threshold_bits, ties, out.back().data());
  }
  EXPECT_EQ(ties, 0);
  return out;
}

class SelectTest : public ::testing::TestWithParam<int> {};

TEST_P(SelectTest, PrunesExactlyTheKSmallest) {
  std::mt19937 rng(GetParam());
  std::normal_distribution<float> dist;
  std::vector<std::vector<float>> ts;
  for (int64_t n : {0, 1, 5, 33, 1000, 20}) {
    std::vector<float> t(n);
    for (auto& v : t) v = dist(rng);
    ts.push_back(t);
  }
  // Ties: repeated values and exact zeros, as in re-pruning an already sparse model.
  for (size_t i = 0; i < ts[4].size(); i += 7) ts[4][i] = 0.f;
  for (size_t i = 0; i < ts[4].size(); i += 11) ts[4][i] = -0.5f;
  std::vector<float> all;
  for (const auto& t : ts) all.insert(all.end(), t.begin(), t.end());
  std::vector<uint32_t> sorted;
  for (float v : all) sorted.push_back(bits_of(v));
  std::sort(sorted.begin(), sorted.end());
  for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{150}, int64_t{151}, int64_t{500},
                    static_cast<int64_t>(all.size()) - 1, static_cast<int64_t>(all.size())}) {
    const auto masks = masks_for(ts, k);
    int64_t pruned = 0;
    uint32_t max_pruned = 0, min_kept = 0xffffffffu;
    for (size_t t = 0; t < ts.size(); ++t) {
      for (size_t i = 0; i < ts[t].size(); ++i) {
        if (masks[t][i] == 0) {
          ++pruned;
          max_pruned = std::max(max_pruned, bits_of(ts[t][i]));
        } else {
          min_kept = std::min(min_kept, bits_of(ts[t][i]));
        }
      }
    }
    EXPECT_EQ(pruned, k);
    if (k > 0 && k < static_cast<int64_t>(all.size())) {
      EXPECT_LE(max_pruned, min_kept);
      EXPECT_EQ(max_pruned, sorted[k - 1]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, SelectTest, ::testing::Values(1, 2, 3));

TEST(Select, ZeroInPlaceMatchesMask) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<float> w(1 << 17);
  for (auto& v : w) v = dist(rng);
  const float* p = w.data();
  const int64_t n = static_cast<int64_t>(w.size());
  const KthMagnitude r = kth_magnitude(&p, &n, 1, n / 3);
  std::vector<uint8_t> keep(w.size());
  magnitude_mask(w.data(), n, r.threshold_bits, r.ties, keep.data());
  std::vector<float> z = w;
  magnitude_zero(z.data(), n, r.threshold_bits, r.ties);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(z[i], keep[i] ? w[i] : 0.f);
}

TEST(Select, RejectsBadArguments) {
  std::vector<float> w(10, 1.f);
  const float* p = w.data();
  int64_t n = 10;
  EXPECT_THROW(kth_magnitude(&p, &n, 1, 11), std::invalid_argument);
  EXPECT_THROW(kth_magnitude(&p, &n, 1, -1), std::invalid_argument);
  int64_t neg = -1;
  EXPECT_THROW(kth_magnitude(&p, &neg, 1, 0), std::invalid_argument);
  const float* null = nullptr;
  EXPECT_THROW(kth_magnitude(&null, &n, 1, 0), std::invalid_argument);
  EXPECT_THROW(magnitude_mask(w.data(), 10, 0, 0, nullptr), std::invalid_argument);
  EXPECT_NO_THROW(kth_magnitude(nullptr, nullptr, 0, 0));
}

}  // namespace
}  // namespace wattwise::prune
