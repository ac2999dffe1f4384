// Sampler and sources on fake sysfs/procfs trees: RAPL counters that advance, wrap, repeat
// and vanish; a fake perf backend; the fake NVML library through dlopen; the estimate.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "wattwise/energy/sampler.h"
#include "wattwise/energy/sources.h"

namespace wattwise::energy {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A fake /sys and /proc in a temporary directory.
class FakeTrees : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wattwise_energy_XXXXXX";
    root_ = ::mkdtemp(tmpl);
    sys_ = root_ / "sys";
    proc_ = root_ / "proc";
    fs::create_directories(sys_);
    set_proc_stat(1000, 1000);
    set_process_ticks(10);
    write(proc_ / "self/statm", "1000 250000 0 0 0 0 0\n");  // 250000 pages resident
    write(proc_ / "meminfo", "MemTotal:       8000000 kB\nMemFree: 1 kB\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void set_proc_stat(long busy_ticks, long idle_ticks) {
    write(proc_ / "stat", "cpu  " + std::to_string(busy_ticks) + " 0 0 " +
                              std::to_string(idle_ticks) +
                              " 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n"
                              "cpu1 1 0 0 1 0 0 0 0 0 0\nintr 1\n");
  }
  void set_process_ticks(long ticks) {
    write(proc_ / "self/stat", "4242 (py (thon)) R 1 1 1 0 -1 0 0 0 0 0 " + std::to_string(ticks) +
                                   " 0 0 0 20 0 1 0 0 0 0\n");
  }
  fs::path zone(const std::string& dir) { return sys_ / "class/powercap" / dir; }
  void add_zone(const std::string& dir, const std::string& name, uint64_t uj,
                uint64_t range = 262143328850ull) {
    write(zone(dir) / "name", name + "\n");
    write(zone(dir) / "energy_uj", std::to_string(uj) + "\n");
    write(zone(dir) / "max_energy_range_uj", std::to_string(range) + "\n");
  }
  void set_uj(const std::string& dir, uint64_t uj) {
    write(zone(dir) / "energy_uj", std::to_string(uj) + "\n");
  }
  SamplerConfig config() const {
    SamplerConfig c;
    c.sysfs_root = sys_.string();
    c.procfs_root = proc_.string();
    c.interval_s = 3600;  // the tests drive sampling with snapshot()
    c.cpu_watts_per_thread = 10.0;
    c.cpu_idle_fraction = 0.0;
    c.use_nvml = false;
    return c;
  }

  fs::path root_, sys_, proc_;
};

TEST_F(FakeTrees, RaplCountersAdvance) {
  add_zone("intel-rapl:0", "package-0", 1000000);
  add_zone("intel-rapl:0:0", "dram", 500000);
  Sampler s(config());
  EXPECT_EQ(s.info().cpu_method, "rapl");
  EXPECT_TRUE(s.info().ram_measured);
  s.start();
  set_uj("intel-rapl:0", 3500000);
  set_uj("intel-rapl:0:0", 1500000);
  std::vector<double> row = s.snapshot();
  EXPECT_DOUBLE_EQ(row[kCpuMeasured], 2.5);
  EXPECT_DOUBLE_EQ(row[kRamMeasured], 1.0);
  EXPECT_DOUBLE_EQ(row[kCpuEstimate], 0.0);
  EXPECT_DOUBLE_EQ(row[kRamEstimate], 0.0);
  s.stop();
}

TEST_F(FakeTrees, RaplWrapIsTakenModuloTheRange) {
  const uint64_t range = 1000000000ull;
  add_zone("intel-rapl:0", "package-0", range - 1000000, range);
  Sampler s(config());
  s.start();
  set_uj("intel-rapl:0", 2000000);  // wrapped: 1 J before the wrap, 2 J after
  EXPECT_DOUBLE_EQ(s.snapshot()[kCpuMeasured], 3.0);
  set_uj("intel-rapl:0", 2500000);
  EXPECT_DOUBLE_EQ(s.snapshot()[kCpuMeasured], 3.5);
  s.stop();
}

TEST_F(FakeTrees, PeriodIsBoundedSoThatAtMostOneWrapOccurs) {
  // 1000 J of range at a 200 W limit wraps every 5 s: sample at least every 2.5 s.
  add_zone("intel-rapl:0", "package-0", 0, 1000000000ull);
  write(zone("intel-rapl:0") / "constraint_0_max_power_uw", "200000000\n");
  SamplerConfig c = config();
  c.interval_s = 10;
  Sampler s(c);
  EXPECT_DOUBLE_EQ(s.info().interval_s, 2.5);
  c.interval_s = 1;
  EXPECT_DOUBLE_EQ(Sampler(c).info().interval_s, 1.0);
}

