// The energy sampler: a C++ thread that reads every detected source at a fixed period into a
// ring buffer of cumulative joules. It never calls into Python, so it never holds the GIL.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wattwise/energy/sources.h"

namespace wattwise::energy {

struct SamplerConfig {
  double interval_s = 0.1;
  std::string sysfs_root = "/sys";
  std::string procfs_root = "/proc";
  int pid = 0;  // the process whose share is attributed; 0 = this process
  // When set, the process figures follow this cgroup instead of pid (a container, a job):
  // its cpu.stat / cpuacct.usage and memory.current / memory.usage_in_bytes files.
  std::string cgroup_cpu_file;
  std::string cgroup_memory_file;
  bool use_rapl = true;
  bool use_perf = true;
  bool use_nvml = true;
  std::string nvml_library = "libnvidia-ml.so.1";
  bool cuda_visible_devices_set = false;
  std::string cuda_visible_devices;
  // Estimate model (used when no CPU/DRAM counter is readable, and after one vanishes):
  // a logical CPU draws cpu_idle_fraction * W at idle and W when busy; RAM draws
  // ram_watts_per_gb per GB installed (machine) or resident (process).
  double cpu_watts_per_thread = 0.0;
  double cpu_idle_fraction = 0.3;
  double ram_watts_per_gb = 0.375;
  size_t capacity = 1 << 17;                  // rows kept between drains
  std::shared_ptr<PerfBackend> perf_backend;  // nullptr: the perf_event_open syscall
};

// Columns of a sample row; cumulative since start() except kT. GPU columns follow, one per
// visible GPU.
enum Column : int {
  kT = 0,         // seconds since start()
  kCpuMeasured,   // joules from the CPU counter (method(): "rapl" or "perf")
  kCpuEstimate,   // joules from the CPU-time model
  kRamMeasured,   // joules from the DRAM counter
  kRamEstimate,   // joules from the per-GB model
  kProcessCpu,    // the process's share of CPU joules
  kProcessRam,    // the process's share of RAM joules
  kMachineBusyS,  // busy CPU-seconds of the machine
  kProcessCpuS,   // CPU-seconds of the process and its waited-for children
  kFixedColumns
};

struct SamplerInfo {
  std::string cpu_method;  // "rapl", "perf" or "estimate"
  bool ram_measured = false;
  std::vector<std::string> cpu_counters;
  std::vector<std::string> gpu_names;
  std::vector<std::string> gpu_modes;
  std::vector<std::string> probe_messages;  // why a source is absent
  std::vector<std::string> notes;           // events during the run (a sensor vanished, ...)
  bool permission_denied = false;
  double interval_s = 0.0;  // effective period, after the one-wrap bound
  int cpus = 0;
  double mem_total_gb = 0.0;
};

class Sampler {
 public:
  // Validates the configuration (std::invalid_argument naming the field) and probes sources.
  explicit Sampler(SamplerConfig config);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Zeroes the totals and starts the thread; a stopped sampler can start again.
  void start();
  // Takes a last sample and joins the thread. No-op when not running.
  void stop();
  bool running() const;

  // Takes a sample now (when running) and returns the newest row.
  std::vector<double> snapshot();
  // Moves the rows buffered since the last drain into out (row-major); returns the row count.
  size_t drain(std::vector<double>* out);
  size_t dropped() const;
  int width() const { return kFixedColumns + static_cast<int>(gpu_names_.size()); }
  SamplerInfo info() const;

  // fork() handlers: the mutex is held across fork; in the child the thread did not
  // survive, so it is forgotten (a child never inherits a running sampler).
  void lock_for_fork();
  void unlock_after_fork();
  void forget_after_fork();

 private:
  void probe();
  void rebaseline_locked(double now);
  void sample_locked(double now);
  void push_locked();
  void loop();
  double now_s() const;
  void note_locked(const std::string& text);
  bool read_tracked_cpu_s(double* out) const;
  bool read_tracked_memory_gb(double* out) const;

  SamplerConfig cfg_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<std::thread> thread_;
  bool running_ = false;
  bool stop_requested_ = false;

  std::unique_ptr<CpuEnergyReader> cpu_reader_;
  std::unique_ptr<GpuEnergyReader> gpu_reader_;
  bool cpu_lost_ = false;
  std::vector<std::string> gpu_names_, gpu_modes_, probe_messages_, notes_;
  bool permission_denied_ = false;
  double interval_s_ = 0.1;
  double mem_total_gb_ = 0.0;

  double t0_ = 0.0, last_t_ = 0.0;
  ProcStat last_stat_;
  double last_util_ = 1.0;
  double last_proc_s_ = 0.0;
  std::vector<double> row_;  // the cumulative row
  std::vector<double> ring_;
  size_t head_ = 0, size_ = 0, dropped_ = 0;
};

}  // namespace wattwise::energy
