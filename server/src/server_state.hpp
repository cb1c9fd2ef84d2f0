#pragma once
// What every connection of one server process shares: settings, metrics, the
// room registry and the drain state. Owned by main; outlives the io_context's
// handlers.
#include "address_limits.hpp"
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
#include <optional>
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
  address_limit_settings per_address;        // limits per client address
  unsigned ipv6_prefix_bits = default_config.ipv6_prefix_bits;
  std::shared_ptr<const web_content> web = std::make_shared<web_content>();  // static files for plain GETs
};

// From a config that load_config accepted (its lists are already checked).
session_settings session_settings_from(const config& cfg);

// Steady time in microseconds, the clock of the per-address limits.
inline std::int64_t steady_now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What an accepted socket holds until it closes: its place in the socket
// budget and, once its client address is known, that address's counts. Moved
// from the listener to the http_session to the websocket_session with the
// socket, so the counts go back exactly when the socket does.
struct connection_tickets {
  socket_budget::ticket socket;
  address_key key;                    // empty until attributed (a trusted proxy's, until its request is read)
  address_limits::ticket connection;  // held while the socket is open
  address_limits::ticket handshake;   // held until the WebSocket upgrade is done
};

class server_state {
 public:
  server_state(session_settings settings, metrics& m, room_registry& registry)
      : settings_(std::move(settings)), metrics_(m), registry_(registry), limits_(settings_.per_address) {}

  const session_settings& settings() const noexcept { return settings_; }
  metrics& stats() noexcept { return metrics_; }
  room_registry& registry() noexcept { return registry_; }

  bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
  // False while the listener cannot accept (out of file descriptors).
  bool accepting() const noexcept { return accepting_.load(std::memory_order_relaxed); }
  void set_accepting(bool on) noexcept { accepting_.store(on, std::memory_order_relaxed); }
  bool over_capacity() const noexcept { return connections_.load() >= settings_.max_connections; }

  // Per-address counts and the process's socket budget (address_limits.hpp).
  address_limits& limits() noexcept { return limits_; }
  socket_budget& sockets() noexcept { return sockets_; }
  // The key a client address counts under.
  address_key key_of(const boost::asio::ip::address& a) const {
    return make_address_key(a, settings_.ipv6_prefix_bits);
  }
  // Counts a refusal by reason; logs `line` when one is due (at most one
  // line per address per minute). Any thread.
  void note_refusal(refusal_reason why, const std::optional<refusal_log>& line);
  // The same for the socket budget, which is not per address: one line a minute.
  void note_budget_refusal(std::int64_t now_us);

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
  address_limits limits_;
  socket_budget sockets_;
  std::mutex budget_log_mu_;
  std::optional<std::int64_t> budget_logged_us_;  // guarded by budget_log_mu_
  std::uint64_t budget_unlogged_ = 0;             // guarded by budget_log_mu_

  std::mutex sessions_mu_;
  std::unordered_map<const session_base*, std::weak_ptr<session_base>> sessions_;
  std::function<void()> on_idle_;  // guarded by sessions_mu_
};

}  // namespace rendezvous::server
