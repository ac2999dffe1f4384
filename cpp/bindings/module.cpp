// wattwise._C: the pybind11 module for the non-tensor API. Loading it also registers the
// torch.ops.wattwise operators (cpp/ops is linked into the same library). No at::Tensor
// crosses this boundary, so libtorch_python is never needed.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "wattwise/common/cpu.h"
#include "wattwise/common/thread_pool.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "wattwise C++ core";
  m.attr("__torch_version__") = WATTWISE_TORCH_VERSION;

  m.def(
      "cpu_info",
      [] {
        const wattwise::CpuFeatures& f = wattwise::cpu_features();
        py::dict d;
        d["simd"] = wattwise::simd_name(wattwise::active_simd());
        d["simd_detected"] = wattwise::simd_name(wattwise::detected_simd());
        d["model"] = wattwise::cpu_model_name();
        d["logical_cpus"] = wattwise::logical_cpus();
        d["physical_cores"] = wattwise::physical_cores();
        d["num_threads"] = wattwise::get_num_threads();
        py::dict features;
        features["avx2"] = f.avx2;
        features["fma"] = f.fma;
        features["f16c"] = f.f16c;
        features["avx512f"] = f.avx512f;
        features["avx512bw"] = f.avx512bw;
        features["avx512_vnni"] = f.avx512vnni;
        features["avx_vnni"] = f.avxvnni;
        d["features"] = features;
        return d;
      },
      "CPU features, the active kernel path and the thread count wattwise uses.");

  m.def("set_simd", &wattwise::set_simd, py::arg("level"),
        "Force the kernel path: 'auto', 'avx2' or 'scalar' (the reference kernels).");
}
