// Native pool: workers sleep on a condition variable and pull chunks from an atomic counter,
// which balances uneven chunks without a scheduler.
#include "wattwise/common/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "wattwise/common/cpu.h"

namespace wattwise {
namespace {

thread_local bool t_inside_parallel = false;

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads) : num_threads_(num_threads) {
    for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int num_threads() const { return num_threads_; }

  void run(int64_t n, int64_t grain, const RangeFn& body) {
    const int64_t chunk = std::max<int64_t>(grain, (n + num_threads_ * 4 - 1) / (num_threads_ * 4));
    const int64_t num_chunks = (n + chunk - 1) / chunk;
    // A second thread calling in while the pool is busy runs its range inline rather than
    // queueing behind (or deadlocking with) the first.
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (num_chunks <= 1 || workers_.empty() || !busy.owns_lock()) {
      run_inline(n, body);
      return;
    }
    body_ = &body;
    n_ = n;
    chunk_ = chunk;
    num_chunks_ = num_chunks;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++generation_;
    }
    work_cv_.notify_all();
    run_chunks();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static void run_inline(int64_t n, const RangeFn& body) {
    const bool was_inside = t_inside_parallel;
    t_inside_parallel = true;
    try {
      body(0, n);
    } catch (...) {
      t_inside_parallel = was_inside;
      throw;
    }
    t_inside_parallel = was_inside;
  }

  void run_chunks() {
    t_inside_parallel = true;
    for (;;) {
      const int64_t c = next_.fetch_add(1, std::memory_order_relaxed);
      if (c >= num_chunks_) break;
      const int64_t begin = c * chunk_;
      const int64_t end = std::min(n_, begin + chunk_);
      try {
        (*body_)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    t_inside_parallel = false;
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      run_chunks();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_cv_.notify_one();
      }
    }
  }

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::mutex run_mu_;

  const RangeFn* body_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t num_chunks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

int default_num_threads() {
  if (const char* env = std::getenv("WATTWISE_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return logical_cpus();
}

std::atomic<ParallelForFn> g_backend{nullptr};

std::mutex g_pool_mu;
// Held through a shared_ptr so that set_num_threads() can swap pools while a parallel_for
// started on the old one finishes.
std::shared_ptr<ThreadPool> g_pool;

void forget_pool_in_child() {
  // The child of fork() has none of the parent's worker threads: joining them would hang.
  // Leak the parent's pool (its mutexes may be in any state) and build a fresh one on
  // first use.
  new (&g_pool) std::shared_ptr<ThreadPool>();
  new (&g_pool_mu) std::mutex();
}

std::shared_ptr<ThreadPool> pool() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, forget_pool_in_child);
    return true;
  }();
  (void)registered;
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(default_num_threads());
  return g_pool;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, const RangeFn& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (t_inside_parallel || n <= grain) {
    body(0, n);
    return;
  }
  if (ParallelForFn backend = g_backend.load(std::memory_order_acquire)) {
    // The backend's threads do not see t_inside_parallel: mark nested calls on each of them.
    backend(n, grain, [&body](int64_t b, int64_t e) {
      const bool was_inside = t_inside_parallel;
      t_inside_parallel = true;
      try {
        body(b, e);
      } catch (...) {
        t_inside_parallel = was_inside;
        throw;
      }
      t_inside_parallel = was_inside;
    });
    return;
  }
  pool()->run(n, grain, body);
}

void set_parallel_backend(ParallelForFn fn) { g_backend.store(fn, std::memory_order_release); }

int get_num_threads() { return pool()->num_threads(); }

void set_num_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(n));
  }
  std::shared_ptr<ThreadPool> old = pool();
  if (old->num_threads() == n) return;
  auto fresh = std::make_shared<ThreadPool>(n);
  std::lock_guard<std::mutex> lock(g_pool_mu);
  g_pool.swap(fresh);
  // `fresh` now holds the old pool; it is joined when the last user lets go of it.
}

}  // namespace wattwise
