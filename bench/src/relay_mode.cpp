// relay mode: N peers in pairs (2k, 2k+1), each sending to its partner with
// at most W messages in flight (or at a fixed offered rate R over all peers),
// frames padded to B bytes, a send timestamp in each. Pairs live on one
// thread, so a receiver can reopen its partner's window directly.
//
// Timeline: connect everything; start at T0 (start delay); warm up; the
// measured window [W0, W1) counts deliveries by receive time and samples the
// server's CPU time and RSS at both ends; stop sending at W1; drain.
#include "histogram.hpp"
#include "options.hpp"
#include "proc_stats.hpp"
#include "ws_peer.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace rendezvous::bench {

namespace beast = boost::beast;
namespace net = boost::asio;
using json = nlohmann::json;

namespace {

bench_clock::time_point at(std::int64_t ns) { return bench_clock::time_point(std::chrono::nanoseconds(ns)); }

class relay_thread;

class relay_peer final : public ws_peer {
 public:
  relay_peer(relay_thread& ctx, net::io_context& ioc, const target& t, peer_names names,
             const peer_names& partner, std::size_t payload)
      : ws_peer(ioc, t, std::move(names)), ctx_(ctx), format_(t.proto, partner.id, partner.id, payload) {}

  relay_peer* partner = nullptr;
  std::uint64_t sent = 0;      // frames handed to the socket
  std::uint64_t received = 0;  // test frames received from the partner
  std::uint64_t pending = 0;   // frames asked for, not yet written

  std::uint64_t in_flight() const { return sent + pending - partner->received; }
  void offer() {
    ++pending;
    if (!writing_) do_write();
  }
  void refill();  // window mode: send until W are in flight

 private:
  void on_message(std::string_view text) override;
  void on_failure(std::string_view what) override;
  void do_write();
  void on_write(beast::error_code ec, std::size_t bytes);

  relay_thread& ctx_;
  message_format format_;
  std::string out_;
  bool writing_ = false;
  std::uint64_t next_seq_ = 0;
  std::uint64_t expected_seq_ = 0;
};

struct timeline {
  std::int64_t base_ns = 0;   // t in frames is relative to this
  std::int64_t start_ns = 0;  // first message
  std::int64_t window_begin_ns = 0;
  std::int64_t window_end_ns = 0;  // sending stops here
  std::int64_t drain_end_ns = 0;
};

class relay_thread {
 public:
  relay_thread(const options& opt, const target& t, const target& t2)
      : opt_(opt), target_(t), target2_(t2), phase_timer_(ioc), rate_timer_(ioc) {}

  net::io_context ioc{1};
  const options& opt_;
  const target& target_;
  const target& target2_;  // the second peer of each pair
  timeline times;
  bool sending = false;
  bool window_mode = true;   // false: fixed offered rate
  std::uint64_t window = 0;  // 0: unlimited (rate mode only)

  // Results, read by the main thread after this thread's io_context stopped.
  histogram latency;
  histogram send_lag;  // rate mode: how late the bench sent against the schedule
  std::uint64_t delivered_window = 0;
  std::uint64_t delivered_total = 0;
  // Read by the main thread at its CPU samples, so that CPU per message
  // divides CPU and deliveries over the very same interval.
  std::atomic<std::uint64_t> delivered_live{0};
  std::uint64_t reordered = 0;
  std::uint64_t wrong_sender = 0;
  std::uint64_t other_messages = 0;
  std::uint64_t skipped_by_window = 0;  // rate mode: offers refused by the window
  std::uint64_t connect_failures = 0;
  std::map<std::string, std::uint64_t> errors;

  void add_pair(std::uint64_t first_index) {
    auto a_names = names_for(opt_.id_prefix, first_index);
    auto b_names = names_for(opt_.id_prefix, first_index + 1);
    auto a = std::make_shared<relay_peer>(*this, ioc, target_, a_names, b_names, opt_.payload);
    auto b = std::make_shared<relay_peer>(*this, ioc, target2_, b_names, a_names, opt_.payload);
    a->partner = b.get();
    b->partner = a.get();
    peers_.push_back(a);
    peers_.push_back(b);
  }

  // Connects every peer, `concurrency` at a time; calls done on this thread.
  void connect_all(unsigned concurrency, std::function<void()> done) {
    connected_ = std::move(done);
    if (peers_.empty()) return connected_();
    for (unsigned i = 0; i < std::max(1u, concurrency); ++i) connect_next();
  }

