// wattwise._C: the pybind11 module for the non-tensor API. Loading it also registers the
// torch.ops.wattwise operators (cpp/ops is linked into the same library). No at::Tensor
// crosses this boundary, so libtorch_python is never needed. Each pillar binds its own
// API in cpp/bindings/<pillar>.cpp through a bind_<pillar>(module) function.
#include <pybind11/pybind11.h>

#include "bindings.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "wattwise C++ core";
  m.attr("__torch_version__") = WATTWISE_TORCH_VERSION;
  wattwise::bindings::bind_common(m);
  wattwise::bindings::bind_energy(m);
}
