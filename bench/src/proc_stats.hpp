#pragma once
// What the bench reads of another process from /proc: CPU time (utime+stime
// of /proc/PID/stat, all threads) and resident memory (VmRSS of
// /proc/PID/status). A pid of 0 means "no server given": every read is empty.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>

namespace rendezvous::bench {

struct proc_sample {
  double cpu_s = 0;          // utime + stime, seconds (USER_HZ resolution)
  double user_s = 0;         // utime alone: the rest is the kernel's (system calls)
  std::int64_t rss_kib = 0;  // VmRSS
};

std::optional<proc_sample> sample_process(pid_t pid);

// This process's own CPU time (all threads), seconds.
double self_cpu_s();

// If this thread runs real-time (SCHED_FIFO/RR, e.g. under chrt), raises it
// one priority level above the threads it already started, so that a busy
// worker on the same core cannot delay the samples this thread takes.
void outrank_workers();

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
std::uint64_t raise_nofile_limit();

using bench_clock = std::chrono::steady_clock;
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(bench_clock::now().time_since_epoch()).count();
}

}  // namespace rendezvous::bench
