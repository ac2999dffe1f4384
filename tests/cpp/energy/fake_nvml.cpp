// A stand-in NVML for tests of the dlopen path: GPU i draws (i + 1) * FAKE_NVML_POWER_MW
// milliwatts (default 100 W), its energy counter advancing with wall time. Environment
// variables read at nvmlInit_v2: FAKE_NVML_COUNT (GPUs, default 2), FAKE_NVML_NO_ENERGY=1
// (no total-energy counter, as before Volta), FAKE_NVML_FAIL_AFTER=N (sensor calls fail after
// N of them, a GPU falling off the bus).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
int g_count = 2;
bool g_no_energy = false;
long g_fail_after = -1;
long g_calls = 0;
double g_power_w = 100.0;
std::chrono::steady_clock::time_point g_t0;
int g_ids[64];

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
int index_of(void* handle) { return static_cast<int>(static_cast<int*>(handle) - g_ids); }
bool failing() { return g_fail_after >= 0 && ++g_calls > g_fail_after; }
double power_w(int i) { return g_power_w * (i + 1); }
}  // namespace

extern "C" {
int nvmlInit_v2() {
  g_count = env_int("FAKE_NVML_COUNT", 2);
  if (g_count < 0 || g_count > 64) g_count = 0;
  g_no_energy = env_int("FAKE_NVML_NO_ENERGY", 0) != 0;
  g_fail_after = env_int("FAKE_NVML_FAIL_AFTER", -1);
  g_power_w = env_int("FAKE_NVML_POWER_MW", 100000) / 1e3;
  g_calls = 0;
  g_t0 = std::chrono::steady_clock::now();
  return 0;
}
int nvmlShutdown() { return 0; }
int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = static_cast<unsigned int>(g_count);
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void** handle) {
  if (i >= static_cast<unsigned int>(g_count)) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *handle = &g_ids[i];
  return 0;
}
int nvmlDeviceGetName(void* handle, char* name, unsigned int length) {
  std::snprintf(name, length, "Fake GPU %d", index_of(handle));
  return 0;
}
int nvmlDeviceGetUUID(void* handle, char* uuid, unsigned int length) {
  std::snprintf(uuid, length, "GPU-fake-%04d", index_of(handle));
  return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void* handle, unsigned long long* mj) {
  if (g_no_energy) return 3;  // NVML_ERROR_NOT_SUPPORTED
  if (failing()) return 15;   // NVML_ERROR_GPU_IS_LOST
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_t0).count();
  // An offset, so that a reader that forgets to take differences is caught.
  *mj = 5000000ull + static_cast<unsigned long long>(power_w(index_of(handle)) * s * 1e3);
  return 0;
}
int nvmlDeviceGetPowerUsage(void* handle, unsigned int* mw) {
  if (failing()) return 15;
  *mw = static_cast<unsigned int>(power_w(index_of(handle)) * 1e3);
  return 0;
}
}
