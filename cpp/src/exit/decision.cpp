// Entry points of the exit decision: argument checks, kernel choice, threading, compaction.
#include "wattwise/exit/decision.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "wattwise/common/cpu.h"
#include "wattwise/common/thread_pool.h"

namespace wattwise::exit {
namespace {

std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("exit_step: " + msg); }

}  // namespace

Criterion criterion_from_int(int64_t criterion) {
  if (criterion < 0 || criterion > 3) {
    throw std::invalid_argument(
        "criterion must be 0 (max_prob), 1 (entropy), 2 (margin) or 3 (patience), got " +
        std::to_string(criterion));
  }
  return static_cast<Criterion>(criterion);
}

void check_threshold(Criterion criterion, double threshold) {
  if (std::isnan(threshold)) throw std::invalid_argument("threshold must not be NaN");
  if (std::isinf(threshold)) return;
  if (criterion == Criterion::kPatience) {
    if (threshold < 0 || threshold != std::floor(threshold)) {
      throw std::invalid_argument(
          "a patience threshold must be a whole number of agreeing exits >= 0 (or +-inf), "
          "got " +
          fmt(threshold));
    }
    return;
  }
  if (threshold < 0.0 || threshold > 1.0) {
    throw std::invalid_argument("a confidence threshold must lie in [0, 1] (or be +-inf), got " +
                                fmt(threshold));
  }
}

void row_stats(const float* logits, int64_t rows, int64_t cols, float inv_temperature,
               float* max_prob, float* entropy_conf, float* margin, int64_t* argmax) {
  if (rows < 0 || cols < 1) {
    throw std::invalid_argument("row_stats: need rows >= 0 and cols >= 1, got rows=" +
                                std::to_string(rows) + " cols=" + std::to_string(cols));
  }
  if (rows == 0) return;
  if (!logits || !max_prob || !entropy_conf || !margin || !argmax) {
    throw std::invalid_argument("row_stats: null pointer");
  }
  const kernels::RowStats p{logits, cols, inv_temperature, max_prob, entropy_conf, margin, argmax};
  const bool avx2 = active_simd() >= SimdLevel::kAvx2;
  // Threads only pay off for large heads (about 32K logits per chunk).
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / cols);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
#ifdef WATTWISE_HAVE_AVX2_KERNELS
    if (avx2) {
      kernels::row_stats_avx2(p, b, e);
      return;
    }
#else
    (void)avx2;
#endif
    kernels::row_stats_ref(p, b, e);
  });
}

int64_t exit_step(const StepArgs& a) {
  // Messages are built only on failure: this runs once per stage of every batch.
  if (a.rows < 0 || a.out_rows < 0 || a.rows > a.out_rows) {
    fail("need 0 <= rows <= out_rows, got rows=" + std::to_string(a.rows) +
         " out_rows=" + std::to_string(a.out_rows));
  }
  if (a.cols < 1) fail("logits need at least one class, got " + std::to_string(a.cols));
  if (!(a.temperature > 0.f && std::isfinite(a.temperature))) {
    fail("temperature must be a finite number > 0, got " + fmt(a.temperature));
  }
  check_threshold(a.criterion, a.threshold);
  if ((a.prev_pred == nullptr) != (a.prev_streak == nullptr)) {
    fail("prev_pred and prev_streak must be given together");
  }
  if (a.rows == 0) return 0;
  if (!(a.logits && a.positions && a.out && a.exit_index && a.cont_rows && a.cont_positions &&
        a.next_pred && a.next_streak)) {
    fail("null pointer");
  }
  for (int64_t r = 0; r < a.rows; ++r) {
    if (a.positions[r] < 0 || a.positions[r] >= a.out_rows) {
      fail("position " + std::to_string(a.positions[r]) + " of row " + std::to_string(r) +
           " is outside the output's " + std::to_string(a.out_rows) + " rows");
    }
  }

  // Thread-local scratch: the exit loop calls this once per stage, allocation-free after warm-up.
  thread_local std::vector<float> s_prob, s_ent, s_margin;
  thread_local std::vector<int64_t> s_arg;
  const auto n = static_cast<size_t>(a.rows);
  if (s_prob.size() < n) {
    s_prob.resize(n);
    s_ent.resize(n);
    s_margin.resize(n);
    s_arg.resize(n);
  }
  const bool all_exit = a.threshold == -INFINITY && a.criterion != Criterion::kPatience;
  if (!all_exit || a.criterion == Criterion::kPatience) {
    row_stats(a.logits, a.rows, a.cols, 1.f / a.temperature, s_prob.data(), s_ent.data(),
              s_margin.data(), s_arg.data());
  }
  const float* conf = a.criterion == Criterion::kMaxProb   ? s_prob.data()
                      : a.criterion == Criterion::kEntropy ? s_ent.data()
                                                           : s_margin.data();
  int64_t n_cont = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    bool leave;
    int64_t streak = 0;
    if (a.criterion == Criterion::kPatience) {
      streak = (a.prev_pred != nullptr && a.prev_pred[r] == s_arg[r]) ? a.prev_streak[r] + 1 : 0;
      leave = static_cast<float>(streak) >= a.threshold;
    } else {
      leave = all_exit || conf[r] >= a.threshold;
    }
    if (leave) {
      const int64_t pos = a.positions[r];
      std::copy_n(a.logits + r * a.cols, a.cols, a.out + pos * a.cols);
      a.exit_index[pos] = a.stage;
    } else {
      a.cont_rows[n_cont] = r;
      a.cont_positions[n_cont] = a.positions[r];
      a.next_pred[n_cont] = s_arg[r];
      a.next_streak[n_cont] = streak;
      ++n_cont;
    }
  }
  return n_cont;
}

}  // namespace wattwise::exit
