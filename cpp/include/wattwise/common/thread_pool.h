// parallel_for over an index range on a small native thread pool.
#pragma once

#include <cstdint>
#include <functional>

namespace wattwise {

using RangeFn = std::function<void(int64_t begin, int64_t end)>;

// Splits [0, n) into chunks of at least `grain` indices and runs body(begin, end) on them,
// the calling thread included; returns when every chunk is done. An exception thrown by a
// chunk is rethrown here (the first one; the other chunks still finish). Calls from inside a
// running parallel_for, and ranges of a single chunk, run inline on the caller.
void parallel_for(int64_t n, int64_t grain, const RangeFn& body);

// Threads parallel_for uses (the calling thread included).
int get_num_threads();

// Resizes the pool (n >= 1; throws std::invalid_argument otherwise). Safe to call while
// other threads run parallel_for: they finish on the pool they started with. The default
// is WATTWISE_NUM_THREADS, else the number of logical CPUs. The LibTorch ops keep it equal
// to torch.get_num_threads(), so torch.set_num_threads() applies to wattwise kernels too.
void set_num_threads(int n);

// A host framework can run parallel_for on its own threads instead, so that a process never
// has two busy pools competing for its cores (the LibTorch ops install ATen's OpenMP pool:
// between torch's own ops its threads spin, and a second pool's workers then lose their
// time slices). nullptr restores the native pool. Calls from inside a running parallel_for
// still run inline.
using ParallelForFn = void (*)(int64_t n, int64_t grain, const RangeFn& body);
void set_parallel_backend(ParallelForFn fn);

}  // namespace wattwise
