// Powercap RAPL reader: wrap-safe deltas and deduplication of overlapping domains.
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "wattwise/energy/sources.h"

namespace wattwise::energy {
namespace {

// Without constraint_0_max_power_uw we assume no zone draws more than this; it only bounds
// the sampling period (one wrap at most between reads), so erring high is safe.
constexpr double kAssumedMaxPowerW = 1000.0;

enum class Kind { kPackage, kDram, kPsys, kCore, kUncore, kOther };

struct Zone {
  std::string dir;    // e.g. intel-rapl:0:2
  std::string name;   // e.g. dram
  bool mmio = false;  // intel-rapl-mmio:* rather than the MSR interface
  Kind kind = Kind::kOther;
  int package = -1;  // package id, from the zone or its parent
  int die = -1;
  uint64_t range_uj = 0;
  uint64_t last_uj = 0;
  double max_power_w = kAssumedMaxPowerW;
};

bool read_u64(const std::string& path, uint64_t* v) {
  std::string text;
  if (!read_text_file(path, &text)) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || errno != 0) return false;
  *v = static_cast<uint64_t>(x);
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// "package-0" / "package-0-die-1" → package and die ids.
void parse_package_name(const std::string& name, int* package, int* die) {
  *package = std::atoi(name.c_str() + 8);
  const size_t d = name.find("-die-");
  *die = d == std::string::npos ? -1 : std::atoi(name.c_str() + d + 5);
}

class RaplReader final : public CpuEnergyReader {
 public:
  explicit RaplReader(std::string base, std::vector<Zone> cpu, std::vector<Zone> dram,
                      std::vector<std::string> described)
      : base_(std::move(base)),
        cpu_(std::move(cpu)),
        dram_(std::move(dram)),
        described_(std::move(described)) {}

  bool read(CpuDramJoules* out) override {
    double cpu = 0.0, dram = 0.0;
    std::vector<uint64_t> cpu_now(cpu_.size()), dram_now(dram_.size());
    if (!read_all(cpu_, &cpu_now, &cpu) || !read_all(dram_, &dram_now, &dram)) return false;
    for (size_t i = 0; i < cpu_.size(); ++i) cpu_[i].last_uj = cpu_now[i];
    for (size_t i = 0; i < dram_.size(); ++i) dram_[i].last_uj = dram_now[i];
    out->cpu = cpu;
    out->dram = dram;
    return true;
  }
  bool has_dram() const override { return !dram_.empty(); }
  const char* method() const override { return "rapl"; }
  std::vector<std::string> counters() const override { return described_; }
  double max_interval_s() const override {
    double bound = 1e9;
    for (const auto* zones : {&cpu_, &dram_})
      for (const Zone& z : *zones)
        bound = std::min(bound, static_cast<double>(z.range_uj) / 1e6 / z.max_power_w);
    return bound;
  }

 private:
  bool read_all(const std::vector<Zone>& zones, std::vector<uint64_t>* now, double* joules) {
    for (size_t i = 0; i < zones.size(); ++i) {
      uint64_t v = 0;
      if (!read_u64(base_ + "/" + zones[i].dir + "/energy_uj", &v)) return false;
      const Zone& z = zones[i];
      // The counter runs modulo max_energy_range_uj; the period bound makes one wrap the
      // most that can have happened, so a smaller value means exactly one wrap.
      uint64_t delta = 0;
      if (v >= z.last_uj)
        delta = v - z.last_uj;
      else if (z.last_uj <= z.range_uj)
        delta = z.range_uj - z.last_uj + v;
      // else: a value beyond the advertised range (a broken sensor): count nothing rather
      // than an absurd wrap.
      (*now)[i] = v;
      *joules += static_cast<double>(delta) / 1e6;
    }
    return true;
  }

