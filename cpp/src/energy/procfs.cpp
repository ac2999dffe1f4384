// Small-file readers for sysfs and /proc, shared by every source (opened per read so that a
// vanished file is noticed at once).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "wattwise/energy/sources.h"

namespace wattwise::energy {

bool read_text_file(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (1u << 20)) break;  // no file we read is this large
  }
  ::close(fd);
  return true;
}

namespace {
double clock_ticks() {
  static const double ticks = [] {
    const long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? static_cast<double>(t) : 100.0;
  }();
  return ticks;
}

std::string pid_dir(const std::string& procfs_root, int pid) {
  return procfs_root + "/" + (pid > 0 ? std::to_string(pid) : std::string("self"));
}
}  // namespace

bool read_proc_stat(const std::string& procfs_root, ProcStat* out) {
  std::string text;
  if (!read_text_file(procfs_root + "/stat", &text)) return false;
  std::istringstream in(text);
  std::string line;
  bool have_total = false;
  int cpus = 0;
  ProcStat s;
  while (std::getline(in, line)) {
    if (line.compare(0, 3, "cpu") != 0) continue;
    if (line.size() > 3 && line[3] == ' ') {
      std::istringstream f(line.substr(3));
      double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int n = 0;
      while (n < 8 && (f >> v[n])) ++n;
      if (n < 4) return false;
      // user nice system idle iowait irq softirq steal (guest time is inside user already)
      s.busy_s = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / clock_ticks();
      s.total_s = s.busy_s + (v[3] + v[4]) / clock_ticks();
      have_total = true;
    } else if (line.size() > 3 && line[3] >= '0' && line[3] <= '9') {
      ++cpus;
    }
  }
  if (!have_total || cpus == 0) return false;
  s.cpus = cpus;
  *out = s;
  return true;
}

bool read_process_cpu_s(const std::string& procfs_root, int pid, double* out) {
  std::string text;
  if (!read_text_file(pid_dir(procfs_root, pid) + "/stat", &text)) return false;
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream f(text.substr(close + 1));
  std::string field;
  double v[4];
  // Fields 3..17; utime is field 14, stime 15, cutime 16, cstime 17.
  for (int i = 3; i <= 17; ++i) {
    if (!(f >> field)) return false;
    if (i >= 14) v[i - 14] = std::strtod(field.c_str(), nullptr);
  }
  *out = (v[0] + v[1] + v[2] + v[3]) / clock_ticks();
  return true;
}

bool read_process_rss_gb(const std::string& procfs_root, int pid, double* out) {
  std::string text;
  if (!read_text_file(pid_dir(procfs_root, pid) + "/statm", &text)) return false;
  std::istringstream f(text);
  double size = 0, resident = 0;
  if (!(f >> size >> resident)) return false;
  const long page = ::sysconf(_SC_PAGESIZE);
  *out = resident * static_cast<double>(page > 0 ? page : 4096) / 1e9;
  return true;
}

bool read_mem_total_gb(const std::string& procfs_root, double* out) {
  std::string text;
  if (!read_text_file(procfs_root + "/meminfo", &text)) return false;
  const size_t at = text.find("MemTotal:");
  if (at == std::string::npos) return false;
  const double kb = std::strtod(text.c_str() + at + 9, nullptr);
  if (!(kb > 0)) return false;
  *out = kb * 1024.0 / 1e9;
  return true;
}

bool read_cgroup_cpu_s(const std::string& file, double* out) {
  std::string text;
  if (!read_text_file(file, &text)) return false;
  const bool v2 = file.size() >= 8 && file.compare(file.size() - 8, 8, "cpu.stat") == 0;
  const size_t at = v2 ? text.find("usage_usec ") : 0;
  if (at == std::string::npos) return false;
  const char* begin = text.c_str() + at + (v2 ? 11 : 0);
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin) return false;
  *out = v2 ? v / 1e6 : v / 1e9;
  return true;
}

bool read_cgroup_memory_gb(const std::string& file, double* out) {
  std::string text;
  if (!read_text_file(file, &text)) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return false;
  *out = v / 1e9;
  return true;
}

}  // namespace wattwise::energy
