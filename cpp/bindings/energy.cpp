// Bindings for cpp/src/energy: the sampler. Every call that touches a sensor releases the GIL,
// and samples cross into Python as numpy arrays, never one by one.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "wattwise/energy/sampler.h"

namespace py = pybind11;

namespace wattwise::bindings {

using energy::Sampler;
using energy::SamplerConfig;

void bind_energy(py::module_& m) {
  py::class_<Sampler>(m, "EnergySampler",
                      "Samples RAPL / perf / NVML counters (or the CPU-time estimate) on a C++ "
                      "thread into a ring buffer of cumulative joules.")
      .def(py::init([](double interval_s, const std::string& sysfs_root,
                       const std::string& procfs_root, int pid, const std::string& cgroup_cpu_file,
                       const std::string& cgroup_memory_file, bool use_rapl, bool use_perf,
                       bool use_nvml, const std::string& nvml_library,
                       std::optional<std::string> cuda_visible_devices, double cpu_watts_per_thread,
                       double cpu_idle_fraction, double ram_watts_per_gb, size_t capacity) {
             SamplerConfig c;
             c.interval_s = interval_s;
             c.sysfs_root = sysfs_root;
             c.procfs_root = procfs_root;
             c.pid = pid;
             c.cgroup_cpu_file = cgroup_cpu_file;
             c.cgroup_memory_file = cgroup_memory_file;
             c.use_rapl = use_rapl;
             c.use_perf = use_perf;
             c.use_nvml = use_nvml;
             c.nvml_library = nvml_library;
             c.cuda_visible_devices_set = cuda_visible_devices.has_value();
             c.cuda_visible_devices = cuda_visible_devices.value_or("");
             c.cpu_watts_per_thread = cpu_watts_per_thread;
             c.cpu_idle_fraction = cpu_idle_fraction;
             c.ram_watts_per_gb = ram_watts_per_gb;
             c.capacity = capacity;
             return std::make_unique<Sampler>(std::move(c));
           }),
           py::kw_only(), py::arg("interval_s") = 0.1, py::arg("sysfs_root") = "/sys",
           py::arg("procfs_root") = "/proc", py::arg("pid") = 0, py::arg("cgroup_cpu_file") = "",
           py::arg("cgroup_memory_file") = "", py::arg("use_rapl") = true,
           py::arg("use_perf") = true, py::arg("use_nvml") = true,
           py::arg("nvml_library") = "libnvidia-ml.so.1",
           py::arg("cuda_visible_devices") = std::nullopt, py::arg("cpu_watts_per_thread"),
           py::arg("cpu_idle_fraction") = 0.3, py::arg("ram_watts_per_gb") = 0.375,
           py::arg("capacity") = size_t{1} << 17, py::call_guard<py::gil_scoped_release>())
      .def("start", &Sampler::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &Sampler::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &Sampler::running)
      .def_property_readonly("width", &Sampler::width)
      .def_property_readonly("dropped", &Sampler::dropped)
      .def(
          "snapshot",
          [](Sampler& s) {
            std::vector<double> row;
            {
              py::gil_scoped_release release;
              row = s.snapshot();
            }
            return py::array_t<double>(static_cast<py::ssize_t>(row.size()), row.data());
          },
          "Samples now (when running) and returns the cumulative row.")
      .def(
          "drain",
          [](Sampler& s) {
            std::vector<double> rows;
            size_t n = 0;
            {
              py::gil_scoped_release release;
              n = s.drain(&rows);
            }
            py::array_t<double> out(
                {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(s.width())});
            if (n) std::copy(rows.begin(), rows.end(), out.mutable_data());
            return out;
          },
          "Rows buffered since the last drain, shape (rows, width).")
      .def("info", [](const Sampler& s) {
        const energy::SamplerInfo i = s.info();
        py::dict d;
        d["cpu_method"] = i.cpu_method;
        d["ram_measured"] = i.ram_measured;
        d["cpu_counters"] = i.cpu_counters;
        d["gpu_names"] = i.gpu_names;
        d["gpu_modes"] = i.gpu_modes;
        d["probe_messages"] = i.probe_messages;
        d["notes"] = i.notes;
        d["permission_denied"] = i.permission_denied;
        d["interval_s"] = i.interval_s;
        d["cpus"] = i.cpus;
        d["mem_total_gb"] = i.mem_total_gb;
        return d;
      });
  m.attr("ENERGY_COLUMNS") = std::vector<std::string>{
      "t_s",           "cpu_measured_j", "cpu_estimate_j",     "ram_measured_j", "ram_estimate_j",
      "process_cpu_j", "process_ram_j",  "machine_busy_cpu_s", "process_cpu_s"};
}

}  // namespace wattwise::bindings
