#include "server_state.hpp"

#include "logging.hpp"
#include "websocket_session.hpp"

#include <vector>

namespace rendezvous::server {

session_settings session_settings_from(const config& cfg) {
  session_settings s;
  s.max_message_bytes = cfg.max_message_bytes;
  s.max_connections = cfg.max_connections;
  s.rate_limit_per_s = cfg.rate_limit_per_s;
  s.rate_limit_burst = cfg.rate_limit_burst;
  s.rate_limit_strikes = cfg.rate_limit_strikes;
  s.ping_interval = std::chrono::milliseconds(cfg.ping_interval_ms);
  s.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  s.outbound_max_messages = cfg.outbound_max_messages;
  s.outbound_max_bytes = cfg.outbound_max_bytes;
  s.ice.stun_uris = cfg.stun_uris;
  s.ice.turn_uris = cfg.turn_uris;
  s.ice.turn_secret = cfg.turn_secret;
  s.ice.turn_ttl_s = cfg.turn_ttl_s;
  s.auth_secret = cfg.auth_jwt_secret;
  s.allowed_origins = cfg.allowed_origins;
  for (const auto& text : cfg.trusted_proxies)
    if (auto r = parse_ip_range(text)) s.trusted_proxies.push_back(*r);  // checked when loaded
  s.per_address.max_connections = cfg.max_connections_per_ip;
  s.per_address.max_handshakes = cfg.max_handshakes_per_ip;
  s.per_address.join_rate = cfg.join_rate_per_ip;
  s.per_address.join_burst = cfg.join_burst_per_ip;
  s.ipv6_prefix_bits = cfg.ipv6_prefix_bits;
  return s;
}

void server_state::note_refusal(refusal_reason why, const std::optional<refusal_log>& line) {
  metrics_.refused(why).Increment();
  if (!line) return;
  auto address = line->key.to_string();
  log_event(spdlog::level::warn, "refuse-address",
            {{"address", address}, {"reason", to_string(line->reason)}, {"refused", line->count}});
}

void server_state::note_budget_refusal(std::int64_t now_us) {
  metrics_.refused(refusal_reason::fd_budget).Increment();
  std::uint64_t count = 0;
  {
    std::lock_guard lock(budget_log_mu_);
    ++budget_unlogged_;
    if (budget_logged_us_ && now_us - *budget_logged_us_ < settings_.per_address.log_interval_us) return;
    budget_logged_us_ = now_us;
    count = std::exchange(budget_unlogged_, 0);
  }
  log_event(spdlog::level::warn, "refuse-budget",
            {{"reason", "fd-budget"},
             {"refused", count},
             {"sockets", sockets_.open()},
             {"budget", sockets_.budget()}});
}

bool server_state::try_add_connection() noexcept {
  if (connections_.fetch_add(1) >= settings_.max_connections) {
    connections_.fetch_sub(1);
    return false;
  }
  return true;
}

void server_state::remove_connection() noexcept { connections_.fetch_sub(1); }

void server_state::track(const std::shared_ptr<session_base>& s) {
  std::lock_guard lock(sessions_mu_);
  sessions_.emplace(s.get(), s);
}

void server_state::untrack(const session_base* s) {
  std::function<void()> idle;
  {
    std::lock_guard lock(sessions_mu_);
    sessions_.erase(s);
    if (sessions_.empty() && on_idle_) idle = std::exchange(on_idle_, nullptr);
  }
  if (idle) idle();
}

void server_state::begin_drain(std::function<void()> on_idle) {
  draining_.store(true);
  registry_.close_joins();
  std::vector<std::weak_ptr<session_base>> all;
  std::function<void()> idle;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& [_, weak] : sessions_) all.push_back(weak);
    if (sessions_.empty())
      idle = std::move(on_idle);
    else
      on_idle_ = std::move(on_idle);
  }
  // Outside the lock: shutdown() posts, and a dropped last reference must not
  // run a destructor (which untracks) while we hold sessions_mu_.
  for (auto& weak : all)
    if (auto s = weak.lock()) s->shutdown();
  all.clear();
  if (idle) idle();
}

}  // namespace rendezvous::server