  void begin(const timeline& t) {
    times = t;
    phase_timer_.expires_at(at(times.start_ns));
    phase_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      sending = true;
      if (opt_.rate > 0) {
        rate_start_ns_ = times.start_ns;
        interval_ns_ =
            1e9 * static_cast<double>(opt_.peers) / (opt_.rate * static_cast<double>(peers_.size()));
        rate_tick();
      } else {
        for (auto& p : peers_) p->refill();
      }
      phase_timer_.expires_at(at(times.window_end_ns));
      phase_timer_.async_wait([this](beast::error_code ec2) {
        if (ec2) return;
        sending = false;
        rate_timer_.cancel();
        drain_check();
      });
    });
  }

  std::uint64_t sent_total() const {
    std::uint64_t n = 0;
    for (auto& p : peers_) n += p->sent;
    return n;
  }
  std::uint64_t received_total() const {
    std::uint64_t n = 0;
    for (auto& p : peers_) n += p->received;
    return n;
  }
  std::uint64_t in_flight_total() const {
    std::uint64_t n = 0;
    for (auto& p : peers_) n += p->in_flight();
    return n;
  }
  std::uint64_t read_failures = 0;

 private:
  void connect_next() {
    if (next_connect_ >= peers_.size()) return;
    auto& peer = peers_[next_connect_++];
    peer->start([this, raw = peer.get()](std::string_view error) {
      if (!error.empty()) {
        ++connect_failures;
        ++errors[std::string(error.substr(0, 120))];
        raw->close();
      }
      if (++connect_done_ == peers_.size()) return connected_();
      connect_next();
    });
  }

  void rate_tick() {
    if (!sending) return;
    auto now = now_ns();
    auto n = peers_.size();
    // Every message due by now, in round-robin order over this thread's peers.
    while (true) {
      auto due = rate_start_ns_ + static_cast<std::int64_t>(static_cast<double>(rate_seq_) * interval_ns_);
      if (due > now) {
        rate_timer_.expires_at(at(due));
        rate_timer_.async_wait([this](beast::error_code ec) {
          if (!ec) rate_tick();
        });
        return;
      }
      auto& peer = *peers_[rate_seq_ % n];
      ++rate_seq_;
      if (window != 0 && peer.in_flight() >= window) {
        ++skipped_by_window;
        continue;
      }
      if (due >= times.window_begin_ns) send_lag.add(now - due);
      peer.offer();
    }
  }

  void drain_check() {
    if (in_flight_total() == 0 || now_ns() >= times.drain_end_ns) {
      for (auto& p : peers_) p->close();
      ioc.stop();
      return;
    }
    phase_timer_.expires_after(std::chrono::milliseconds(2));
    phase_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) drain_check();
    });
  }

  net::steady_timer phase_timer_;
  net::steady_timer rate_timer_;
  std::function<void()> connected_;
  std::size_t next_connect_ = 0;
  std::size_t connect_done_ = 0;
  std::int64_t rate_start_ns_ = 0;
  double interval_ns_ = 0;
  std::uint64_t rate_seq_ = 0;

 public:
  // Declared last: destroyed first, while the io_context still exists.
  std::vector<std::shared_ptr<relay_peer>> peers_;
};

void relay_peer::refill() {
  // Only window mode refills; at a fixed rate the schedule decides.
  if (!ctx_.sending || !ctx_.window_mode) return;
  while (in_flight() < ctx_.window) offer();
}

void relay_peer::do_write() {
  // The timestamp is taken as the frame goes to the socket, so the bench's own
  // queueing (window mode) is not counted as server latency.
  --pending;
  ++sent;
  format_.build(out_, next_seq_++, now_ns() - ctx_.times.base_ns);
  writing_ = true;
  ws_.async_write(net::buffer(out_),
                  beast::bind_front_handler(&relay_peer::on_write,
                                            std::static_pointer_cast<relay_peer>(shared_from_this())));
}

void relay_peer::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    if (ec != net::error::operation_aborted) on_failure("write: " + ec.message());
    return;
  }
  if (pending > 0) do_write();
}