TEST_F(FakeTrees, OverlappingDomainsAreCountedOnce) {
  // Package 0 through MSR and MMIO, its core/uncore subzones, psys over everything, DRAM
  // under both interfaces, package 1 repeated per die.
  add_zone("intel-rapl:0", "package-0", 0);
  add_zone("intel-rapl:0:0", "core", 0);
  add_zone("intel-rapl:0:1", "uncore", 0);
  add_zone("intel-rapl:0:2", "dram", 0);
  add_zone("intel-rapl-mmio:0", "package-0", 0);
  add_zone("intel-rapl-mmio:0:0", "dram", 0);
  add_zone("intel-rapl:1", "psys", 0);
  add_zone("intel-rapl:2", "package-1-die-0", 7000000);
  add_zone("intel-rapl:3", "package-1-die-1", 7000000);
  Sampler s(config());
  s.start();
  for (const char* d : {"intel-rapl:0", "intel-rapl-mmio:0"}) set_uj(d, 10000000);
  for (const char* d : {"intel-rapl:0:0", "intel-rapl:0:1"}) set_uj(d, 4000000);
  for (const char* d : {"intel-rapl:0:2", "intel-rapl-mmio:0:0"}) set_uj(d, 3000000);
  set_uj("intel-rapl:1", 50000000);
  for (const char* d : {"intel-rapl:2", "intel-rapl:3"}) set_uj(d, 12000000);
  std::vector<double> row = s.snapshot();
  EXPECT_DOUBLE_EQ(row[kCpuMeasured], 10.0 + 5.0);  // package 0 + package 1, once each
  EXPECT_DOUBLE_EQ(row[kRamMeasured], 3.0);
  s.stop();
}

TEST_F(FakeTrees, DistinctDieCountersAreSummed) {
  add_zone("intel-rapl:0", "package-0-die-0", 1000000);
  add_zone("intel-rapl:1", "package-0-die-1", 90000000);
  Sampler s(config());
  s.start();
  set_uj("intel-rapl:0", 3000000);
  set_uj("intel-rapl:1", 93000000);
  EXPECT_DOUBLE_EQ(s.snapshot()[kCpuMeasured], 5.0);
  s.stop();
}

TEST_F(FakeTrees, PsysAloneIsTheCpuFigure) {
  add_zone("intel-rapl:0", "psys", 0);
  add_zone("intel-rapl:0:0", "dram", 0);
  Sampler s(config());
  EXPECT_FALSE(s.info().ram_measured);  // psys already contains memory
  s.start();
  set_uj("intel-rapl:0", 4000000);
  EXPECT_DOUBLE_EQ(s.snapshot()[kCpuMeasured], 4.0);
  s.stop();
}

