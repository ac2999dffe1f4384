// Chooses the threads the core's parallel_for runs on inside a torch process.
#include <ATen/Parallel.h>
#include <pthread.h>

#include <cstdlib>
#include <cstring>

#include "wattwise/common/thread_pool.h"

namespace wattwise::ops {
namespace {

void aten_parallel_for(int64_t n, int64_t grain, const RangeFn& body) {
  at::parallel_for(0, n, grain, [&body](int64_t begin, int64_t end) { body(begin, end); });
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