void relay_peer::on_message(std::string_view text) {
  auto now = now_ns();
  auto msg = format_.parse(text);
  if (!msg.ok) {
    ++ctx_.other_messages;
    return;
  }
  if (!msg.from_sender) ++ctx_.wrong_sender;
  ++received;
  ++ctx_.delivered_total;
  ctx_.delivered_live.store(ctx_.delivered_total, std::memory_order_relaxed);
  if (msg.seq < expected_seq_)
    ++ctx_.reordered;
  else
    expected_seq_ = msg.seq + 1;
  if (now >= ctx_.times.window_begin_ns && now < ctx_.times.window_end_ns) {
    ++ctx_.delivered_window;
    ctx_.latency.add(now - (ctx_.times.base_ns + msg.t));
  }
  if (partner) partner->refill();
}

void relay_peer::on_failure(std::string_view what) {
  ++ctx_.read_failures;
  ++ctx_.errors[std::string(what.substr(0, 120))];
}

double us(double ns) { return ns / 1000.0; }

}  // namespace

json run_relay(const options& opt) {
  raise_nofile_limit();
  target t = opt.make_target();
  target t2 = opt.make_target2();
  std::uint64_t peers = std::max<std::uint64_t>(2, opt.peers + (opt.peers % 2));
  unsigned threads = std::max(1u, std::min<unsigned>(opt.threads, static_cast<unsigned>(peers / 2)));
  std::uint64_t window = opt.window_given ? opt.window : (opt.rate > 0 ? 0 : opt.window);
  if (opt.rate <= 0 && window == 0) window = 1;

  options local = opt;
  local.peers = peers;
  std::vector<std::unique_ptr<relay_thread>> workers;
  for (unsigned k = 0; k < threads; ++k) {
    workers.push_back(std::make_unique<relay_thread>(local, t, t2));
    workers.back()->window = window;
    workers.back()->window_mode = opt.rate <= 0;
  }
  for (std::uint64_t pair = 0; pair < peers / 2; ++pair) workers[pair % threads]->add_pair(2 * pair);

  std::mutex mutex;
  std::condition_variable cv;
  unsigned connected = 0;
  std::vector<std::thread> pool;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto& w : workers) guards.push_back(net::make_work_guard(w->ioc));
  for (auto& w : workers) {
    pool.emplace_back([&, raw = w.get()] {
      net::post(raw->ioc, [&, raw] {
        raw->connect_all(std::max(1u, opt.concurrency / threads), [&] {
          std::lock_guard lock(mutex);
          ++connected;
          cv.notify_all();
        });
      });
      raw->ioc.run();
    });
  }
  auto connect_deadline = bench_clock::now() + std::chrono::seconds(30 + peers / 100);
  {
    std::unique_lock lock(mutex);
    cv.wait_until(lock, connect_deadline, [&] { return connected == threads; });
  }
  std::uint64_t failures = 0;
  json errors = json::object();
  bool all_connected = connected == threads;
  if (all_connected) {
    for (auto& w : workers) failures += w->connect_failures;
  }
  if (!all_connected || failures > 0) {
    for (auto& w : workers) w->ioc.stop();
    for (auto& th : pool) th.join();
    for (auto& w : workers)
      for (auto& [what, n] : w->errors) errors[what] = errors.value(what, 0ull) + n;
    return {{"mode", "relay"},
            {"proto", opt.proto},
            {"label", opt.label},
            {"error", all_connected ? "some peers failed to connect" : "connect timed out"},
            {"connect_failures", failures},
            {"errors", errors}};
  }

  // bench/profile waits for this line to zero the server's callgrind counters.
  std::cerr << "connected " << peers << " peers" << std::endl;

  timeline times;
  times.base_ns = now_ns();
  times.start_ns = times.base_ns + static_cast<std::int64_t>(opt.start_delay_ms) * 1'000'000;
  times.window_begin_ns = times.start_ns + static_cast<std::int64_t>(opt.warmup_s * 1e9);
  times.window_end_ns = times.window_begin_ns + static_cast<std::int64_t>(opt.duration_s * 1e9);
  times.drain_end_ns = times.window_end_ns + static_cast<std::int64_t>(opt.drain_s * 1e9);
  for (auto& w : workers) net::post(w->ioc, [raw = w.get(), times] { raw->begin(times); });

  outrank_workers();
  std::this_thread::sleep_until(at(times.window_begin_ns));
  auto delivered_now = [&] {
    std::uint64_t n = 0;
    for (auto& w : workers) n += w->delivered_live.load(std::memory_order_relaxed);
    return n;
  };
  auto extra_cpu = [&] {
    double sum = 0;
    for (auto pid : opt.extra_pids)
      if (auto s = sample_process(pid)) sum += s->cpu_s;
    return sum;
  };
  auto server0 = sample_process(opt.server_pid);
  auto extra0 = extra_cpu();
  auto self0 = self_cpu_s();
  auto sampled0 = now_ns();
  auto delivered0 = delivered_now();
  std::this_thread::sleep_until(at(times.window_end_ns));
  auto server1 = sample_process(opt.server_pid);
  auto extra1 = extra_cpu();
  auto self1 = self_cpu_s();
  auto sampled1 = now_ns();
  auto delivered_sampled = delivered_now() - delivered0;
  double sampled_s = static_cast<double>(sampled1 - sampled0) / 1e9;
  // CPU/msg divides CPU between the two samples by deliveries in the planned
  // window: report how far the samples drifted from it (should be ~0).
  double skew_ms = static_cast<double>(std::max(std::abs(sampled0 - times.window_begin_ns),
                                                std::abs(sampled1 - times.window_end_ns))) /
                   1e6;
  guards.clear();
  for (auto& th : pool) th.join();

  histogram latency, lag;
  std::uint64_t delivered_window = 0, delivered_total = 0, sent = 0, received = 0, in_flight = 0,
                reordered = 0, wrong_sender = 0, other = 0, skipped = 0, read_failures = 0;
  for (auto& w : workers) {
    latency.merge(w->latency);
    lag.merge(w->send_lag);
    delivered_window += w->delivered_window;
    delivered_total += w->delivered_total;
    sent += w->sent_total();
    received += w->received_total();
    in_flight += w->in_flight_total();
    reordered += w->reordered;
    wrong_sender += w->wrong_sender;
    other += w->other_messages;
    skipped += w->skipped_by_window;
    read_failures += w->read_failures;
    for (auto& [what, n] : w->errors) errors[what] = errors.value(what, 0ull) + n;
  }
  workers.clear();

  json out{{"mode", "relay"},
           {"proto", opt.proto},
           {"label", opt.label},
           {"peers", peers},
           {"threads", threads},
           {"window", window},
           {"payload_bytes", opt.payload},
           {"rate_offered", opt.rate},
           {"warmup_s", opt.warmup_s},
           {"duration_s", opt.duration_s},
           {"sent", sent},
           {"delivered", received},
           {"delivered_window", delivered_window},
           {"delivered_sampled", delivered_sampled},
           {"msgs_per_s", sampled_s > 0 ? static_cast<double>(delivered_sampled) / sampled_s : 0.0},
           {"lost", sent - std::min(sent, received)},
           {"in_flight_at_end", in_flight},
           {"reordered", reordered},
           {"wrong_sender", wrong_sender},
           {"other_messages", other},
           {"read_failures", read_failures},
           {"errors", errors},
           {"latency_us",
            {{"p50", us(latency.quantile(0.50))},
             {"p90", us(latency.quantile(0.90))},
             {"p99", us(latency.quantile(0.99))},
             {"p999", us(latency.quantile(0.999))},
             {"max", us(static_cast<double>(latency.max()))},
             {"count", latency.count()}}},
           {"bench_cpu_s", self1 - self0},
           {"sample_skew_ms", skew_ms}};
  if (opt.rate > 0) {
    out["skipped_by_window"] = skipped;
    out["send_lag_us"] = {{"p50", us(lag.quantile(0.5))},
                          {"p99", us(lag.quantile(0.99))},
                          {"max", us(static_cast<double>(lag.max()))}};
  }
  if (server0 && server1) {
    double cpu = server1->cpu_s - server0->cpu_s;
    double user = server1->user_s - server0->user_s;
    out["server"] = {
        {"cpu_s", cpu},
        {"cpu_user_s", user},
        {"cpu_sys_s", cpu - user},
        {"cpu_util", sampled_s > 0 ? cpu / sampled_s : 0.0},
        {"cpu_us_per_msg", delivered_sampled ? cpu * 1e6 / static_cast<double>(delivered_sampled) : 0.0},
        {"rss_kib", server1->rss_kib}};
  }
  if (!opt.extra_pids.empty() && server0 && server1) {
    // Several nodes: both nodes and redis-server, per delivered message.
    double cpu = server1->cpu_s - server0->cpu_s + extra1 - extra0;
    out["total"] = {
        {"cpu_s", cpu},
        {"extra_cpu_s", extra1 - extra0},
        {"cpu_us_per_msg", delivered_sampled ? cpu * 1e6 / static_cast<double>(delivered_sampled) : 0.0}};
  }
  return out;
}

}  // namespace rendezvous::bench
