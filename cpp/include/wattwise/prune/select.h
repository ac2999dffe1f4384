// Magnitude selection across many tensors without concatenating them: a two-pass radix select
// over the bit patterns of |w| (16 high bits, then 16 low bits), with per-chunk histograms as
// the only extra memory (512 KiB per thread).
#pragma once

#include <cstdint>

namespace wattwise::prune {

// The k-th smallest magnitude over all tensors, as the bit pattern of |w| (sign cleared, so
// that the uint32 order is the magnitude order; NaN sorts above +inf). Pruning every element
// whose magnitude bits are below `threshold_bits`, plus the first `ties` elements (in tensor
// order, then index order) whose bits equal it, prunes exactly k elements.
struct KthMagnitude {
  uint32_t threshold_bits = 0;
  int64_t ties = 0;
};

// tensors[i] points at sizes[i] floats. k in [0, total]; k == 0 returns threshold 0 and
// ties 0, which selects nothing.
// Throws std::invalid_argument on a negative size, a null pointer or k out of range.
KthMagnitude kth_magnitude(const float* const* tensors, const int64_t* sizes, int64_t count,
                           int64_t k);

// Writes keep[i] = 1 for kept elements, 0 for pruned ones, given a selection from
// kth_magnitude. `ties` is the number of equal-to-threshold elements still to prune; returns
// how many remain for the following tensors; *pruned (when not null) receives the number of
// elements of w pruned.
int64_t magnitude_mask(const float* w, int64_t n, uint32_t threshold_bits, int64_t ties,
                       uint8_t* keep, int64_t* pruned = nullptr);

// Zeroes the pruned elements of w in place (same selection rule as magnitude_mask).
int64_t magnitude_zero(float* w, int64_t n, uint32_t threshold_bits, int64_t ties,
                       int64_t* pruned = nullptr);

}  // namespace wattwise::prune
