// CPUID-based feature detection; the OS check matters because a hypervisor can expose AVX2 in
// CPUID while not saving YMM state.
#include "wattwise/common/cpu.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define WATTWISE_X86_CPUID 1
#endif

namespace wattwise {
namespace {

#ifdef WATTWISE_X86_CPUID
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef WATTWISE_X86_CPUID
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  f.fma = (ecx >> 12) & 1;
  f.f16c = (ecx >> 29) & 1;
  if (!osxsave || !avx) return CpuFeatures{};
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_state) return CpuFeatures{};
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = (ebx >> 5) & 1;
    f.avx512f = zmm_state && ((ebx >> 16) & 1);
    f.avx512bw = zmm_state && ((ebx >> 30) & 1);
    f.avx512vl = zmm_state && ((ebx >> 31) & 1);
    f.avx512vnni = zmm_state && ((ecx >> 11) & 1);
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avxvnni = (eax >> 4) & 1;
#endif
  return f;
}

SimdLevel parse_level(const std::string& name) {
  if (name == "scalar" || name == "ref") return SimdLevel::kScalar;
  if (name == "avx2") return SimdLevel::kAvx2;
  if (name == "avx512vnni") return SimdLevel::kAvx512Vnni;
  if (name == "auto") return detected_simd();
  throw std::invalid_argument("simd level must be 'auto', 'avx512vnni', 'avx2' or 'scalar', got '" +
                              name + "'");
}

// -1 means "not set yet": the environment is read on first use.
std::atomic<int> g_active{-1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

SimdLevel detected_simd() {
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return SimdLevel::kScalar;
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni) return SimdLevel::kAvx512Vnni;
#endif
  return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

void set_simd(const std::string& name) {
  const SimdLevel level = parse_level(name);
  if (static_cast<int>(level) > static_cast<int>(detected_simd())) {
    throw std::invalid_argument("simd level '" + name +
                                "' is not available on this CPU/build (best: '" +
                                simd_name(detected_simd()) + "')");
  }
  g_active.store(static_cast<int>(level), std::memory_order_relaxed);
}

SimdLevel active_simd() {
  int level = g_active.load(std::memory_order_relaxed);
  if (level < 0) {
    level = static_cast<int>(detected_simd());
    const char* env = std::getenv("WATTWISE_SIMD");
    if (env != nullptr && *env != '\0') {
      // An unusable value in the environment must not abort a program: keep the detected
      // level, which is always safe to run.
      try {
        const SimdLevel wanted = parse_level(env);
        if (static_cast<int>(wanted) < level) level = static_cast<int>(wanted);
      } catch (const std::invalid_argument&) {
      }
    }
    g_active.store(level, std::memory_order_relaxed);
  }
  return static_cast<SimdLevel>(level);
}

const char* simd_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512Vnni:
      return "avx512vnni";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kScalar:
      return "scalar";
  }
  return "scalar";
}

std::string cpu_model_name() {
#ifdef WATTWISE_X86_CPUID
  unsigned regs[12] = {};
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                  &regs[4 * i + 3]);
    }
    char brand[49] = {};
    std::memcpy(brand, regs, 48);
    std::string s(brand);
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    if (first != std::string::npos) return s.substr(first, last - first + 1);
  }
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return {};
}

int logical_cpus() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int physical_cores() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int package = 0;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const int value = std::atoi(line.c_str() + colon + 1);
    if (line.rfind("physical id", 0) == 0) package = value;
    if (line.rfind("core id", 0) == 0) cores.emplace(package, value);
  }
  return cores.empty() ? logical_cpus() : static_cast<int>(cores.size());
}

}  // namespace wattwise
