// perf_event power PMU reader (power/energy-pkg, power/energy-ram): 64-bit counters, readable
// without root given CAP_PERFMON or perf_event_paranoid <= 0.
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "wattwise/energy/sources.h"

namespace wattwise::energy {
namespace {

class SystemPerfBackend final : public PerfBackend {
 public:
  int open(uint32_t type, uint64_t config, int cpu) override {
    perf_event_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = type;
    attr.config = config;
    const long fd = ::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : static_cast<int>(fd);
  }
  bool read(int fd, uint64_t* value) override {
    return ::read(fd, value, sizeof *value) == static_cast<ssize_t>(sizeof *value);
  }
  void close(int fd) override { ::close(fd); }
};

struct Event {
  uint64_t config = 0;
  double scale = 1.0;  // to joules
};

// "event=0x02" (possibly with more terms) → config; scale and unit files beside it.
bool parse_event(const std::string& dir, const std::string& name, Event* ev) {
  std::string text;
  if (!read_text_file(dir + "/events/" + name, &text)) return false;
  const size_t at = text.find("event=");
  if (at == std::string::npos) return false;
  ev->config = std::strtoull(text.c_str() + at + 6, nullptr, 0);
  std::string scale;
  if (read_text_file(dir + "/events/" + name + ".scale", &scale)) {
    ev->scale = std::strtod(scale.c_str(), nullptr);
    if (!(ev->scale > 0)) return false;
  }
  std::string unit;
  if (read_text_file(dir + "/events/" + name + ".unit", &unit) && unit.rfind("Joules", 0) != 0)
    return false;  // a unit we do not know how to turn into energy
  return true;
}

// "0,28" or "0-1" → {0, 28} / {0, 1}.
std::vector<int> parse_cpumask(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item[0] < '0' || item[0] > '9') continue;
    const size_t dash = item.find('-');
    const int lo = std::atoi(item.c_str());
    const int hi = dash == std::string::npos ? lo : std::atoi(item.c_str() + dash + 1);
    for (int c = lo; c <= hi && cpus.size() < 4096; ++c) cpus.push_back(c);
  }
  return cpus;
}

struct Counter {
  int fd = -1;
  uint64_t last = 0;
  double scale = 1.0;
  bool dram = false;
  int cpu = 0;
};

class PerfReader final : public CpuEnergyReader {
 public:
  PerfReader(std::shared_ptr<PerfBackend> backend, std::vector<Counter> counters)
      : backend_(std::move(backend)), counters_(std::move(counters)) {}
  ~PerfReader() override {
    for (const Counter& c : counters_) backend_->close(c.fd);
  }
  bool read(CpuDramJoules* out) override {
    std::vector<uint64_t> now(counters_.size());
    double cpu = 0.0, dram = 0.0;
    for (size_t i = 0; i < counters_.size(); ++i) {
      if (!backend_->read(counters_[i].fd, &now[i])) return false;
      // 64-bit counters: unsigned subtraction is exact even across a wrap.
      const double j = static_cast<double>(now[i] - counters_[i].last) * counters_[i].scale;
      (counters_[i].dram ? dram : cpu) += j;
    }
    for (size_t i = 0; i < counters_.size(); ++i) counters_[i].last = now[i];
    out->cpu = cpu;
    out->dram = dram;
    return true;
  }
  bool has_dram() const override {
    for (const Counter& c : counters_)
      if (c.dram) return true;
    return false;
  }
  const char* method() const override { return "perf"; }
  std::vector<std::string> counters() const override {
    std::vector<std::string> out;
    for (const Counter& c : counters_)
      out.push_back(std::string(c.dram ? "power/energy-ram/" : "power/energy-pkg/") + " on cpu " +
                    std::to_string(c.cpu));
    return out;
  }
  // 2^64 scaled units never wrap in practice; the sampler's own cap applies.
  double max_interval_s() const override { return 1e9; }

 private:
  std::shared_ptr<PerfBackend> backend_;
  std::vector<Counter> counters_;
};

}  // namespace

std::unique_ptr<PerfBackend> system_perf_backend() { return std::make_unique<SystemPerfBackend>(); }

std::unique_ptr<CpuEnergyReader> open_perf(const std::string& sysfs_root,
                                           std::shared_ptr<PerfBackend> backend,
                                           ProbeStatus* status) {
  const std::string dir = sysfs_root + "/bus/event_source/devices/power";
  std::string type_text;
  if (!read_text_file(dir + "/type", &type_text)) {
    status->message = "no perf power PMU at " + dir;
    return nullptr;
  }
  const uint32_t type = static_cast<uint32_t>(std::strtoul(type_text.c_str(), nullptr, 10));
  Event pkg, ram;
  if (!parse_event(dir, "energy-pkg", &pkg)) {
    status->message = "the perf power PMU has no usable energy-pkg event";
    return nullptr;
  }
  const bool have_ram = parse_event(dir, "energy-ram", &ram);
  std::string mask;
  std::vector<int> cpus =
      read_text_file(dir + "/cpumask", &mask) ? parse_cpumask(mask) : std::vector<int>{0};
  if (cpus.empty()) cpus.push_back(0);

  std::vector<Counter> counters;
  auto close_all = [&] {
    for (const Counter& c : counters) backend->close(c.fd);
  };
  for (const int cpu : cpus) {
    for (int k = 0; k < (have_ram ? 2 : 1); ++k) {
      const Event& ev = k == 0 ? pkg : ram;
      const int fd = backend->open(type, ev.config, cpu);
      if (fd < 0) {
        close_all();
        status->permission_denied = fd == -EACCES || fd == -EPERM;
        status->message = std::string("perf_event_open(power/") +
                          (k == 0 ? "energy-pkg" : "energy-ram") + "/, cpu " + std::to_string(cpu) +
                          ") failed: " + std::strerror(-fd);
        return nullptr;
      }
      Counter c;
      c.fd = fd;
      c.scale = ev.scale;
      c.dram = k == 1;
      c.cpu = cpu;
      if (!backend->read(fd, &c.last)) {
        backend->close(fd);
        close_all();
        status->message = "reading a perf power counter failed";
        return nullptr;
      }
      counters.push_back(c);
    }
  }
  return std::make_unique<PerfReader>(std::move(backend), std::move(counters));
}

}  // namespace wattwise::energy