  std::string base_;
  std::vector<Zone> cpu_, dram_;
  std::vector<std::string> described_;
};

// Keeps one zone per (kind, package) group: the MSR interface over MMIO, and per-die zones
// only when their counters differ (a multi-die part that repeats one package counter per
// die would otherwise be counted once per die).
std::vector<Zone> dedup(std::vector<Zone> zones, std::vector<std::string>* dropped) {
  std::sort(zones.begin(), zones.end(), [](const Zone& a, const Zone& b) {
    if (a.package != b.package) return a.package < b.package;
    if (a.mmio != b.mmio) return !a.mmio;
    if (a.die != b.die) return a.die < b.die;
    return a.dir < b.dir;
  });
  std::vector<Zone> kept;
  for (const Zone& z : zones) {
    bool duplicate = false;
    for (const Zone& k : kept) {
      if (k.package != z.package || z.package < 0) continue;
      const bool same_counter =
          k.range_uj == z.range_uj &&
          std::fabs(static_cast<double>(k.last_uj) - static_cast<double>(z.last_uj)) <= 1e6;
      // Different interfaces for one package, or two die zones showing one counter.
      if (k.mmio != z.mmio || k.die < 0 || z.die < 0 || same_counter) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) {
      dropped->push_back(z.dir + " (" + z.name + ", duplicate)");
    } else {
      kept.push_back(z);
    }
  }
  return kept;
}

}  // namespace

std::unique_ptr<CpuEnergyReader> open_rapl(const std::string& sysfs_root, ProbeStatus* status) {
  const std::string base = sysfs_root + "/class/powercap";
  DIR* d = ::opendir(base.c_str());
  if (d == nullptr) {
    status->message = "no powercap interface at " + base;
    return nullptr;
  }
  std::vector<std::string> dirs;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind("intel-rapl:", 0) == 0 || n.rfind("intel-rapl-mmio:", 0) == 0) dirs.push_back(n);
  }
  ::closedir(d);
  std::sort(dirs.begin(), dirs.end());

  std::map<std::string, std::string> names;  // dir → zone name, to find subzones' packages
  std::vector<Zone> zones;
  int denied = 0;
  for (const std::string& dir : dirs) {
    std::string name;
    if (!read_text_file(base + "/" + dir + "/name", &name)) continue;
    name = trim(name);
    names[dir] = name;
    Zone z;
    z.dir = dir;
    z.name = name;
    z.mmio = dir.rfind("intel-rapl-mmio:", 0) == 0;
    if (name.rfind("package-", 0) == 0) {
      z.kind = Kind::kPackage;
      parse_package_name(name, &z.package, &z.die);
    } else if (name == "dram") {
      z.kind = Kind::kDram;
    } else if (name == "psys") {
      z.kind = Kind::kPsys;
    } else if (name == "core") {
      z.kind = Kind::kCore;
    } else if (name == "uncore") {
      z.kind = Kind::kUncore;
    }
    if (!read_u64(base + "/" + dir + "/energy_uj", &z.last_uj)) {
      if (errno == EACCES || errno == EPERM) ++denied;
      continue;
    }
    if (!read_u64(base + "/" + dir + "/max_energy_range_uj", &z.range_uj) || z.range_uj == 0)
      continue;
    uint64_t max_uw = 0;
    if (read_u64(base + "/" + dir + "/constraint_0_max_power_uw", &max_uw) && max_uw > 0)
      z.max_power_w = std::max(static_cast<double>(max_uw) / 1e6, 1.0);
    zones.push_back(z);
  }
  // Subzones (intel-rapl:0:2) inherit the package of their parent (intel-rapl:0).
  for (Zone& z : zones) {
    if (z.package >= 0) continue;
    const size_t colon = z.dir.rfind(':');
    const size_t first = z.dir.find(':');
    if (colon != first) {
      const auto parent = names.find(z.dir.substr(0, colon));
      int die = -1;
      if (parent != names.end() && parent->second.rfind("package-", 0) == 0)
        parse_package_name(parent->second, &z.package, &die);
    }
  }

  std::vector<Zone> packages, dram, psys, core;
  for (const Zone& z : zones) {
    if (z.kind == Kind::kPackage) packages.push_back(z);
    if (z.kind == Kind::kDram) dram.push_back(z);
    if (z.kind == Kind::kPsys) psys.push_back(z);
    if (z.kind == Kind::kCore || z.kind == Kind::kUncore) core.push_back(z);
  }
  std::vector<std::string> described;
  std::vector<std::string> dropped;
  // psys ⊇ package ⊇ core/uncore: count the narrowest complete set once.
  std::vector<Zone> cpu;
  if (!packages.empty()) {
    cpu = dedup(packages, &dropped);
    for (const Zone& z : psys) dropped.push_back(z.dir + " (psys, contains the packages)");
    for (const Zone& z : core) dropped.push_back(z.dir + " (" + z.name + ", inside its package)");
  } else if (!psys.empty()) {
    cpu = dedup(psys, &dropped);
    for (const Zone& z : core) dropped.push_back(z.dir + " (" + z.name + ", inside psys)");
    // psys covers the whole SoC including memory: DRAM would be counted twice.
    for (const Zone& z : dram) dropped.push_back(z.dir + " (dram, inside psys)");
    dram.clear();
  } else {
    cpu = core;
  }
  dram = dedup(dram, &dropped);
  if (cpu.empty()) {
    status->permission_denied = denied > 0;
    status->message = denied > 0
                          ? "RAPL energy_uj under " + base + " is not readable (permission denied)"
                          : "no readable RAPL package zone under " + base;
    return nullptr;
  }
  for (const Zone& z : cpu) described.push_back(z.dir + " (" + z.name + ")");
  for (const Zone& z : dram) described.push_back(z.dir + " (" + z.name + ")");
  for (const std::string& s : dropped) described.push_back("not summed: " + s);
  if (denied > 0) {
    status->permission_denied = true;
    described.push_back("some RAPL zones were not readable (permission denied)");
  }
  return std::make_unique<RaplReader>(base, std::move(cpu), std::move(dram), std::move(described));
}

}  // namespace wattwise::energy
