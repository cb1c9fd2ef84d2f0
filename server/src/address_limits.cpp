#include "address_limits.hpp"

#include "forwarded_for.hpp"

#include <algorithm>

namespace rendezvous::server {

namespace ip = boost::asio::ip;

std::string address_key::to_string() const {
  if (family == 4) {
    ip::address_v4::bytes_type b{};
    std::copy_n(bytes.begin(), 4, b.begin());
    return ip::address_v4(b).to_string();
  }
  if (family == 6) {
    auto text = ip::address_v6(bytes).to_string();
    return prefix < 128 ? text + "/" + std::to_string(prefix) : text;
  }
  return "-";
}

address_key make_address_key(const ip::address& a, unsigned ipv6_prefix_bits) {
  address_key k;
  auto u = unmapped(a);
  if (u.is_v4()) {
    auto b = u.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), k.bytes.begin());
    k.family = 4;
    k.prefix = 32;
    return k;
  }
  const unsigned prefix = std::clamp(ipv6_prefix_bits, 1u, 128u);
  k.bytes = u.to_v6().to_bytes();
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0;
    k.bytes[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xffu << (8 - keep));
  }
  k.family = 6;
  k.prefix = static_cast<unsigned char>(prefix);
  return k;
}

std::size_t address_key_hash::operator()(const address_key& k) const noexcept {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (auto c : k.bytes) mix(c);
  mix(k.family);
  mix(k.prefix);
  return static_cast<std::size_t>(h);
}

std::string_view to_string(refusal_reason r) noexcept {
  switch (r) {
    case refusal_reason::connections: return "connections";
    case refusal_reason::handshakes: return "handshakes";
    case refusal_reason::join_rate: return "join-rate";
    case refusal_reason::fd_budget: return "fd-budget";
  }
  return "unknown";
}

// ---- address_limits ----

address_limits::ticket& address_limits::ticket::operator=(ticket&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    key_ = o.key_;
    what_ = o.what_;
  }
  return *this;
}

void address_limits::ticket::release() noexcept {
  if (owner_) std::exchange(owner_, nullptr)->give_back(key_, what_);
}

std::optional<refusal_log> address_limits::refuse(const address_key& key, entry& e, refusal_reason why,
                                                  std::int64_t now_us) {
  ++e.unlogged;
  e.last_reason = why;
  if (e.logged_us && now_us - *e.logged_us < settings_.log_interval_us) return std::nullopt;
  e.logged_us = now_us;
  return refusal_log{key, why, std::exchange(e.unlogged, 0)};
}

bool address_limits::idle(const entry& e, std::int64_t now_us) const noexcept {
  return e.connections == 0 && e.handshakes == 0 && (!e.bucket || e.bucket->full(now_us)) &&
         e.unlogged == 0 && (!e.logged_us || now_us - *e.logged_us >= settings_.log_interval_us);
}

address_limits::connect_result address_limits::try_connect(const address_key& key, std::int64_t now_us) {
  connect_result out;
  if (!key) return out;  // no address: nothing to count it against
  const bool limited = settings_.max_connections > 0 || settings_.max_handshakes > 0;
  if (!limited) return out;
  std::lock_guard lock(mu_);
  now_us_ = std::max(now_us_, now_us);
  auto& e = entries_[key];
  if (settings_.max_connections > 0 && e.connections >= settings_.max_connections)
    out.refused = refusal_reason::connections;
  else if (settings_.max_handshakes > 0 && e.handshakes >= settings_.max_handshakes)
    out.refused = refusal_reason::handshakes;
  if (out.refused) {
    out.log = refuse(key, e, *out.refused, now_us);
    return out;
  }
  ++e.connections;
  ++e.handshakes;
  out.connection = ticket(this, key, kind::connection);
  out.handshake = ticket(this, key, kind::handshake);
  return out;
}

address_limits::join_result address_limits::try_join(const address_key& key, std::int64_t now_us) {
  join_result out;
  if (!key || settings_.join_rate <= 0) return out;
  std::lock_guard lock(mu_);
  now_us_ = std::max(now_us_, now_us);
  auto& e = entries_[key];
  if (!e.bucket) e.bucket.emplace(settings_.join_rate, settings_.join_burst, now_us);
  if (e.bucket->try_take(now_us)) {
    // An address that only joins (behind a trusted proxy that keeps no
    // tickets) is forgotten by sweep() once its bucket is full again.
    return out;
  }
  out.ok = false;
  out.log = refuse(key, e, refusal_reason::join_rate, now_us);
  return out;
}

void address_limits::give_back(const address_key& key, kind what) noexcept {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& e = it->second;
  auto& n = what == kind::connection ? e.connections : e.handshakes;
  if (n > 0) --n;
  if (idle(e, now_us_)) entries_.erase(it);
}

std::vector<refusal_log> address_limits::sweep(std::int64_t now_us) {
  std::vector<refusal_log> due;
  std::lock_guard lock(mu_);
  now_us_ = std::max(now_us_, now_us);
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto& e = it->second;
    if (e.unlogged > 0 && (!e.logged_us || now_us - *e.logged_us >= settings_.log_interval_us)) {
      e.logged_us = now_us;
      due.push_back({it->first, e.last_reason, std::exchange(e.unlogged, 0)});
    }
    if (idle(e, now_us))
      it = entries_.erase(it);
    else
      ++it;
  }
  return due;
}

std::size_t address_limits::tracked() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::size_t address_limits::connections(const address_key& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.connections;
}

std::size_t address_limits::handshakes(const address_key& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.handshakes;
}

std::size_t socket_budget_for(std::uint64_t soft_limit, std::size_t reserve, std::size_t already_open) {
  const std::uint64_t kept = static_cast<std::uint64_t>(reserve) + already_open;
  if (soft_limit <= kept) return 1;
  const std::uint64_t budget = soft_limit - kept;
  return budget > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(budget);
}

}  // namespace rendezvous::server
