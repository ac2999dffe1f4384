#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "wattwise/common/thread_pool.h"

namespace wattwise {
namespace {

class ThreadPoolTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { set_num_threads(GetParam()); }
};

TEST_P(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int64_t n : {0, 1, 2, 7, 64, 1000, 100003}) {
    for (int64_t grain : {1, 3, 64, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(n, grain, [&](int64_t b, int64_t e) {
        ASSERT_LE(0, b);
        ASSERT_LE(b, e);
        ASSERT_LE(e, n);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
    }
  }
}

TEST_P(ThreadPoolTest, RethrowsTheFirstException) {
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_for(1000, 1,
                            [&](int64_t b, int64_t) {
                              ran++;
                              if (b == 0) throw std::runtime_error("boom");
                            }),
               std::runtime_error);
  EXPECT_GE(ran.load(), 1);
  // The pool stays usable afterwards.
  std::atomic<int64_t> sum{0};
  parallel_for(100, 1, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 100);
}

TEST_P(ThreadPoolTest, NestedCallsRunInline) {
  std::atomic<int64_t> sum{0};
  parallel_for(8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      parallel_for(10, 1, [&](int64_t b2, int64_t e2) { sum += e2 - b2; });
    }
  });
  EXPECT_EQ(sum.load(), 80);
}

TEST_P(ThreadPoolTest, ConcurrentCallersBothComplete) {
  std::atomic<int64_t> a{0}, b{0};
  std::thread other([&] {
    for (int r = 0; r < 50; ++r) parallel_for(1000, 1, [&](int64_t s, int64_t e) { a += e - s; });
  });
  for (int r = 0; r < 50; ++r) parallel_for(1000, 1, [&](int64_t s, int64_t e) { b += e - s; });
  other.join();
  EXPECT_EQ(a.load(), 50000);
  EXPECT_EQ(b.load(), 50000);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolTest, ::testing::Values(1, 2, 3, 8));

TEST(ThreadPool, RejectsNonPositiveThreadCounts) {
  EXPECT_THROW(set_num_threads(0), std::invalid_argument);
  EXPECT_THROW(set_num_threads(-4), std::invalid_argument);
  set_num_threads(2);
  EXPECT_EQ(get_num_threads(), 2);
}

TEST(ThreadPool, ResizeWhileAnotherThreadRuns) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> total{0};
  std::thread worker([&] {
    while (!stop) parallel_for(256, 1, [&](int64_t b, int64_t e) { total += e - b; });
  });
  for (int n : {1, 4, 2, 3, 2}) set_num_threads(n);
  stop = true;
  worker.join();
  EXPECT_EQ(total.load() % 256, 0);
}

}  // namespace
}  // namespace wattwise
