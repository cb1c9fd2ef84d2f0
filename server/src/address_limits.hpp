#pragma once
// Limits per client address, so that one address cannot lock everyone out:
// open connections, connections not yet upgraded (handshakes), and joins per
// second (a token bucket). Plus the process-wide socket budget taken from
// RLIMIT_NOFILE. Pure (no I/O, time passed in), so it is unit-tested.
//
// The address is the one the server attributes to a peer (the TCP peer, or
// X-Forwarded-For through trusted_proxies); IPv6 counts per prefix (a /64
// is one site), IPv4-mapped IPv6 as IPv4.
//
// Threading: any thread; one mutex, held only to look up and count (no I/O,
// no logging, no call out). Memory is bounded by the addresses that hold
// something: an entry goes once its counts are 0, its bucket is full and its
// last refusal has been logged (at most a log interval later).
#include <rendezvous/protocol/token_bucket.hpp>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rendezvous::server {

// The unit a per-address limit counts.
struct address_key {
  std::array<unsigned char, 16> bytes{};  // IPv4 in the first 4
  unsigned char family = 0;               // 4 or 6; 0: no address (counts nothing)
  unsigned char prefix = 0;               // bits kept: 32 for IPv4

  bool operator==(const address_key&) const = default;
  explicit operator bool() const noexcept { return family != 0; }
  // "192.0.2.1", or "2001:db8:1:2::/64" (a whole address: no /128).
  std::string to_string() const;
};

// IPv4 as it is, IPv4-mapped IPv6 as IPv4, other IPv6 masked to
// `ipv6_prefix_bits` (1..128).
address_key make_address_key(const boost::asio::ip::address& a, unsigned ipv6_prefix_bits);

struct address_key_hash {
  std::size_t operator()(const address_key& k) const noexcept;
};

// Why a connection or a join was refused (metrics label, log field).
enum class refusal_reason { connections, handshakes, join_rate, fd_budget };
inline constexpr int refusal_reason_count = 4;
std::string_view to_string(refusal_reason r) noexcept;  // "connections", ..., "fd-budget"

struct address_limit_settings {
  std::size_t max_connections = 100;  // 0: no limit
  std::size_t max_handshakes = 20;    // 0: no limit
  double join_rate = 10;              // per second; 0: no limit
  double join_burst = 50;
  std::int64_t log_interval_us = 60'000'000;  // one refusal line per address per interval
};

// A refusal line due: `count` refusals of `key` since its last line (the
// refusal that made the line due included), the latest for `reason`.
struct refusal_log {
  address_key key;
  refusal_reason reason = refusal_reason::connections;
  std::uint64_t count = 0;
};

class address_limits {
 public:
  enum class kind { connection, handshake };

  // One count held for an address; given back when destroyed or released.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& o) noexcept { *this = std::move(o); }
    ticket& operator=(ticket&& o) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }
    void release() noexcept;
    explicit operator bool() const noexcept { return owner_ != nullptr; }

   private:
    friend class address_limits;
    ticket(address_limits* owner, address_key key, kind what) : owner_(owner), key_(key), what_(what) {}
    address_limits* owner_ = nullptr;
    address_key key_;
    kind what_ = kind::connection;
  };

  // A new connection: one connection and one handshake for `key`, or the
  // reason it is refused (and the log line, when one is due).
  struct connect_result {
    ticket connection;
    ticket handshake;
    std::optional<refusal_reason> refused;
    std::optional<refusal_log> log;
  };

  struct join_result {
    bool ok = true;
    std::optional<refusal_log> log;
  };

  explicit address_limits(address_limit_settings s) : settings_(s) {}
  address_limits(const address_limits&) = delete;
  address_limits& operator=(const address_limits&) = delete;

  connect_result try_connect(const address_key& key, std::int64_t now_us);
  join_result try_join(const address_key& key, std::int64_t now_us);

  // Lines due for addresses whose refusals went unlogged for a whole
  // interval; forgets entries that hold nothing. Call it periodically.
  std::vector<refusal_log> sweep(std::int64_t now_us);

  std::size_t tracked() const;
  // What `key` holds now (tests).
  std::size_t connections(const address_key& key) const;
  std::size_t handshakes(const address_key& key) const;

 private:
  struct entry {
    std::size_t connections = 0;
    std::size_t handshakes = 0;
    std::optional<protocol::token_bucket> bucket;  // made at the first join
    std::uint64_t unlogged = 0;                    // refusals since the last line
    refusal_reason last_reason = refusal_reason::connections;
    std::optional<std::int64_t> logged_us;  // when the last line was due
  };
  using table = std::unordered_map<address_key, entry, address_key_hash>;

  void give_back(const address_key& key, kind what) noexcept;
  std::optional<refusal_log> refuse(const address_key& key, entry& e, refusal_reason why,
                                    std::int64_t now_us);
  bool idle(const entry& e, std::int64_t now_us) const noexcept;

  address_limit_settings settings_;
  mutable std::mutex mu_;
  table entries_;            // guarded by mu_
  std::int64_t now_us_ = 0;  // latest time seen, for give_back (guarded by mu_)
};

// The process-wide budget of sockets: RLIMIT_NOFILE less a reserve and what
// was open at start. A socket over it is refused before anything is read.
class socket_budget {
 public:
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)) {}
    ticket& operator=(ticket&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = std::exchange(o.owner_, nullptr);
      }
      return *this;
    }
    ~ticket() { release(); }
    void release() noexcept {
      if (owner_) std::exchange(owner_, nullptr)->open_.fetch_sub(1, std::memory_order_relaxed);
    }
    explicit operator bool() const noexcept { return owner_ != nullptr; }

   private:
    friend class socket_budget;
    explicit ticket(socket_budget* owner) : owner_(owner) {}
    socket_budget* owner_ = nullptr;
  };

  explicit socket_budget(std::size_t budget = SIZE_MAX) : budget_(budget) {}
  void set_budget(std::size_t budget) noexcept { budget_ = budget; }  // before accepting

  // An empty ticket when the budget is spent.
  ticket try_open() noexcept {
    if (open_.fetch_add(1, std::memory_order_relaxed) >= budget_) {
      open_.fetch_sub(1, std::memory_order_relaxed);
      return {};
    }
    return ticket(this);
  }
  std::size_t open() const noexcept { return open_.load(std::memory_order_relaxed); }
  std::size_t budget() const noexcept { return budget_; }
  bool spent() const noexcept { return open() >= budget_; }

 private:
  std::size_t budget_;
  std::atomic<std::size_t> open_{0};
};

// The budget from the limits: soft - reserve - already_open, at least 1.
std::size_t socket_budget_for(std::uint64_t soft_limit, std::size_t reserve, std::size_t already_open);

}  // namespace rendezvous::server
