// The sampler thread, the CPU-time estimate and the attribution of machine energy to the
// process.
#include "wattwise/energy/sampler.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace wattwise::energy {
namespace {

// Every live sampler, so that fork() can leave their mutexes unlocked in the child.
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<Sampler*>& registry() {
  static std::set<Sampler*> s;
  return s;
}
// Holding every sampler's mutex across fork() means no sample is half-taken in the child.
void fork_prepare() {
  registry_mutex().lock();
  for (Sampler* s : registry()) s->lock_for_fork();
}
void fork_parent() {
  for (Sampler* s : registry()) s->unlock_after_fork();
  registry_mutex().unlock();
}
void fork_child() {
  for (Sampler* s : registry()) {
    s->forget_after_fork();
    s->unlock_after_fork();
  }
  registry_mutex().unlock();
}

void register_sampler(Sampler* s) {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(fork_prepare, fork_parent, fork_child); });
  std::lock_guard<std::mutex> lk(registry_mutex());
  registry().insert(s);
}

void unregister_sampler(Sampler* s) {
  std::lock_guard<std::mutex> lk(registry_mutex());
  registry().erase(s);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("wattwise.energy.Sampler: " + what);
}

}  // namespace

Sampler::Sampler(SamplerConfig config) : cfg_(std::move(config)) {
  require(std::isfinite(cfg_.interval_s) && cfg_.interval_s >= 0.001 && cfg_.interval_s <= 3600,
          "interval_s must be in [0.001, 3600] seconds, got " + std::to_string(cfg_.interval_s));
  require(std::isfinite(cfg_.cpu_watts_per_thread) && cfg_.cpu_watts_per_thread > 0 &&
              cfg_.cpu_watts_per_thread < 1000,
          "cpu_watts_per_thread must be in (0, 1000), got " +
              std::to_string(cfg_.cpu_watts_per_thread));
  require(std::isfinite(cfg_.cpu_idle_fraction) && cfg_.cpu_idle_fraction >= 0 &&
              cfg_.cpu_idle_fraction <= 1,
          "cpu_idle_fraction must be in [0, 1], got " + std::to_string(cfg_.cpu_idle_fraction));
  require(std::isfinite(cfg_.ram_watts_per_gb) && cfg_.ram_watts_per_gb >= 0 &&
              cfg_.ram_watts_per_gb < 100,
          "ram_watts_per_gb must be in [0, 100), got " + std::to_string(cfg_.ram_watts_per_gb));
  require(cfg_.capacity >= 2 && cfg_.capacity <= (size_t{1} << 26),
          "capacity must be in [2, 2^26] rows, got " + std::to_string(cfg_.capacity));
  require(cfg_.pid >= 0, "pid must be >= 0, got " + std::to_string(cfg_.pid));
  require(!cfg_.sysfs_root.empty(), "sysfs_root must not be empty");
  ProcStat ps;
  require(read_proc_stat(cfg_.procfs_root, &ps),
          "procfs_root '" + cfg_.procfs_root + "': cannot read " + cfg_.procfs_root + "/stat");
  double proc_s = 0;
  if (cfg_.cgroup_cpu_file.empty()) {
    require(read_process_cpu_s(cfg_.procfs_root, cfg_.pid, &proc_s),
            "pid " + std::to_string(cfg_.pid) + ": cannot read its stat under '" +
                cfg_.procfs_root + "'");
  } else {
    require(read_cgroup_cpu_s(cfg_.cgroup_cpu_file, &proc_s),
            "cgroup_cpu_file '" + cfg_.cgroup_cpu_file + "' is not a readable cgroup CPU file");
  }
  last_stat_ = ps;
  if (!read_mem_total_gb(cfg_.procfs_root, &mem_total_gb_)) mem_total_gb_ = 0.0;
  probe();
  row_.assign(width(), 0.0);
  ring_.assign(cfg_.capacity * static_cast<size_t>(width()), 0.0);
  register_sampler(this);
}

Sampler::~Sampler() {
  unregister_sampler(this);
  stop();
}

