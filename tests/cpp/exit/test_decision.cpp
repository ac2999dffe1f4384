// The AVX2 row statistics against _ref on sizes that hit SIMD tails, the statistics against
// closed forms, and exit_step's decisions, compaction and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "random_data.h"
#include "wattwise/common/cpu.h"
#include "wattwise/exit/decision.h"

namespace wattwise::exit {
namespace {

using wattwise::testing::randn;

struct Stats {
  std::vector<float> prob, ent, margin;
  std::vector<int64_t> arg;
  explicit Stats(int64_t rows) : prob(rows), ent(rows), margin(rows), arg(rows) {}
  kernels::RowStats params(const float* x, int64_t cols, float inv_t) {
    return {x, cols, inv_t, prob.data(), ent.data(), margin.data(), arg.data()};
  }
};

const int64_t kRows[] = {0, 1, 2, 5, 9};
const int64_t kCols[] = {1, 2, 5, 8, 9, 16, 20, 28, 32, 33, 1000};

class RowStatsKernels : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, float>> {};

TEST_P(RowStatsKernels, Avx2MatchesRef) {
  if (detected_simd() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2/FMA: only _ref runs here";
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const auto [rows, cols, scale] = GetParam();
  const std::vector<float> x = randn(rows * cols, 7, scale);
  for (const float inv_t : {1.f, 0.5f, 2.5f}) {
    Stats a(rows), b(rows);
    kernels::row_stats_ref(a.params(x.data(), cols, inv_t), 0, rows);
    kernels::row_stats_avx2(b.params(x.data(), cols, inv_t), 0, rows);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(a.arg[r], b.arg[r]) << "row " << r;
      EXPECT_NEAR(a.prob[r], b.prob[r], 2e-5f) << "row " << r;
      EXPECT_NEAR(a.ent[r], b.ent[r], 2e-5f) << "row " << r;
      EXPECT_NEAR(a.margin[r], b.margin[r], 2e-5f) << "row " << r;
    }
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Sizes, RowStatsKernels,
                         ::testing::Combine(::testing::ValuesIn(kRows), ::testing::ValuesIn(kCols),
                                            ::testing::Values(0.1f, 3.f, 30.f)));

// Closed forms on both paths: uniform logits, a single class, ties.
TEST(RowStats, ClosedForms) {
  for (const char* level : {"scalar", "auto"}) {
    set_simd(level);
    const std::vector<float> uniform(12, 0.5f);
    Stats s(1);
    row_stats(uniform.data(), 1, 12, 1.f, s.prob.data(), s.ent.data(), s.margin.data(),
              s.arg.data());
    EXPECT_NEAR(s.prob[0], 1.f / 12, 1e-6f);
    EXPECT_NEAR(s.ent[0], 0.f, 1e-5f);
    EXPECT_NEAR(s.margin[0], 0.f, 1e-6f);
    EXPECT_EQ(s.arg[0], 0);

    const std::vector<float> one = {3.f};
    row_stats(one.data(), 1, 1, 1.f, s.prob.data(), s.ent.data(), s.margin.data(), s.arg.data());
    EXPECT_FLOAT_EQ(s.prob[0], 1.f);
    EXPECT_FLOAT_EQ(s.ent[0], 1.f);
    EXPECT_FLOAT_EQ(s.margin[0], 1.f);

    // Two classes, p = (e / (1 + e), 1 / (1 + e)) at logits (1, 0); the max is at index 9.
    std::vector<float> two(11, -std::numeric_limits<float>::infinity());
    two[9] = 1.f;
    two[3] = 0.f;
    row_stats(two.data(), 1, 11, 1.f, s.prob.data(), s.ent.data(), s.margin.data(), s.arg.data());
    const float p = std::exp(1.f) / (1.f + std::exp(1.f));
    EXPECT_NEAR(s.prob[0], p, 1e-6f);
    EXPECT_NEAR(s.margin[0], 2 * p - 1, 1e-6f);
    const float h = -(p * std::log(p) + (1 - p) * std::log(1 - p));
    EXPECT_NEAR(s.ent[0], 1.f - h / std::log(11.f), 1e-5f);
    EXPECT_EQ(s.arg[0], 9);
  }
  set_simd("auto");
}

struct Step {
  std::vector<float> out;
  std::vector<int64_t> exit_index, cont_rows, cont_pos, pred, streak;
  StepArgs args;
  Step(const std::vector<float>& logits, const std::vector<int64_t>& positions, int64_t cols,
       int64_t out_rows)
      : out(out_rows * cols, -1.f),
        exit_index(out_rows, -1),
        cont_rows(positions.size()),
        cont_pos(positions.size()),
        pred(positions.size()),
        streak(positions.size()) {
    args.logits = logits.data();
    args.rows = static_cast<int64_t>(positions.size());
    args.cols = cols;
    args.positions = positions.data();
    args.out_rows = out_rows;
    args.out = out.data();
    args.exit_index = exit_index.data();
    args.cont_rows = cont_rows.data();
    args.cont_positions = cont_pos.data();
    args.next_pred = pred.data();
    args.next_streak = streak.data();
  }
};

TEST(ExitStep, WritesExitsAndCompactsTheRest) {
  // Rows 0 and 2 are confident (p ~ 0.99), row 1 is not.
  const std::vector<float> logits = {6, 0, 0, 0.1f, 0, 0.2f, 0, 0, 7};
  const std::vector<int64_t> positions = {4, 0, 2};
  Step s(logits, positions, 3, 5);
  s.args.stage = 1;
  s.args.threshold = 0.9f;
  EXPECT_EQ(exit_step(s.args), 1);
  EXPECT_EQ(s.cont_rows[0], 1);
  EXPECT_EQ(s.cont_pos[0], 0);
  EXPECT_EQ(s.pred[0], 2);
  EXPECT_EQ(s.exit_index, (std::vector<int64_t>{-1, -1, 1, -1, 1}));
  EXPECT_EQ(s.out[4 * 3 + 0], 6.f);
  EXPECT_EQ(s.out[2 * 3 + 2], 7.f);
  EXPECT_EQ(s.out[0], -1.f);

  s.args.threshold = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(exit_step(s.args), 0);
  EXPECT_EQ(s.exit_index[0], 1);
  s.args.threshold = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exit_step(s.args), 3);
}

TEST(ExitStep, PatienceCountsAgreeingExits) {
  const std::vector<float> logits = {0, 1, 1, 0, 0, 1};
  const std::vector<int64_t> positions = {0, 1, 2};
  const std::vector<int64_t> prev_pred = {1, 1, 1}, prev_streak = {1, 0, 0};
  Step s(logits, positions, 2, 3);
  s.args.criterion = Criterion::kPatience;
  s.args.threshold = 2.f;
  s.args.prev_pred = prev_pred.data();
  s.args.prev_streak = prev_streak.data();
  // Row 0 agrees for the second time (exits); row 1 disagrees (streak 0); row 2 agrees once.
  EXPECT_EQ(exit_step(s.args), 2);
  EXPECT_EQ(s.exit_index[0], 0);
  EXPECT_EQ(s.cont_rows[0], 1);
  EXPECT_EQ(s.streak[0], 0);
  EXPECT_EQ(s.pred[0], 0);
  EXPECT_EQ(s.streak[1], 1);
}

TEST(ExitStep, RejectsBadArguments) {
  const std::vector<float> logits = {0, 1};
  const std::vector<int64_t> positions = {0};
  Step s(logits, positions, 2, 1);
  for (const float bad : {-0.1f, 1.5f, std::nanf("")}) {
    s.args.threshold = bad;
    EXPECT_THROW(exit_step(s.args), std::invalid_argument);
  }
  s.args.threshold = 0.5f;
  s.args.temperature = 0.f;
  EXPECT_THROW(exit_step(s.args), std::invalid_argument);
  s.args.temperature = 1.f;
  const std::vector<int64_t> outside = {3};
  s.args.positions = outside.data();
  EXPECT_THROW(exit_step(s.args), std::invalid_argument);
  s.args.positions = positions.data();
  s.args.criterion = Criterion::kPatience;
  s.args.threshold = 1.5f;
  EXPECT_THROW(exit_step(s.args), std::invalid_argument);
  EXPECT_THROW(criterion_from_int(4), std::invalid_argument);
  s.args.cols = 0;
  EXPECT_THROW(exit_step(s.args), std::invalid_argument);
}

}  // namespace
}  // namespace wattwise::exit
