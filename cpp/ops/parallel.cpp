// Chooses the threads the core's parallel_for runs on inside a torch process.
#include <ATen/Parallel.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "wattwise/common/thread_pool.h"

namespace wattwise::ops {
namespace {

// Each OpenMP thread pulls chunks from a shared counter rather than taking one fixed slice,
// as the core's own pool does: on a shared or virtual machine one core is often slower for
// a while, and a fixed split would make every call wait for it.
void aten_parallel_for(int64_t n, int64_t grain, const RangeFn& body) {
  const int64_t threads = std::max(1, at::get_num_threads());
  const int64_t chunk = std::max(grain, (n + threads * 4 - 1) / (threads * 4));
  const int64_t num_chunks = (n + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min(threads, num_chunks), 1, [&](int64_t, int64_t) {
    for (int64_t c = next.fetch_add(1); c < num_chunks; c = next.fetch_add(1)) {
      body(c * chunk, std::min(n, (c + 1) * chunk));
    }
  });
}

// ATen's pool by default: wattwise kernels interleave with torch ops in real models, and
// torch's OpenMP threads spin between ops. WATTWISE_THREAD_POOL=native selects the core's
// own pool (sized by sync_num_threads) for models made only of wattwise layers.
const bool kBackendChosen = [] {
  const char* env = std::getenv("WATTWISE_THREAD_POOL");
  if (env == nullptr || std::strcmp(env, "native") != 0) {
    set_parallel_backend(&aten_parallel_for);
    // OpenMP regions hang in the child of a fork once the parent has used them (a libgomp
    // limitation torch's own ops share); a forked child (a DataLoader worker) runs wattwise
    // kernels on the core's pool, which it builds afresh.
    pthread_atfork(nullptr, nullptr, [] { set_parallel_backend(nullptr); });
  }
  return true;
}();

}  // namespace
}  // namespace wattwise::ops
