#pragma once
// Prometheus metrics (prometheus-cpp). Every labelled child is created once
// at startup so the hot path only does an atomic add on a cached pointer.
#include "address_limits.hpp"

#include <rendezvous/protocol/errors.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
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

// A hot-path count, kept per thread: each thread adds to a cache line of its
// own (no line shared between threads is written per message); the total is
// read, and folded into its Prometheus counter, when /metrics is scraped.
class traffic_counter {
 public:
  void Increment(double n = 1) noexcept {
    cells_[thread_slot()].v.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  }
  double Value() const noexcept {
    std::uint64_t sum = 0;
    for (const auto& c : cells_) sum += c.v.load(std::memory_order_relaxed);
    return static_cast<double>(sum);
  }

 private:
  static constexpr std::size_t slots = 32;  // threads beyond it share slots (still exact: atomic adds)
  struct alignas(64) cell {
    std::atomic<std::uint64_t> v{0};
  };
  static std::size_t thread_slot() noexcept;
  std::array<cell, slots> cells_{};
};

class metrics {
 public:
  metrics();

  // For parts that add families of their own (the backplane).
  prometheus::Registry& prometheus_registry() noexcept { return *registry_; }

  // Prometheus text exposition of everything.
  std::string serialize();

  prometheus::Gauge& connections_room;
  prometheus::Gauge& connections_lobby;
  prometheus::Gauge& rooms;
  prometheus::Counter& joins;
  prometheus::Counter& resumes;
  prometheus::Counter& accept_pauses;
  prometheus::Gauge& addresses_tracked;  // set on scrape
  prometheus::Gauge& sockets_open;       // set on scrape
  prometheus::Gauge& socket_budget;      // set at start
  traffic_counter relayed;
  traffic_counter bytes_in;
  traffic_counter bytes_out;

  prometheus::Counter& leave(protocol::leave_reason r) { return *leaves_[static_cast<int>(r)]; }
  prometheus::Counter& dropped(drop_reason r) { return *dropped_[static_cast<int>(r)]; }
  prometheus::Counter& error(protocol::error_code c) { return *errors_[static_cast<int>(c)]; }
  prometheus::Counter& refused(refusal_reason r) { return *refused_[static_cast<int>(r)]; }

 private:
  // The Prometheus side of the traffic counters, brought up to date on scrape.
  struct folded {
    const traffic_counter* from;
    prometheus::Counter* to;
    double done = 0;
  };
  std::mutex fold_mu_;
  std::array<folded, 3> folded_{};
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<prometheus::Counter*, 3> leaves_{};
  std::array<prometheus::Counter*, drop_reason_count> dropped_{};
  std::array<prometheus::Counter*, protocol::error_code_count> errors_{};
  std::array<prometheus::Counter*, refusal_reason_count> refused_{};

  metrics(std::shared_ptr<prometheus::Registry> r);
};

std::string_view to_string(drop_reason r) noexcept;

}  // namespace rendezvous::server
