// connect mode: open N connections at concurrency C (split over --procs
// processes, each with its own open-file limit, and --threads threads per
// process), keep them open and idle, and read the server's RSS and CPU time
// before and after.
//
// Process shape: the parent samples the server, forks the workers, reads one
// JSON line from each when its share is connected, samples the server again,
// then closes the "go" pipe; each worker then exits, which closes its sockets.
#include "options.hpp"
#include "proc_stats.hpp"
#include "ws_peer.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace rendezvous::bench {

namespace net = boost::asio;
using json = nlohmann::json;

namespace {

// One thread's share of a worker process's connections.
class connect_thread {
 public:
  connect_thread(const target& t, const std::string& prefix, std::vector<std::uint64_t> indices,
                 unsigned concurrency, std::function<void()> all_done)
      : target_(t),
        prefix_(prefix),
        indices_(std::move(indices)),
        concurrency_(std::max(1u, concurrency)),
        all_done_(std::move(all_done)) {}

  void launch() {
    if (indices_.empty()) {
      t_done_ns = now_ns();
      return all_done_();
    }
    for (unsigned i = 0; i < concurrency_; ++i) start_next();
  }

  net::io_context ioc{1};
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::int64_t t_done_ns = 0;
  std::map<std::string, std::uint64_t> errors;

 private:
  void start_next() {
    if (next_ >= indices_.size()) return;
    auto index = indices_[next_++];
    auto peer = std::make_shared<ws_peer>(ioc, target_, names_for(prefix_, index), index);
    peers_.push_back(peer);
    peer->start([this, raw = peer.get()](std::string_view error) {
      if (error.empty()) {
        ++ok;
      } else {
        ++failed;
        ++errors[std::string(error.substr(0, 120))];
        raw->close();
      }
      if (ok + failed == indices_.size()) {
        t_done_ns = now_ns();
        all_done_();
      } else {
        start_next();
      }
    });
  }

  const target& target_;
  std::string prefix_;
  std::vector<std::uint64_t> indices_;
  unsigned concurrency_;
  std::function<void()> all_done_;
  std::size_t next_ = 0;

 public:
  // Declared after ioc: destroyed first, closing the sockets while the
  // io_context still exists.
  std::vector<std::shared_ptr<ws_peer>> peers_;
};

// A worker process: connects indices [begin, end), reports on `report_fd`,
// holds the connections until `go_fd` reaches EOF.
[[noreturn]] void worker_process(const options& opt, std::uint64_t begin, std::uint64_t end,
                                 unsigned concurrency, int report_fd, int go_fd) {
  raise_nofile_limit();
  target t = opt.make_target();
  t.source_port_base = opt.source_port_base;
  t.linger_zero = opt.source_port_base != 0;
  unsigned threads = std::max(1u, opt.threads);
  std::mutex mutex;
  std::condition_variable cv;
  unsigned done = 0;
  std::vector<std::unique_ptr<connect_thread>> workers;
  for (unsigned k = 0; k < threads; ++k) {
    std::vector<std::uint64_t> indices;
    for (auto i = begin + k; i < end; i += threads) indices.push_back(i);
    workers.push_back(std::make_unique<connect_thread>(t, opt.id_prefix, std::move(indices),
                                                       std::max(1u, concurrency / threads), [&] {
                                                         std::lock_guard lock(mutex);
                                                         ++done;
                                                         cv.notify_all();
                                                       }));
  }
  std::vector<std::thread> pool;
  for (auto& w : workers) {
    pool.emplace_back([&w] {
      auto guard = net::make_work_guard(w->ioc);
      net::post(w->ioc, [&w] { w->launch(); });
      w->ioc.run();
    });
  }
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return done == threads; });
  }
  json report{{"ok", 0}, {"failed", 0}, {"t_done_ns", 0}, {"errors", json::object()}};
  for (auto& w : workers) {
    // Read after each thread finished its share; later reads only see idle sockets.
    report["ok"] = report["ok"].get<std::uint64_t>() + w->ok;
    report["failed"] = report["failed"].get<std::uint64_t>() + w->failed;
    report["t_done_ns"] = std::max(report["t_done_ns"].get<std::int64_t>(), w->t_done_ns);
    for (auto& [what, n] : w->errors) report["errors"][what] = report["errors"].value(what, 0ull) + n;
  }
  auto line = report.dump() + "\n";
  if (write(report_fd, line.data(), line.size()) < 0) _exit(3);
  close(report_fd);
  char byte;
  while (read(go_fd, &byte, 1) > 0) {
  }
  // Exit without unwinding: the kernel closes every socket at once.
  _exit(0);
}

}  // namespace

