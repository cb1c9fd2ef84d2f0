#pragma once
// Prometheus metrics (prometheus-cpp). Every labelled child is created once
// at startup so the hot path only does an atomic add on a cached pointer.
#include <rendezvous/protocol/errors.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>

namespace rendezvous::server {

enum class drop_reason {
  unknown_target,  // lobby message to an id nobody has
  no_target,       // lobby message without id
  held_overflow,   // held for a disconnected peer, pushed out by newer ones
  queue_overflow,  // outbound queue of a slow consumer was full
  closed,          // target's connection was closing
  rate_limited,    // discarded by the per-connection rate limit
};
inline constexpr int drop_reason_count = 6;

class metrics {
 public:
  metrics();

  // Prometheus text exposition of everything.
  std::string serialize() const;

  prometheus::Gauge& connections_room;
  prometheus::Gauge& connections_lobby;
  prometheus::Gauge& rooms;
  prometheus::Counter& joins;
  prometheus::Counter& resumes;
  prometheus::Counter& relayed;
  prometheus::Counter& bytes_in;
  prometheus::Counter& bytes_out;

  prometheus::Counter& leave(protocol::leave_reason r) { return *leaves_[static_cast<int>(r)]; }
  prometheus::Counter& dropped(drop_reason r) { return *dropped_[static_cast<int>(r)]; }
  prometheus::Counter& error(protocol::error_code c) { return *errors_[static_cast<int>(c)]; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<prometheus::Counter*, 3> leaves_{};
  std::array<prometheus::Counter*, drop_reason_count> dropped_{};
  std::array<prometheus::Counter*, protocol::error_code_count> errors_{};

  metrics(std::shared_ptr<prometheus::Registry> r);
};

std::string_view to_string(drop_reason r) noexcept;

}  // namespace rendezvous::server