TEST_F(FakeTrees, SensorVanishingMidRunFallsBackToTheEstimate) {
  add_zone("intel-rapl:0", "package-0", 0);
  Sampler s(config());
  s.start();
  set_uj("intel-rapl:0", 2000000);
  EXPECT_DOUBLE_EQ(s.snapshot()[kCpuMeasured], 2.0);
  fs::remove_all(zone("intel-rapl:0"));
  set_proc_stat(1000 + 100, 1000);  // 100 ticks busy = 1 s at USER_HZ 100
  const double busy_s = 100.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::vector<double> row = s.snapshot();
  EXPECT_DOUBLE_EQ(row[kCpuMeasured], 2.0);
  EXPECT_NEAR(row[kCpuEstimate], 10.0 * busy_s, 1e-9);
  s.stop();
  bool noted = false;
  for (const std::string& n : s.info().notes)
    noted = noted || n.find("vanished") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST_F(FakeTrees, PermissionDeniedIsReportedAndFallsBack) {
  add_zone("intel-rapl:0", "package-0", 0);
  fs::permissions(zone("intel-rapl:0") / "energy_uj", fs::perms::owner_write);
  auto check = [&] {
    ProbeStatus st;
    const bool denied = open_rapl(sys_.string(), &st) == nullptr && st.permission_denied &&
                        st.message.find("permission denied") != std::string::npos;
    return denied;
  };
  if (::geteuid() != 0) {
    EXPECT_TRUE(check());
    return;
  }
  // root reads any file: check as an unprivileged user in a child process.
  fs::permissions(root_, fs::perms::all);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    ::_exit(check() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(FakeTrees, EstimateFollowsCpuTimeAndMemory) {
  SamplerConfig c = config();
  Sampler s(c);
  EXPECT_EQ(s.info().cpu_method, "estimate");
  EXPECT_EQ(s.info().cpus, 2);
  s.start();
  set_proc_stat(1000 + 200, 1000);
  set_process_ticks(10 + 50);
  std::vector<double> row = s.snapshot();
  const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  EXPECT_NEAR(row[kMachineBusyS], 200 * tick, 1e-9);
  EXPECT_NEAR(row[kProcessCpuS], 50 * tick, 1e-9);
  EXPECT_NEAR(row[kCpuEstimate], 10.0 * 200 * tick, 1e-9);  // idle fraction 0
  EXPECT_NEAR(row[kProcessCpu], 10.0 * 50 * tick, 1e-9);
  const double mem_gb = 8000000.0 * 1024 / 1e9;
  EXPECT_NEAR(row[kRamEstimate], mem_gb * 0.375 * row[kT], 1e-9);
  const double rss_gb = 250000.0 * ::sysconf(_SC_PAGESIZE) / 1e9;
  EXPECT_NEAR(row[kProcessRam], row[kRamEstimate] * rss_gb / mem_gb, 1e-9);
  s.stop();
}

TEST_F(FakeTrees, CgroupCpuTimeReplacesTheProcess) {
  write(root_ / "cg1/cpuacct.usage", "2000000000\n");  // v1: nanoseconds
  write(root_ / "cg1/memory.usage_in_bytes", "4096000000\n");
  write(root_ / "cg2/cpu.stat", "usage_usec 500000\nuser_usec 1\n");  // v2: microseconds
  double v = 0;
  ASSERT_TRUE(read_cgroup_cpu_s((root_ / "cg1/cpuacct.usage").string(), &v));
  EXPECT_DOUBLE_EQ(v, 2.0);
  ASSERT_TRUE(read_cgroup_cpu_s((root_ / "cg2/cpu.stat").string(), &v));
  EXPECT_DOUBLE_EQ(v, 0.5);
  ASSERT_TRUE(read_cgroup_memory_gb((root_ / "cg1/memory.usage_in_bytes").string(), &v));
  EXPECT_DOUBLE_EQ(v, 4.096);
  EXPECT_FALSE(read_cgroup_cpu_s((root_ / "cg3/cpu.stat").string(), &v));

  SamplerConfig c = config();
  c.cgroup_cpu_file = (root_ / "cg1/cpuacct.usage").string();
  c.cgroup_memory_file = (root_ / "cg1/memory.usage_in_bytes").string();
  Sampler s(c);
  s.start();
  write(root_ / "cg1/cpuacct.usage", "3500000000\n");
  set_process_ticks(1000);  // ignored: the cgroup is tracked
  std::vector<double> row = s.snapshot();
  EXPECT_NEAR(row[kProcessCpuS], 1.5, 1e-12);
  EXPECT_NEAR(row[kProcessCpu], 15.0, 1e-9);
  EXPECT_NEAR(row[kProcessRam], row[kRamEstimate] * 4.096 / (8000000.0 * 1024 / 1e9), 1e-9);
  s.stop();
  c.cgroup_cpu_file = (root_ / "cg3/cpu.stat").string();
  EXPECT_THROW(Sampler{c}, std::invalid_argument);
}

TEST_F(FakeTrees, IdlePowerIsCountedForEveryCpu) {
  SamplerConfig c = config();
  c.cpu_idle_fraction = 0.5;
  Sampler s(c);
  s.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<double> row = s.snapshot();  // no busy ticks: idle power only
  EXPECT_NEAR(row[kCpuEstimate], 10.0 * 0.5 * 2 * row[kT], 1e-9);
  EXPECT_GT(row[kCpuEstimate], 0.0);
  s.stop();
}

TEST_F(FakeTrees, RingBufferKeepsTheNewestRows) {
  SamplerConfig c = config();
  c.capacity = 4;
  Sampler s(c);
  s.start();
  for (int i = 0; i < 10; ++i) s.snapshot();
  std::vector<double> rows;
  ASSERT_EQ(s.drain(&rows), 4u);
  EXPECT_EQ(s.dropped(), 7u);  // the start row and 10 samples, 4 kept
  const int w = s.width();
  for (int i = 1; i < 4; ++i) EXPECT_LE(rows[(i - 1) * w + kT], rows[i * w + kT]);
  EXPECT_EQ(s.drain(&rows), 0u);
  s.stop();
  EXPECT_EQ(s.drain(&rows), 1u);  // the final sample
}

TEST_F(FakeTrees, ThreadSamplesAtTheConfiguredPeriodAndRestarts) {
  SamplerConfig c = config();
  c.interval_s = 0.005;
  Sampler s(c);
  for (int run = 0; run < 2; ++run) {
    s.start();
    EXPECT_TRUE(s.running());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s.stop();
    EXPECT_FALSE(s.running());
    std::vector<double> rows;
    EXPECT_GE(s.drain(&rows), 3u);  // start row, some periodic rows, the stop row
    EXPECT_LT(rows[kT], 1e-12);     // each run starts from zero
  }
}

TEST_F(FakeTrees, ForkedChildDoesNotInheritARunningSampler) {
  SamplerConfig c = config();
  c.interval_s = 0.001;
  Sampler s(c);
  s.start();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const bool ok = !s.running();
    s.snapshot();
    s.stop();
    s.start();
    s.stop();
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(s.running());
  s.stop();
}

TEST_F(FakeTrees, BadConfigurationThrowsNamingTheField) {
  auto expect_throw = [&](SamplerConfig c, const std::string& field) {
    try {
      Sampler s(c);
      ADD_FAILURE() << "no exception for " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SamplerConfig c = config();
  c.interval_s = 0;
  expect_throw(c, "interval_s");
  c = config();
  c.interval_s = 1.0 / 0.0;
  expect_throw(c, "interval_s");
  c = config();
  c.cpu_watts_per_thread = -1;
  expect_throw(c, "cpu_watts_per_thread");
  c = config();
  c.cpu_idle_fraction = 2;
  expect_throw(c, "cpu_idle_fraction");
  c = config();
  c.capacity = 1;
  expect_throw(c, "capacity");
  c = config();
  c.procfs_root = (root_ / "nowhere").string();
  expect_throw(c, "procfs_root");
  c = config();
  c.pid = 999999999;
  expect_throw(c, "pid");
}

// A stand-in kernel for the perf power PMU: counters the test sets by hand.
class FakePerf : public PerfBackend {
 public:
  std::map<uint64_t, uint64_t> values;  // config → count
  int open_error = 0;
  bool fail_reads = false;
  int open(uint32_t type, uint64_t config, int cpu) override {
    if (open_error) return -open_error;
    EXPECT_EQ(type, 23u);
    EXPECT_EQ(cpu, 0);
    return static_cast<int>(config);
  }
  bool read(int fd, uint64_t* value) override {
    if (fail_reads) return false;
    *value = values[static_cast<uint64_t>(fd)];
    return true;
  }
  void close(int) override {}
};

class FakePerfTrees : public FakeTrees {
 protected:
  void SetUp() override {
    FakeTrees::SetUp();
    const fs::path pmu = sys_ / "bus/event_source/devices/power";
    write(pmu / "type", "23\n");
    write(pmu / "cpumask", "0\n");
    write(pmu / "events/energy-pkg", "event=0x02\n");
    write(pmu / "events/energy-pkg.scale", "2.3283064365386962890625e-10\n");
    write(pmu / "events/energy-pkg.unit", "Joules\n");
    write(pmu / "events/energy-ram", "event=0x03\n");
    write(pmu / "events/energy-ram.scale", "2.3283064365386962890625e-10\n");
    write(pmu / "events/energy-ram.unit", "Joules\n");
  }
};

TEST_F(FakePerfTrees, PerfCountersAreScaledToJoules) {
  auto perf = std::make_shared<FakePerf>();
  perf->values[2] = 1ull << 40;
  perf->values[3] = 5;
  SamplerConfig c = config();
  c.perf_backend = perf;
  Sampler s(c);
  EXPECT_EQ(s.info().cpu_method, "perf");
  s.start();
  perf->values[2] += 10ull << 32;  // 2^32 units = 1 J at the scale above
  perf->values[3] += 3ull << 32;
  std::vector<double> row = s.snapshot();
  EXPECT_NEAR(row[kCpuMeasured], 10.0, 1e-9);
  EXPECT_NEAR(row[kRamMeasured], 3.0, 1e-9);
  perf->fail_reads = true;
  s.snapshot();
  s.stop();
  EXPECT_FALSE(s.info().notes.empty());
}

TEST_F(FakePerfTrees, RaplIsPreferredAndUnopenablePerfFallsBack) {
  auto perf = std::make_shared<FakePerf>();
  perf->open_error = EACCES;
  SamplerConfig c = config();
  c.perf_backend = perf;
  Sampler s(c);
  EXPECT_EQ(s.info().cpu_method, "estimate");
  bool said = false;
  for (const std::string& m : s.info().probe_messages)
    said = said || m.find("perf_event_open") != std::string::npos;
  EXPECT_TRUE(said);
  add_zone("intel-rapl:0", "package-0", 0);
  perf->open_error = 0;
  EXPECT_EQ(Sampler(c).info().cpu_method, "rapl");
}

class FakeNvml : public FakeTrees {
 protected:
  void TearDown() override {
    for (const char* v : {"FAKE_NVML_NO_ENERGY", "FAKE_NVML_FAIL_AFTER", "FAKE_NVML_COUNT"})
      ::unsetenv(v);
    FakeTrees::TearDown();
  }
  SamplerConfig gpu_config() const {
    SamplerConfig c = config();
    c.use_nvml = true;
    c.nvml_library = WATTWISE_FAKE_NVML_PATH;
    return c;
  }
};

TEST_F(FakeNvml, EnergyCounterPerGpu) {
  Sampler s(gpu_config());
  ASSERT_EQ(s.info().gpu_names.size(), 2u);
  EXPECT_EQ(s.info().gpu_names[1], "Fake GPU 1");
  EXPECT_EQ(s.info().gpu_modes[0], "counter");
  s.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  s.stop();
  std::vector<double> row = s.snapshot();
  // 100 W and 200 W; the counter's clock and ours differ by the read latency only.
  EXPECT_NEAR(row[kFixedColumns + 0], 100.0 * row[kT], 0.01 + 0.02 * 100.0 * row[kT]);
  EXPECT_NEAR(row[kFixedColumns + 1], 200.0 * row[kT], 0.01 + 0.02 * 200.0 * row[kT]);
}

TEST_F(FakeNvml, PowerIsIntegratedWhenThereIsNoCounter) {
  ::setenv("FAKE_NVML_NO_ENERGY", "1", 1);
  SamplerConfig c = gpu_config();
  c.interval_s = 0.005;
  Sampler s(c);
  EXPECT_EQ(s.info().gpu_modes[0], "power");
  s.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  s.stop();
  std::vector<double> row = s.snapshot();
  EXPECT_NEAR(row[kFixedColumns + 0], 100.0 * row[kT], 1e-9);  // constant power: exact
  EXPECT_NEAR(row[kFixedColumns + 1], 200.0 * row[kT], 1e-9);
}

TEST_F(FakeNvml, CudaVisibleDevicesSelectsAndOrders) {
  SamplerConfig c = gpu_config();
  c.cuda_visible_devices_set = true;
  c.cuda_visible_devices = "1";
  EXPECT_EQ(Sampler(c).info().gpu_names, std::vector<std::string>{"Fake GPU 1"});
  c.cuda_visible_devices = "GPU-fake-0001, 0";
  EXPECT_EQ(Sampler(c).info().gpu_names, (std::vector<std::string>{"Fake GPU 1", "Fake GPU 0"}));
  c.cuda_visible_devices = "0,7,1";  // CUDA stops at the first invalid entry
  EXPECT_EQ(Sampler(c).info().gpu_names, std::vector<std::string>{"Fake GPU 0"});
  c.cuda_visible_devices = "";
  EXPECT_TRUE(Sampler(c).info().gpu_names.empty());
}

TEST_F(FakeNvml, GpuFallingOffTheBusIsNoted) {
  ::setenv("FAKE_NVML_FAIL_AFTER", "4", 1);  // two probe reads, two baseline reads
  Sampler s(gpu_config());
  s.start();
  s.snapshot();
  s.stop();
  bool noted = false;
  for (const std::string& n : s.info().notes) noted = noted || n.find("GPU") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST_F(FakeNvml, MissingLibraryIsAProbeMessage) {
  SamplerConfig c = gpu_config();
  c.nvml_library = (root_ / "libnvidia-ml.so.1").string();
  Sampler s(c);
  EXPECT_TRUE(s.info().gpu_names.empty());
  bool said = false;
  for (const std::string& m : s.info().probe_messages) said = said || m.rfind("nvml:", 0) == 0;
  EXPECT_TRUE(said);
}

}  // namespace
}  // namespace wattwise::energy
