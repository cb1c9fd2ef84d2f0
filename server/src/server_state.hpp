#pragma once
// What every connection of one server process shares: settings, metrics, the
// room registry and the drain state. Owned by main; outlives the io_context's
// handlers.
#include "config.hpp"
#include "forwarded_for.hpp"
#include "ice_servers.hpp"
#include "metrics.hpp"
#include "room_registry.hpp"
#include "web_content.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace rendezvous::server {

class session_base;

// The per-connection settings sessions need, made from the config by
// session_settings_from(); the defaults are the config's (config.hpp).
struct session_settings {
  std::size_t max_message_bytes = default_config.max_message_bytes;
  std::size_t max_connections = default_config.max_connections;
  double rate_limit_per_s = default_config.rate_limit_per_s;
  double rate_limit_burst = default_config.rate_limit_burst;
  std::size_t rate_limit_strikes = default_config.rate_limit_strikes;
  std::chrono::milliseconds ping_interval{default_config.ping_interval_ms};
  std::chrono::milliseconds handshake_timeout{default_config.handshake_timeout_ms};
  std::size_t outbound_max_messages = default_config.outbound_max_messages;
  std::size_t outbound_max_bytes = default_config.outbound_max_bytes;
  ice_settings ice;                          // welcome.iceServers
  std::string auth_secret;                   // JWT HS256 secret; empty: no auth
  std::vector<std::string> allowed_origins;  // empty: all
  std::vector<ip_range> trusted_proxies;     // may name the client in X-Forwarded-For
  std::shared_ptr<const web_content> web = std::make_shared<web_content>();  // static files for plain GETs
};

// From a config that load_config accepted (its lists are already checked).
session_settings session_settings_from(const config& cfg);

class server_state {
 public:
  server_state(session_settings settings, metrics& m, room_registry& registry)
      : settings_(std::move(settings)), metrics_(m), registry_(registry) {}

  const session_settings& settings() const noexcept { return settings_; }
  metrics& stats() noexcept { return metrics_; }
  room_registry& registry() noexcept { return registry_; }

  bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
  // False while the listener cannot accept (out of file descriptors).
  bool accepting() const noexcept { return accepting_.load(std::memory_order_relaxed); }
  void set_accepting(bool on) noexcept { accepting_.store(on, std::memory_order_relaxed); }
  bool over_capacity() const noexcept { return connections_.load() >= settings_.max_connections; }

  // Counts a WebSocket connection against max_connections; false when full.
  bool try_add_connection() noexcept;
  void remove_connection() noexcept;

  // Live sessions, so a drain can close every one of them.
  void track(const std::shared_ptr<session_base>& s);
  void untrack(const session_base* s);

  // Starts the drain: joins refused, every session closed with 1001.
  // `on_idle` runs (once, on some io thread) when the last session is gone.
  void begin_drain(std::function<void()> on_idle);

 private:
  session_settings settings_;
  metrics& metrics_;
  room_registry& registry_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> accepting_{true};
  std::atomic<std::size_t> connections_{0};

  std::mutex sessions_mu_;
  std::unordered_map<const session_base*, std::weak_ptr<session_base>> sessions_;
  std::function<void()> on_idle_;  // guarded by sessions_mu_
};

}  // namespace rendezvous::server
