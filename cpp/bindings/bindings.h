// One bind_<pillar> function per pillar, each defined in cpp/bindings/<pillar>.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace wattwise::bindings {

void bind_common(pybind11::module_& m);
void bind_energy(pybind11::module_& m);

}  // namespace wattwise::bindings