double Sampler::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Sampler::probe() {
  ProbeStatus st;
  if (cfg_.use_rapl) {
    cpu_reader_ = open_rapl(cfg_.sysfs_root, &st);
    if (!cpu_reader_) probe_messages_.push_back("rapl: " + st.message);
    permission_denied_ = permission_denied_ || st.permission_denied;
  }
  if (!cpu_reader_ && cfg_.use_perf) {
    st = ProbeStatus();
    std::shared_ptr<PerfBackend> backend = cfg_.perf_backend;
    if (!backend) backend = system_perf_backend();
    cpu_reader_ = open_perf(cfg_.sysfs_root, backend, &st);
    if (!cpu_reader_) probe_messages_.push_back("perf: " + st.message);
  }
  if (cfg_.use_nvml) {
    st = ProbeStatus();
    gpu_reader_ = open_nvml(
        cfg_.nvml_library,
        cfg_.cuda_visible_devices_set ? cfg_.cuda_visible_devices.c_str() : nullptr, now_s(), &st);
    if (gpu_reader_) {
      gpu_names_ = gpu_reader_->names();
      gpu_modes_ = gpu_reader_->modes();
    } else {
      probe_messages_.push_back("nvml: " + st.message);
    }
  }
  interval_s_ = cfg_.interval_s;
  if (cpu_reader_) {
    const double bound = 0.5 * cpu_reader_->max_interval_s();
    if (bound < interval_s_) {
      interval_s_ = std::max(bound, 0.001);
      notes_.push_back("sampling period shortened to " + std::to_string(interval_s_) +
                       " s so that a RAPL counter cannot wrap twice between reads");
    }
  }
}

void Sampler::note_locked(const std::string& text) {
  if (std::find(notes_.begin(), notes_.end(), text) == notes_.end()) notes_.push_back(text);
}

bool Sampler::read_tracked_cpu_s(double* out) const {
  return cfg_.cgroup_cpu_file.empty() ? read_process_cpu_s(cfg_.procfs_root, cfg_.pid, out)
                                      : read_cgroup_cpu_s(cfg_.cgroup_cpu_file, out);
}

bool Sampler::read_tracked_memory_gb(double* out) const {
  if (!cfg_.cgroup_memory_file.empty()) return read_cgroup_memory_gb(cfg_.cgroup_memory_file, out);
  if (!cfg_.cgroup_cpu_file.empty()) return false;
  return read_process_rss_gb(cfg_.procfs_root, cfg_.pid, out);
}

void Sampler::rebaseline_locked(double now) {
  // Discard whatever the counters accumulated before start().
  if (cpu_reader_ && !cpu_lost_) {
    CpuDramJoules j;
    if (!cpu_reader_->read(&j)) {
      cpu_lost_ = true;
      note_locked(std::string(cpu_reader_->method()) +
                  " counter unreadable at start; CPU energy is estimated");
    }
  }
  if (gpu_reader_) {
    std::vector<double> scratch(gpu_names_.size(), 0.0);
    gpu_reader_->read(now, scratch.data());
  }
  if (!read_proc_stat(cfg_.procfs_root, &last_stat_)) last_stat_ = ProcStat();
  if (!read_tracked_cpu_s(&last_proc_s_)) last_proc_s_ = 0.0;
  std::fill(row_.begin(), row_.end(), 0.0);
  t0_ = now;
  last_t_ = now;
  head_ = size_ = dropped_ = 0;
  push_locked();
}

void Sampler::sample_locked(double now) {
  const double dt = std::max(0.0, now - last_t_);
  last_t_ = now;
  const double wt = cfg_.cpu_watts_per_thread;
  const double idle = cfg_.cpu_idle_fraction;

  ProcStat ps;
  double busy = 0.0;
  int cpus = last_stat_.cpus;
  if (read_proc_stat(cfg_.procfs_root, &ps)) {
    busy = std::max(0.0, ps.busy_s - last_stat_.busy_s);
    const double total = ps.total_s - last_stat_.total_s;
    if (total > 0) last_util_ = std::min(1.0, busy / total);
    cpus = ps.cpus;
    last_stat_ = ps;
  } else {
    // Keep the last utilisation rather than report an idle machine.
    busy = last_util_ * cpus * dt;
    note_locked(cfg_.procfs_root + "/stat became unreadable; CPU load held at its last value");
  }
  double proc = 0.0, proc_now = 0.0;
  if (read_tracked_cpu_s(&proc_now)) {
    proc = std::max(0.0, proc_now - last_proc_s_);
    last_proc_s_ = proc_now;
  } else {
    note_locked(cfg_.cgroup_cpu_file.empty()
                    ? "the tracked process's stat became unreadable (process exited?)"
                    : "the tracked cgroup's CPU file became unreadable");
  }
  row_[kMachineBusyS] += busy;
  row_[kProcessCpuS] += proc;

  // CPU: the counter when it answers, else the model.
  const double est_cpu = wt * (idle * cpus * dt + (1.0 - idle) * busy);
  CpuDramJoules j;
  bool measured = false;
  if (cpu_reader_ && !cpu_lost_) {
    if (cpu_reader_->read(&j)) {
      measured = true;
    } else {
      cpu_lost_ = true;
      note_locked(std::string(cpu_reader_->method()) + " counter vanished " +
                  std::to_string(now - t0_) + " s into the run; CPU energy estimated from then on");
    }
  }
  if (measured) {
    row_[kCpuMeasured] += j.cpu;
    // The process's share of the measured energy is its share of the busy CPU time.
    const double share = proc > 0 ? std::min(1.0, proc / std::max(busy, proc)) : 0.0;
    row_[kProcessCpu] += j.cpu * share;
  } else {
    row_[kCpuEstimate] += est_cpu;
    row_[kProcessCpu] += wt * proc;
  }

  // RAM: the DRAM counter when there is one, else the per-GB model.
  double ram = 0.0;
  if (measured && cpu_reader_->has_dram()) {
    ram = j.dram;
    row_[kRamMeasured] += ram;
  } else {
    ram = mem_total_gb_ * cfg_.ram_watts_per_gb * dt;
    row_[kRamEstimate] += ram;
  }
  double rss = 0.0;
  if (mem_total_gb_ > 0 && read_tracked_memory_gb(&rss))
    row_[kProcessRam] += ram * std::min(1.0, rss / mem_total_gb_);

  if (gpu_reader_ && !gpu_names_.empty()) {
    if (!gpu_reader_->read(now, row_.data() + kFixedColumns))
      note_locked("a GPU stopped answering NVML; its energy after that point is missing");
  }
  row_[kT] = now - t0_;
  push_locked();
}

