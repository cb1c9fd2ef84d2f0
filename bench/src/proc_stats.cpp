#include "proc_stats.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace rendezvous::bench {

std::optional<proc_sample> sample_process(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  proc_sample out;
  {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return std::nullopt;
    // Field 2 (comm) may hold spaces: parse from the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    // Fields 3.. : state(3) ... utime(14) stime(15).
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; index <= 15 && rest >> field; ++index) {
      if (index == 14) utime = std::stoull(field);
      if (index == 15) stime = std::stoull(field);
    }
    auto hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    out.cpu_s = static_cast<double>(utime + stime) / hz;
    out.user_s = static_cast<double>(utime) / hz;
  }
  {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        out.rss_kib = std::stoll(line.substr(6));
        break;
      }
    }
  }
  return out;
}

double self_cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void outrank_workers() {
  int policy = 0;
  sched_param param{};
  if (pthread_getschedparam(pthread_self(), &policy, &param) != 0) return;
  if (policy != SCHED_FIFO && policy != SCHED_RR) return;
  if (param.sched_priority < sched_get_priority_max(policy)) ++param.sched_priority;
  pthread_setschedparam(pthread_self(), policy, &param);
}

std::uint64_t raise_nofile_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace rendezvous::bench