json run_connect(const options& opt) {
  raise_nofile_limit();
  unsigned procs = std::max(1u, opt.procs);
  auto before = sample_process(opt.server_pid);
  auto t0 = now_ns();

  int go[2];
  if (pipe(go) != 0) return {{"error", "pipe failed"}};
  struct child {
    pid_t pid = -1;
    int report_fd = -1;
    std::string buffer;
    json report;
  };
  std::vector<child> children(procs);
  std::fflush(stdout);
  std::fflush(stderr);
  for (unsigned p = 0; p < procs; ++p) {
    int rep[2];
    if (pipe(rep) != 0) return {{"error", "pipe failed"}};
    std::uint64_t begin = opt.connections * p / procs;
    std::uint64_t end = opt.connections * (p + 1) / procs;
    pid_t pid = fork();
    if (pid == 0) {
      close(rep[0]);
      close(go[1]);
      for (unsigned q = 0; q < p; ++q) close(children[q].report_fd);
      worker_process(opt, begin, end, std::max(1u, opt.concurrency / procs), rep[1], go[0]);
    }
    close(rep[1]);
    children[p].pid = pid;
    children[p].report_fd = rep[0];
  }
  close(go[0]);
  outrank_workers();

  // Wait for every worker's report, bounded: the connect timeout per wave of
  // `concurrency` connections, plus a minute.
  auto waves = opt.connections / std::max(1u, opt.concurrency) + 1;
  auto deadline = now_ns() + (60 + static_cast<std::int64_t>(waves) * 10) * 1'000'000'000LL;
  std::size_t pending = procs;
  while (pending > 0 && now_ns() < deadline) {
    std::vector<pollfd> fds;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (children[i].report_fd >= 0) {
        fds.push_back({children[i].report_fd, POLLIN, 0});
        which.push_back(i);
      }
    }
    if (poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP))) continue;
      auto& c = children[which[k]];
      char buf[4096];
      auto n = read(c.report_fd, buf, sizeof buf);
      if (n > 0) {
        c.buffer.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      close(c.report_fd);
      c.report_fd = -1;
      --pending;
      c.report = json::parse(c.buffer, nullptr, false);
    }
  }
  auto after_connect = sample_process(opt.server_pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(opt.settle_ms));
  auto after = sample_process(opt.server_pid);

  // Release the workers and reap them, bounded.
  close(go[1]);
  auto reap_deadline = now_ns() + 10'000'000'000LL;
  for (auto& c : children) {
    int status = 0;
    while (waitpid(c.pid, &status, WNOHANG) == 0) {
      if (now_ns() > reap_deadline) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (c.report_fd >= 0) close(c.report_fd);
  }

  std::uint64_t ok = 0, failed = 0;
  std::int64_t t_done = t0;
  json errors = json::object();
  bool complete = true;
  for (auto& c : children) {
    if (!c.report.is_object()) {
      complete = false;
      continue;
    }
    ok += c.report["ok"].get<std::uint64_t>();
    failed += c.report["failed"].get<std::uint64_t>();
    t_done = std::max(t_done, c.report["t_done_ns"].get<std::int64_t>());
    for (auto& [what, n] : c.report["errors"].items())
      errors[what] = errors.value(what, 0ull) + n.get<std::uint64_t>();
  }
  double elapsed = static_cast<double>(t_done - t0) / 1e9;
  json out{{"mode", "connect"},
           {"proto", opt.proto},
           {"label", opt.label},
           {"connections", opt.connections},
           {"concurrency", opt.concurrency},
           {"procs", procs},
           {"threads", opt.threads},
           {"ok", ok},
           {"failed", failed},
           {"complete", complete},
           {"errors", errors},
           {"elapsed_s", elapsed},
           {"conn_per_s", elapsed > 0 ? static_cast<double>(ok) / elapsed : 0.0}};
  if (before && after && after_connect) {
    double cpu = after_connect->cpu_s - before->cpu_s;
    double user = after_connect->user_s - before->user_s;
    out["server"] = {{"rss_before_kib", before->rss_kib},
                     {"rss_after_kib", after->rss_kib},
                     {"kib_per_conn", ok ? static_cast<double>(after->rss_kib - before->rss_kib) / ok : 0.0},
                     {"cpu_s", cpu},
                     {"cpu_user_s", user},
                     {"cpu_sys_s", cpu - user},
                     {"cpu_us_per_conn", ok ? cpu * 1e6 / static_cast<double>(ok) : 0.0}};
  }
  return out;
}

}  // namespace rendezvous::bench