void Sampler::push_locked() {
  const size_t w = static_cast<size_t>(width());
  if (size_ == cfg_.capacity) {
    ++dropped_;
    --size_;
  }
  const size_t slot = (head_ + size_) % cfg_.capacity;
  std::copy(row_.begin(), row_.end(), ring_.begin() + static_cast<ptrdiff_t>(slot * w));
  ++size_;
}

void Sampler::start() {
  stop();
  std::lock_guard<std::mutex> lk(mu_);
  rebaseline_locked(now_s());
  stop_requested_ = false;
  running_ = true;
  thread_ = std::make_unique<std::thread>([this] { loop(); });
}

void Sampler::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(interval_s_));
  auto next = std::chrono::steady_clock::now() + period;
  while (!stop_requested_) {
    if (cv_.wait_until(lk, next, [this] { return stop_requested_; })) break;
    sample_locked(now_s());
    next += period;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + period;  // fell behind (suspended?): do not burst
  }
}

void Sampler::stop() {
  std::unique_ptr<std::thread> t;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!running_) return;
    stop_requested_ = true;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t && t->joinable()) t->join();
  std::lock_guard<std::mutex> lk(mu_);
  sample_locked(now_s());
  running_ = false;
}

bool Sampler::running() const {
  std::lock_guard<std::mutex> lk(mu_);
  return running_;
}

std::vector<double> Sampler::snapshot() {
  std::lock_guard<std::mutex> lk(mu_);
  if (running_) sample_locked(now_s());
  return row_;
}

size_t Sampler::drain(std::vector<double>* out) {
  std::lock_guard<std::mutex> lk(mu_);
  const size_t w = static_cast<size_t>(width());
  out->resize(size_ * w);
  for (size_t i = 0; i < size_; ++i) {
    const size_t slot = (head_ + i) % cfg_.capacity;
    std::copy(ring_.begin() + static_cast<ptrdiff_t>(slot * w),
              ring_.begin() + static_cast<ptrdiff_t>((slot + 1) * w),
              out->begin() + static_cast<ptrdiff_t>(i * w));
  }
  const size_t n = size_;
  head_ = (head_ + size_) % cfg_.capacity;
  size_ = 0;
  return n;
}

size_t Sampler::dropped() const {
  std::lock_guard<std::mutex> lk(mu_);
  return dropped_;
}

SamplerInfo Sampler::info() const {
  std::lock_guard<std::mutex> lk(mu_);
  SamplerInfo i;
  i.cpu_method = cpu_reader_ ? cpu_reader_->method() : "estimate";
  i.ram_measured = cpu_reader_ && cpu_reader_->has_dram();
  if (cpu_reader_) i.cpu_counters = cpu_reader_->counters();
  i.gpu_names = gpu_names_;
  i.gpu_modes = gpu_modes_;
  i.probe_messages = probe_messages_;
  i.notes = notes_;
  i.permission_denied = permission_denied_;
  i.interval_s = interval_s_;
  i.cpus = last_stat_.cpus;
  i.mem_total_gb = mem_total_gb_;
  return i;
}

void Sampler::lock_for_fork() { mu_.lock(); }
void Sampler::unlock_after_fork() { mu_.unlock(); }

void Sampler::forget_after_fork() {
  // Runs in the child (mutex held) with only the forking thread alive: the sampler thread is
  // gone and cannot be joined, so its handle is dropped without joining.
  (void)thread_.release();
  running_ = false;
  stop_requested_ = false;
}

}  // namespace wattwise::energy
