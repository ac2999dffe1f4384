// Early-exit decision and compaction: per-sample confidence from a head's logits, the
// comparison with the exit's threshold, and the index lists of exiting/continuing samples.
//
// Confidence (all on softmax(logits / temperature), C classes, higher = more confident):
//   kMaxProb  max_c p_c
//   kEntropy  1 - H(p) / log(C)   (an "exit when entropy < T" rule is threshold 1 - T/log C)
//   kMargin   p_top1 - p_top2
//   kPatience the number of consecutive earlier exits whose argmax equals this one's
//             (PABEE: 0 at the first exit; "exit after t agreeing heads" is threshold t).
// A sample exits when confidence >= threshold. Threshold -inf: every sample exits (the
// final head); +inf: none does (a disabled exit). A NaN confidence never exits.
#pragma once

#include <cstdint>

namespace wattwise::exit {

enum class Criterion : int { kMaxProb = 0, kEntropy = 1, kMargin = 2, kPatience = 3 };

// Throws std::invalid_argument unless `criterion` is one of the enum values.
Criterion criterion_from_int(int64_t criterion);

// Throws std::invalid_argument for a threshold outside the criterion's range: NaN always;
// finite values outside [0, 1] for the probability criteria; finite non-integers or values
// < 0 for kPatience. -inf and +inf are always accepted.
void check_threshold(Criterion criterion, double threshold);

// One stage of the exit loop over `rows` samples (the rows of `logits`, [rows, cols]).
// positions[r] is sample r's row in the batch's output [out_rows, cols].
// Exiting samples: out[positions[r]] = logits[r], exit_index[positions[r]] = stage.
// Continuing samples, in order: cont_rows[j] = r, cont_positions[j] = positions[r], and
// (for the next stage's patience count) next_pred[j] = argmax, next_streak[j] = streak.
// prev_pred / prev_streak are the state of these rows from the previous stage, or null at
// the first exit. Returns the number of continuing samples. Validates every argument and
// every position (std::invalid_argument); zero rows are valid.
struct StepArgs {
  const float* logits = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const int64_t* positions = nullptr;
  int64_t out_rows = 0;
  float* out = nullptr;
  int64_t* exit_index = nullptr;
  int64_t stage = 0;
  Criterion criterion = Criterion::kMaxProb;
  float threshold = 0.f;
  float temperature = 1.f;
  const int64_t* prev_pred = nullptr;
  const int64_t* prev_streak = nullptr;
  int64_t* cont_rows = nullptr;
  int64_t* cont_positions = nullptr;
  int64_t* next_pred = nullptr;
  int64_t* next_streak = nullptr;
};
int64_t exit_step(const StepArgs& a);

// Per-row softmax statistics of logits * inv_temperature for rows [r_begin, r_end):
// max probability, 1 - normalised entropy, top-1/top-2 margin and argmax (first index of
// the maximum). Dispatches on active_simd() and splits rows over parallel_for.
void row_stats(const float* logits, int64_t rows, int64_t cols, float inv_temperature,
               float* max_prob, float* entropy_conf, float* margin, int64_t* argmax);

namespace kernels {

struct RowStats {
  const float* logits;
  int64_t cols;
  float inv_temperature;
  float* max_prob;
  float* entropy_conf;
  float* margin;
  int64_t* argmax;
};

// Single-threaded, unvalidated; `_avx2` needs AVX2 + FMA (x86-64 builds only).
void row_stats_ref(const RowStats& p, int64_t r_begin, int64_t r_end);
void row_stats_avx2(const RowStats& p, int64_t r_begin, int64_t r_end);

}  // namespace kernels
}  // namespace wattwise::exit
