// CPU feature detection and the run-time choice of kernel path: scalar reference, AVX2, or
// AVX-512 VNNI (only the kernels that profit from it have such a variant; every other kernel
// runs its AVX2 version at that level).
#pragma once

#include <string>

namespace wattwise {

// Ordered: a level includes everything below it.
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512Vnni = 2 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avxvnni = false;
};

// Detected once (CPUID plus the OS's XSAVE state), cached for the process.
const CpuFeatures& cpu_features();

// Best level this binary can run here: AVX2 needs AVX2, FMA and F16C; AVX-512 VNNI needs
// that plus AVX-512 F/BW/VL/VNNI with ZMM state enabled by the OS; both need the kernels to
// have been compiled in (they are not on non-x86 builds).
SimdLevel detected_simd();

// Level the dispatchers use: detected_simd(), lowered by the WATTWISE_SIMD environment
// variable ("scalar" | "avx2" | "avx512vnni" | "auto") or set_simd(). Never higher than
// detected_simd().
SimdLevel active_simd();

// Forces a level by name ("scalar", "avx2", "avx512vnni" or "auto"). Throws std::invalid_argument
// for an unknown name or for a level this CPU or build cannot run.
void set_simd(const std::string& name);

const char* simd_name(SimdLevel level);

// "AMD EPYC 7B13" style brand string; empty when unknown.
std::string cpu_model_name();

int logical_cpus();
// Distinct (package, core) pairs from /proc/cpuinfo; logical_cpus() when unavailable.
int physical_cores();

}  // namespace wattwise
