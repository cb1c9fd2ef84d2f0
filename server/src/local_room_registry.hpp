#pragma once
// The single-process registry: two tables behind the room_registry facade,
// rooms (room_table) and libdatachannel's lobby (lobby_table), each sharded
// by name hash with one mutex per shard. Critical sections only look up
// members and copy weak_ptrs; delivery to sessions happens after the lock is
// released (a session's last reference may drop there, and its destructor
// leaves the registry).
//
// A joined session holds handles (peer_ref::room_handle, peer_ref::place):
// a delivery locks the room's shard through the handle and checks the
// sender's place directly, without hashing the room name or searching the
// sender. A room is erased from its shard when its last member goes; handles
// keep the records alive, marked `removed`.
#include "config.hpp"
#include "metrics.hpp"
#include "room_registry.hpp"

#include <rendezvous/protocol/bounded_queue.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rendezvous::server {

// The registry's settings; the defaults are the config's (config.hpp).
struct registry_limits {
  std::size_t max_peers_per_room = default_config.max_peers_per_room;
  std::size_t max_rooms = default_config.max_rooms;
  std::chrono::milliseconds reconnect_grace{default_config.reconnect_grace_ms};
  std::size_t held_max_messages = default_config.held_max_messages;
  std::size_t held_max_bytes = default_config.held_max_bytes;

  static registry_limits from(const config& cfg) {
    return {cfg.max_peers_per_room, cfg.max_rooms, std::chrono::milliseconds(cfg.reconnect_grace_ms),
            cfg.held_max_messages, cfg.held_max_bytes};
  }
};

// One place: a peer id in a room or in the lobby. Guarded by its shard's mutex.
struct member_state {
  member_state(std::string id_, std::weak_ptr<peer_link> link_, std::uint64_t epoch_,
               protocol::held_messages held_)
      : id(std::move(id_)), link(std::move(link_)), epoch(epoch_), held_messages(std::move(held_)) {}

  std::string id;
  std::weak_ptr<peer_link> link;  // empty while held
  std::uint64_t epoch = 0;        // of the connection that has the place now
  std::string resume_token;       // room mode
  bool held = false;              // dropped, within its reconnect grace
  bool removed = false;           // gone for good; handles may still point here
  protocol::held_messages held_messages;
};

struct room_state {
  room_state(std::mutex& m, std::string n) : mu(m), name(std::move(n)) {}
  std::mutex& mu;  // the shard's
  std::string name;
  std::vector<std::shared_ptr<member_state>> members;  // join order: welcome.peers is oldest first
};

namespace registry_detail {
// Lets find() take the string_view from a frame without a temporary string.
struct name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view v) const noexcept { return std::hash<std::string_view>{}(v); }
};
template <class T>
using name_map = std::unordered_map<std::string, T, name_hash, std::equal_to<>>;
inline constexpr std::size_t shard_count = 16;
// Deliveries decided under a shard lock, performed after it is released.
using outbox = std::vector<std::pair<std::weak_ptr<peer_link>, shared_message>>;
// Delivers `msg` to the session if it still exists, else counts the drop.
// Call with no shard lock held.
void hand_to(const std::weak_ptr<peer_link>& link, shared_message msg, metrics& m);
void send_all(outbox& out, metrics& m);
}  // namespace registry_detail

// Rooms: membership, resume, held places and their grace timers.
class room_table {
 public:
  room_table(boost::asio::any_io_executor timers, registry_limits limits, metrics& m,
             const std::atomic<bool>& closed);

  protocol::result<join_granted> join(join_request& request);
  void leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent);
  deliver_status deliver(const peer_ref& from, std::string_view target, shared_message msg);
  std::size_t broadcast(const peer_ref& from, shared_message msg);
  void hold_late(const peer_ref& self, shared_message msg);

 private:
  struct shard {
    std::mutex mu;
    registry_detail::name_map<std::shared_ptr<room_state>> rooms;
  };
  using outbox = registry_detail::outbox;

  shard& shard_for(std::string_view room);
  join_granted resume_locked(room_state& room, member_state& m, const join_request& request,
                             std::shared_ptr<peer_link>& replaced);
  // Appends to a held member's queue, counting what the bound pushes out.
  void hold_locked(member_state& m, shared_message msg);
  // Queues `msg` for `m` (held queue or outbox). Caller holds the shard lock.
  void enqueue_locked(member_state& m, const shared_message& msg, outbox& out);
  // Removes `m` for good, tells the others if `notify`. Caller holds the lock.
  void remove_locked(const std::shared_ptr<room_state>& room, member_state& m, protocol::leave_reason reason,
                     bool notify, outbox& out);
  void start_grace_timer(const peer_ref& self);
  void expire(const peer_ref& self);
  bool notifying() const noexcept { return !closed_.load(); }

  boost::asio::any_io_executor timers_;
  registry_limits limits_;
  metrics& metrics_;
  const std::atomic<bool>& closed_;
  std::array<shard, registry_detail::shard_count> shards_;
  std::atomic<std::size_t> room_count_{0};
  std::atomic<std::uint64_t> next_epoch_{1};
};

// libdatachannel mode: one id space, no rooms, no resume.
class lobby_table {
 public:
  explicit lobby_table(metrics& m) : metrics_(m) {}

  protocol::result<join_granted> join(join_request& request);
  void leave(const peer_ref& self, leave_kind kind);
  deliver_status deliver(const peer_ref& from, std::string_view target, shared_message msg);

 private:
  struct shard {
    std::mutex mu;
    registry_detail::name_map<std::shared_ptr<member_state>> peers;
  };
  shard& shard_for(std::string_view id);

  metrics& metrics_;
  std::array<shard, registry_detail::shard_count> shards_;
  std::atomic<std::uint64_t> next_epoch_{1};
};

class local_room_registry final : public room_registry {
 public:
  local_room_registry(boost::asio::any_io_executor timers, registry_limits limits, metrics& m);

  protocol::result<join_granted> join(join_request request) override;
  void leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) override;
  deliver_status deliver(const peer_ref& from, std::string_view target, shared_message msg) override;
  std::size_t broadcast(const peer_ref& from, shared_message msg) override;
  void hold_late(const peer_ref& self, shared_message msg) override;
  void close_joins() override { closed_.store(true); }

 private:
  static bool lobby(const peer_ref& p) noexcept { return p.mode == protocol::peer_mode::lobby; }

  metrics& metrics_;
  std::atomic<bool> closed_{false};
  room_table rooms_;
  lobby_table lobby_;
};

}  // namespace rendezvous::server
