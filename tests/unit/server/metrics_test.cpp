// The hot-path traffic counters: counted per thread, exact in total, and
// folded into their Prometheus counters on every scrape.
#include "metrics.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using rendezvous::server::metrics;

namespace {
// The value of an unlabelled sample in Prometheus text, or -1.
double sample(const std::string& text, const std::string& name) {
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}
}  // namespace

TEST_CASE("traffic counters: adds from many threads are all counted, and scrapes fold them") {
  metrics m;
  constexpr int threads = 40;  // more than the per-thread slots: shared slots stay exact
  constexpr int per_thread = 1000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        m.relayed.Increment();
        m.bytes_in.Increment(3);
      }
    });
  for (auto& t : pool) t.join();
  CHECK(m.relayed.Value() == threads * per_thread);
  CHECK(m.bytes_in.Value() == 3.0 * threads * per_thread);

  auto first = m.serialize();
  CHECK(sample(first, "rendezvous_messages_relayed_total") == threads * per_thread);
  CHECK(sample(first, "rendezvous_bytes_in_total") == 3.0 * threads * per_thread);
  CHECK(sample(first, "rendezvous_bytes_out_total") == 0);

  m.relayed.Increment(5);
  m.bytes_out.Increment(7);
  auto second = m.serialize();
  CHECK(sample(second, "rendezvous_messages_relayed_total") == threads * per_thread + 5);
  CHECK(sample(second, "rendezvous_bytes_out_total") == 7);
  // A scrape with nothing new changes nothing.
  CHECK(sample(m.serialize(), "rendezvous_messages_relayed_total") == threads * per_thread + 5);
}
