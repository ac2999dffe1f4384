// Energy sources behind the sampler: powercap RAPL, the perf_event power PMU, NVML (dlopen'ed)
// and /proc readers for the CPU-time estimate. Each reads from a configurable root so that
// containers (host trees mounted elsewhere) and tests (fake trees) work the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wattwise::energy {

// Joules accumulated since the previous read(), split by component.
struct CpuDramJoules {
  double cpu = 0.0;
  double dram = 0.0;
};

// A counter source for the CPU package and DRAM (RAPL or perf).
class CpuEnergyReader {
 public:
  virtual ~CpuEnergyReader() = default;
  // Joules since the previous read (the first read after open() is relative to open()).
  // False when a counter can no longer be read (sensor vanished); out is then untouched.
  virtual bool read(CpuDramJoules* out) = 0;
  virtual bool has_dram() const = 0;
  // "rapl" or "perf".
  virtual const char* method() const = 0;
  // Human-readable list of the counters that are summed (after deduplication).
  virtual std::vector<std::string> counters() const = 0;
  // Longest period between reads for which at most one counter wrap can occur.
  virtual double max_interval_s() const = 0;
};

// Outcome of probing a source: why it is absent when it is.
struct ProbeStatus {
  bool permission_denied = false;
  std::string message;  // empty when the source opened, else why not
};

// Linux powercap RAPL under <sysfs_root>/class/powercap (intel-rapl:*, intel-rapl-mmio:*, the
// AMD package domain exposed by the same driver). Returns nullptr with status filled when no
// zone is readable.
std::unique_ptr<CpuEnergyReader> open_rapl(const std::string& sysfs_root, ProbeStatus* status);

// The perf_event power PMU (power/energy-pkg, power/energy-ram). The syscall sits behind a
// backend so that tests can stand in for the kernel.
class PerfBackend {
 public:
  virtual ~PerfBackend() = default;
  // Opens a system-wide counter on one CPU; returns a descriptor >= 0 or -errno.
  virtual int open(uint32_t type, uint64_t config, int cpu) = 0;
  virtual bool read(int fd, uint64_t* value) = 0;
  virtual void close(int fd) = 0;
};
std::unique_ptr<PerfBackend> system_perf_backend();
std::unique_ptr<CpuEnergyReader> open_perf(const std::string& sysfs_root,
                                           std::shared_ptr<PerfBackend> backend,
                                           ProbeStatus* status);

// NVIDIA GPUs through NVML, loaded with dlopen at run time.
class GpuEnergyReader {
 public:
  virtual ~GpuEnergyReader() = default;
  virtual int count() const = 0;
  virtual std::vector<std::string> names() const = 0;
  // Per GPU: "counter" (total-energy counter) or "power" (power polled and integrated).
  virtual std::vector<std::string> modes() const = 0;
  // Adds joules since the previous read to out[0..count). t_s is a monotonic time stamp used
  // to integrate power. False when a GPU stopped answering (its share is then not added).
  virtual bool read(double t_s, double* out) = 0;
};
// cuda_visible_devices: nullptr when the variable is unset (all GPUs visible).
std::unique_ptr<GpuEnergyReader> open_nvml(const std::string& library,
                                           const char* cuda_visible_devices, double t_s,
                                           ProbeStatus* status);

// /proc readers. Each returns false when the file is missing or malformed.
struct ProcStat {
  double busy_s = 0.0;   // user+nice+system+irq+softirq+steal over all CPUs
  double total_s = 0.0;  // busy + idle + iowait
  int cpus = 0;
};
bool read_proc_stat(const std::string& procfs_root, ProcStat* out);
// utime + stime + cutime + cstime of pid (children count once waited for), in seconds.
bool read_process_cpu_s(const std::string& procfs_root, int pid, double* out);
bool read_process_rss_gb(const std::string& procfs_root, int pid, double* out);
bool read_mem_total_gb(const std::string& procfs_root, double* out);
// A cgroup's CPU time: cgroup v2 cpu.stat (usage_usec) or v1 cpuacct.usage (ns), in seconds.
bool read_cgroup_cpu_s(const std::string& file, double* out);
// A cgroup's memory: v2 memory.current or v1 memory.usage_in_bytes, in GB.
bool read_cgroup_memory_gb(const std::string& file, double* out);

// Reads a whole small file; false when it cannot be opened (errno preserved).
bool read_text_file(const std::string& path, std::string* out);

}  // namespace wattwise::energy
