#include "metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace rendezvous::server {

namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;

prometheus::Family<prometheus::Gauge>& gauge_family(prometheus::Registry& r, const char* name,
                                                    const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& r, const char* name,
                                                        const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r);
}
}  // namespace

std::string_view to_string(drop_reason r) noexcept {
  switch (r) {
    case drop_reason::unknown_target: return "unknown-target";
    case drop_reason::no_target: return "no-target";
    case drop_reason::held_overflow: return "held-overflow";
    case drop_reason::queue_overflow: return "queue-overflow";
    case drop_reason::closed: return "closed";
    case drop_reason::rate_limited: return "rate-limited";
  }
  return "unknown";
}

metrics::metrics() : metrics(std::make_shared<prometheus::Registry>()) {}

metrics::metrics(std::shared_ptr<prometheus::Registry> r)
    : connections_room(gauge_family(*r, "rendezvous_connections", "Open WebSocket connections by mode")
                           .Add({{"mode", "room"}})),
      connections_lobby(gauge_family(*r, "rendezvous_connections", "Open WebSocket connections by mode")
                            .Add({{"mode", "lobby"}})),
      rooms(gauge_family(*r, "rendezvous_rooms", "Rooms with at least one peer (held peers count)").Add({})),
      joins(
          counter_family(*r, "rendezvous_joins_total", "Successful joins (room and lobby, resumes excluded)")
              .Add({})),
      resumes(counter_family(*r, "rendezvous_resumes_total", "Successful resumes").Add({})),
      accept_pauses(counter_family(*r, "rendezvous_accept_pauses_total",
                                   "Times accepting paused because the process ran out of file descriptors")
                        .Add({})),
      addresses_tracked(gauge_family(*r, "rendezvous_addresses_tracked",
                                     "Client addresses with per-address state (connections, handshakes, "
                                     "join bucket, refusals to log)")
                            .Add({})),
      sockets_open(
          gauge_family(*r, "rendezvous_sockets_open", "Accepted sockets open (HTTP and WebSocket)").Add({})),
      socket_budget(gauge_family(*r, "rendezvous_socket_budget",
                                 "Sockets the process may hold: RLIMIT_NOFILE less fd_reserve and the "
                                 "descriptors open at start")
                        .Add({})),
      registry_(std::move(r)) {
  folded_[0] = {
      &relayed,
      &counter_family(*registry_, "rendezvous_messages_relayed_total",
                      "Client messages delivered or held for a target (broadcast counts each target)")
           .Add({})};
  folded_[1] = {
      &bytes_in,
      &counter_family(*registry_, "rendezvous_bytes_in_total", "WebSocket payload bytes received").Add({})};
  folded_[2] = {
      &bytes_out,
      &counter_family(*registry_, "rendezvous_bytes_out_total", "WebSocket payload bytes sent").Add({})};
  auto& leaves = counter_family(*registry_, "rendezvous_leaves_total", "Peers gone for good, by reason");
  for (auto reason :
       {protocol::leave_reason::closed, protocol::leave_reason::timeout, protocol::leave_reason::kicked}) {
    leaves_[static_cast<int>(reason)] = &leaves.Add({{"reason", std::string(protocol::to_string(reason))}});
  }
  auto& dropped =
      counter_family(*registry_, "rendezvous_messages_dropped_total", "Messages dropped, by reason");
  for (int i = 0; i < drop_reason_count; ++i) {
    dropped_[i] = &dropped.Add({{"reason", std::string(to_string(static_cast<drop_reason>(i)))}});
  }
  auto& refused = counter_family(*registry_, "rendezvous_connections_refused_total",
                                 "Connections and joins refused by a per-address limit or the socket "
                                 "budget, by reason");
  for (int i = 0; i < refusal_reason_count; ++i) {
    refused_[i] = &refused.Add({{"reason", std::string(to_string(static_cast<refusal_reason>(i)))}});
  }
  auto& errors = counter_family(*registry_, "rendezvous_errors_total", "Error replies sent, by code");
  for (int i = 0; i < protocol::error_code_count; ++i) {
    errors_[i] =
        &errors.Add({{"code", std::string(protocol::to_string(static_cast<protocol::error_code>(i)))}});
  }
}

std::size_t traffic_counter::thread_slot() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t slot = next.fetch_add(1, std::memory_order_relaxed) % slots;
  return slot;
}

std::string metrics::serialize() {
  {
    std::lock_guard lock(fold_mu_);
    for (auto& f : folded_) {
      const double now = f.from->Value();
      if (now > f.done) f.to->Increment(now - f.done);
      f.done = now;
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace rendezvous::server
