// Bindings for cpp/src/common: CPU features and the kernel path.
#include <pybind11/stl.h>

#include "bindings.h"
#include "wattwise/common/cpu.h"
#include "wattwise/common/thread_pool.h"

namespace py = pybind11;

namespace wattwise::bindings {

void bind_common(py::module_& m) {
  m.def(
      "cpu_info",
      [] {
        const CpuFeatures& f = cpu_features();
        py::dict d;
        d["simd"] = simd_name(active_simd());
        d["simd_detected"] = simd_name(detected_simd());
        d["model"] = cpu_model_name();
        d["logical_cpus"] = logical_cpus();
        d["physical_cores"] = physical_cores();
        d["num_threads"] = get_num_threads();
        py::dict features;
        features["avx2"] = f.avx2;
        features["fma"] = f.fma;
        features["f16c"] = f.f16c;
        features["avx512f"] = f.avx512f;
        features["avx512bw"] = f.avx512bw;
        features["avx512vl"] = f.avx512vl;
        features["avx512_vnni"] = f.avx512vnni;
        features["avx_vnni"] = f.avxvnni;
        d["features"] = features;
        return d;
      },
      "CPU features, the active kernel path and the thread count wattwise uses.");

  m.def("set_simd", &set_simd, py::arg("level"),
        "Force the kernel path: 'auto', 'avx512vnni', 'avx2' or 'scalar' (the reference "
        "kernels).");
}

}  // namespace wattwise::bindings
