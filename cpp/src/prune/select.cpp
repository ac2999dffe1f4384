// Radix select of the k-th smallest magnitude over a list of tensors, and the masks it implies.
#include "wattwise/prune/select.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "wattwise/common/thread_pool.h"

namespace wattwise::prune {
namespace {

inline uint32_t abs_bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof(b));
  return b & 0x7fffffffu;
}

constexpr int64_t kBins = 1 << 16;
// Elements per chunk: large enough that a chunk's 512 KiB histogram is a small cost.
constexpr int64_t kChunk = 1 << 22;

// The flat index space [0, total) over all tensors, visited segment by segment.
struct Flat {
  const float* const* tensors;
  const int64_t* sizes;
  int64_t count;
  std::vector<int64_t> starts;

  template <class Fn>
  void visit(int64_t b, int64_t e, Fn&& fn) const {
    auto it = std::upper_bound(starts.begin(), starts.end(), b);
    int64_t t = static_cast<int64_t>(it - starts.begin()) - 1;
    while (b < e && t < count) {
      const int64_t lo = b - starts[t];
      const int64_t hi = std::min(e, starts[t] + sizes[t]) - starts[t];
      if (hi > lo) fn(tensors[t] + lo, hi - lo);
      b = starts[t] + sizes[t];
      ++t;
    }
  }
};

// Sums per-chunk histograms of the 16 bits picked by `key` (returns false to skip an element).
template <class Key>
std::vector<int64_t> histogram(const Flat& flat, int64_t total, Key key) {
  const int64_t chunks = std::max<int64_t>(1, (total + kChunk - 1) / kChunk);
  const int64_t slots = std::min<int64_t>(chunks, std::max(1, get_num_threads()));
  std::vector<std::vector<int64_t>> hists(slots, std::vector<int64_t>(kBins, 0));
  const int64_t per_slot = (total + slots - 1) / slots;
  parallel_for(slots, 1, [&](int64_t sb, int64_t se) {
    for (int64_t s = sb; s < se; ++s) {
      int64_t* h = hists[s].data();
      flat.visit(s * per_slot, std::min(total, (s + 1) * per_slot), [&](const float* p, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          uint32_t bin;
          if (key(abs_bits(p[i]), bin)) ++h[bin];
        }
      });
    }
  });
  for (int64_t s = 1; s < slots; ++s) {
    for (int64_t i = 0; i < kBins; ++i) hists[0][i] += hists[s][i];
  }
  return std::move(hists[0]);
}

// The bin holding the rank-th (0-based) element, and the count of elements in earlier bins.
std::pair<uint32_t, int64_t> find_bin(const std::vector<int64_t>& h, int64_t rank) {
  int64_t before = 0;
  for (int64_t i = 0; i < kBins; ++i) {
    if (before + h[i] > rank) return {static_cast<uint32_t>(i), before};
    before += h[i];
  }
  throw std::logic_error("kth_magnitude: rank beyond the histogram");
}

}  // namespace

KthMagnitude kth_magnitude(const float* const* tensors, const int64_t* sizes, int64_t count,
                           int64_t k) {
  if (count < 0) throw std::invalid_argument("kth_magnitude: count must be >= 0");
  if (count > 0 && (tensors == nullptr || sizes == nullptr)) {
    throw std::invalid_argument("kth_magnitude: tensors/sizes is null");
  }
  Flat flat{tensors, sizes, count, {}};
  flat.starts.reserve(count);
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (sizes[i] < 0) {
      throw std::invalid_argument("kth_magnitude: size of tensor " + std::to_string(i) +
                                  " is negative: " + std::to_string(sizes[i]));
    }
    if (sizes[i] > 0 && tensors[i] == nullptr) {
      throw std::invalid_argument("kth_magnitude: tensor " + std::to_string(i) + " is null");
    }
    flat.starts.push_back(total);
    total += sizes[i];
  }
  if (k < 0 || k > total) {
    throw std::invalid_argument("kth_magnitude: k must be in [0, " + std::to_string(total) +
                                "], got " + std::to_string(k));
  }
  if (k == 0) return {};
  const int64_t rank = k - 1;
  const auto h_hi = histogram(flat, total, [](uint32_t b, uint32_t& bin) {
    bin = b >> 16;
    return true;
  });
  const auto [hi, before_hi] = find_bin(h_hi, rank);
  const auto h_lo = histogram(flat, total, [hi = hi](uint32_t b, uint32_t& bin) {
    bin = b & 0xffffu;
    return (b >> 16) == hi;
  });
  const auto [lo, before_lo] = find_bin(h_lo, rank - before_hi);
  KthMagnitude r;
  r.threshold_bits = (hi << 16) | lo;
  r.ties = k - (before_hi + before_lo);
  return r;
}

namespace {

// Elements strictly below the threshold go in parallel (branch-free, so the loops vectorize);
// ties go in order on one thread, so the first `ties` equal elements are the pruned ones
// whatever the thread count. `below(b, e)` handles [b, e) and returns how many it pruned.
template <class Below, class Tie>
int64_t apply_selection(const float* w, int64_t n, int64_t ties, int64_t* pruned, uint32_t t,
                        Below below, Tie tie) {
  if (n < 0)
    throw std::invalid_argument("magnitude_mask: n must be >= 0, got " + std::to_string(n));
  if (n > 0 && w == nullptr) throw std::invalid_argument("magnitude_mask: w is null");
  if (ties < 0) {
    throw std::invalid_argument("magnitude_mask: ties must be >= 0, got " + std::to_string(ties));
  }
  std::atomic<int64_t> count{0};
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { count += below(b, e); });
  for (int64_t i = 0; i < n && ties > 0; ++i) {
    if (abs_bits(w[i]) == t) {
      tie(i);
      --ties;
      ++count;
    }
  }
  if (pruned != nullptr) *pruned = count.load();
  return ties;
}

}  // namespace

int64_t magnitude_mask(const float* w, int64_t n, uint32_t threshold_bits, int64_t ties,
                       uint8_t* keep, int64_t* pruned) {
  if (n > 0 && keep == nullptr) throw std::invalid_argument("magnitude_mask: keep is null");
  const uint32_t t = threshold_bits;
  return apply_selection(
      w, n, ties, pruned, t,
      [&](int64_t b, int64_t e) {
        int64_t c = 0;
        for (int64_t i = b; i < e; ++i) {
          const uint8_t k = abs_bits(w[i]) >= t;
          keep[i] = k;
          c += 1 - k;
        }
        return c;
      },
      [&](int64_t i) { keep[i] = 0; });
}

int64_t magnitude_zero(float* w, int64_t n, uint32_t threshold_bits, int64_t ties,
                       int64_t* pruned) {
  const uint32_t t = threshold_bits;
  return apply_selection(
      w, n, ties, pruned, t,
      [&](int64_t b, int64_t e) {
        int64_t c = 0;
        for (int64_t i = b; i < e; ++i) {
          const float v = w[i];
          const bool p = abs_bits(v) < t;
          w[i] = p ? 0.f : v;
          c += p;
        }
        return c;
      },
      [&](int64_t i) { w[i] = 0.f; });
}

}  // namespace wattwise::prune
