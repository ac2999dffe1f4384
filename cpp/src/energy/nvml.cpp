// NVML through dlopen (no build or link dependency on the CUDA toolkit): the total-energy
// counter where the GPU has one (Volta+), else power polled and integrated (trapezoid).
#include <dlfcn.h>

#include <cctype>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "wattwise/energy/sources.h"

namespace wattwise::energy {
namespace {

using nvmlDevice_t = void*;
using nvmlReturn_t = int;
constexpr nvmlReturn_t kSuccess = 0;

struct Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*) = nullptr;
};

template <typename F>
bool bind(void* lib, const char* symbol, F* fn) {
  *fn = reinterpret_cast<F>(::dlsym(lib, symbol));
  return *fn != nullptr;
}

struct Gpu {
  nvmlDevice_t handle = nullptr;
  std::string name;
  bool counter = false;
  unsigned long long last_mj = 0;
  double last_w = 0.0;
};

class NvmlReader final : public GpuEnergyReader {
 public:
  NvmlReader(Api api, std::vector<Gpu> gpus, double t_s)
      : api_(api), gpus_(std::move(gpus)), last_t_(t_s) {}
  ~NvmlReader() override { api_.shutdown(); }
  int count() const override { return static_cast<int>(gpus_.size()); }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const Gpu& g : gpus_) out.push_back(g.name);
    return out;
  }
  std::vector<std::string> modes() const override {
    std::vector<std::string> out;
    for (const Gpu& g : gpus_) out.push_back(g.counter ? "counter" : "power");
    return out;
  }
  bool read(double t_s, double* out) override {
    bool ok = true;
    const double dt = t_s - last_t_;
    for (size_t i = 0; i < gpus_.size(); ++i) {
      Gpu& g = gpus_[i];
      if (g.counter) {
        unsigned long long mj = 0;
        if (api_.energy(g.handle, &mj) != kSuccess) {
          ok = false;
          continue;
        }
        // Millijoules since driver load; a reset (driver reload) restarts it from zero.
        if (mj >= g.last_mj) out[i] += static_cast<double>(mj - g.last_mj) / 1e3;
        g.last_mj = mj;
      } else {
        unsigned int mw = 0;
        if (api_.power(g.handle, &mw) != kSuccess) {
          ok = false;
          continue;
        }
        const double w = mw / 1e3;
        if (dt > 0) out[i] += 0.5 * (g.last_w + w) * dt;
        g.last_w = w;
      }
    }
    last_t_ = t_s;
    return ok;
  }

 private:
  Api api_;
  std::vector<Gpu> gpus_;
  double last_t_;
};

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

}  // namespace

std::unique_ptr<GpuEnergyReader> open_nvml(const std::string& library,
                                           const char* cuda_visible_devices, double t_s,
                                           ProbeStatus* status) {
  void* lib = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = ::dlerror();
    status->message = "NVML not loaded (" + std::string(err ? err : library) + ")";
    return nullptr;
  }
  Api api;
  if (!bind(lib, "nvmlInit_v2", &api.init) || !bind(lib, "nvmlShutdown", &api.shutdown) ||
      !bind(lib, "nvmlDeviceGetCount_v2", &api.count) ||
      !bind(lib, "nvmlDeviceGetHandleByIndex_v2", &api.handle) ||
      !bind(lib, "nvmlDeviceGetName", &api.name) ||
      !bind(lib, "nvmlDeviceGetPowerUsage", &api.power)) {
    status->message = library + " lacks the NVML functions wattwise needs";
    return nullptr;
  }
  bind(lib, "nvmlDeviceGetUUID", &api.uuid);
  bind(lib, "nvmlDeviceGetTotalEnergyConsumption", &api.energy);
  if (api.init() != kSuccess) {
    status->message = "nvmlInit failed (no NVIDIA driver loaded?)";
    return nullptr;
  }
  unsigned int n = 0;
  if (api.count(&n) != kSuccess) n = 0;

  std::vector<Gpu> all(n);
  std::vector<std::string> uuids(n);
  for (unsigned int i = 0; i < n; ++i) {
    if (api.handle(i, &all[i].handle) != kSuccess) all[i].handle = nullptr;
    char buf[96] = {0};
    if (all[i].handle && api.name(all[i].handle, buf, sizeof buf - 1) == kSuccess)
      all[i].name = buf;
    char ubuf[96] = {0};
    if (all[i].handle && api.uuid && api.uuid(all[i].handle, ubuf, sizeof ubuf - 1) == kSuccess)
      uuids[i] = ubuf;
  }

  // CUDA_VISIBLE_DEVICES: indices or (prefixes of) UUIDs; like CUDA, stop at the first
  // entry that names no device.
  std::vector<unsigned int> picked;
  if (cuda_visible_devices == nullptr) {
    for (unsigned int i = 0; i < n; ++i) picked.push_back(i);
  } else {
    std::stringstream in(cuda_visible_devices);
    std::string item;
    while (std::getline(in, item, ',')) {
      item = trim(item);
      int found = -1;
      if (!item.empty() && std::isdigit(static_cast<unsigned char>(item[0]))) {
        const long idx = std::strtol(item.c_str(), nullptr, 10);
        if (idx >= 0 && idx < static_cast<long>(n)) found = static_cast<int>(idx);
      } else if (item.rfind("GPU-", 0) == 0) {
        for (unsigned int i = 0; i < n; ++i)
          if (!uuids[i].empty() && uuids[i].rfind(item, 0) == 0) found = static_cast<int>(i);
      }
      if (found < 0) break;
      bool dup = false;
      for (unsigned int p : picked) dup = dup || p == static_cast<unsigned int>(found);
      if (!dup) picked.push_back(static_cast<unsigned int>(found));
    }
  }

  std::vector<Gpu> gpus;
  for (unsigned int i : picked) {
    Gpu g = all[i];
    if (g.handle == nullptr) continue;
    if (g.name.empty()) g.name = "GPU " + std::to_string(i);
    unsigned long long mj = 0;
    if (api.energy && api.energy(g.handle, &mj) == kSuccess) {
      g.counter = true;
      g.last_mj = mj;
    } else {
      unsigned int mw = 0;
      if (api.power(g.handle, &mw) != kSuccess) continue;  // e.g. a MIG slice: no sensor
      g.last_w = mw / 1e3;
    }
    gpus.push_back(g);
  }
  if (gpus.empty()) {
    api.shutdown();
    status->message = n == 0 ? "NVML reports no GPU"
                             : "no visible GPU with an energy or power sensor "
                               "(CUDA_VISIBLE_DEVICES, MIG slices)";
    return nullptr;
  }
  return std::make_unique<NvmlReader>(api, std::move(gpus), t_s);
}

}  // namespace wattwise::energy
