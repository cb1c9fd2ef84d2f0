#pragma once
// The single-process room registry: rooms sharded by name hash, one mutex per
// shard. Critical sections only look up members and copy weak_ptrs; delivery
// to sessions happens after the lock is released (STYLE.md trap 6).
#include "metrics.hpp"
#include "room_registry.hpp"

#include <rendezvous/protocol/bounded_queue.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>

namespace rendezvous::server {

struct registry_limits {
  std::size_t max_peers_per_room = 16;
  std::size_t max_rooms = 100000;
  std::chrono::milliseconds reconnect_grace{15000};
  std::size_t held_max_messages = 64;
  std::size_t held_max_bytes = 256 * 1024;
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
  struct member {
    std::string id;
    std::weak_ptr<peer_link> link;  // empty while held
    std::uint64_t epoch = 0;
    std::string resume_token;
    bool held = false;
    protocol::held_messages held_messages;
  };
  struct room {
    std::vector<member> members;  // join order: welcome.peers is oldest first
  };
  struct lobby_member {
    std::weak_ptr<peer_link> link;
    std::uint64_t epoch = 0;
  };
  // Lets find() take the string_view from a frame without a temporary string.
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const noexcept { return std::hash<std::string_view>{}(v); }
  };
  template <class T>
  using name_map = std::unordered_map<std::string, T, name_hash, std::equal_to<>>;
  static constexpr std::size_t shard_count = 16;
  struct shard {
    std::mutex mu;
    name_map<room> rooms;
    name_map<lobby_member> lobby;
  };
  // Deliveries decided under a shard lock, performed after it is released.
  using outbox = std::vector<std::pair<std::weak_ptr<peer_link>, shared_message>>;

  shard& shard_for(std::string_view key);
  protocol::result<join_granted> join_lobby(join_request& request);
  // Appends to a held member's queue, counting what the bound pushes out.
  void hold_locked(member& m, shared_message msg);
  // Queues `msg` for `m` (held queue or outbox). Caller holds the shard lock.
  void enqueue_locked(member& m, const shared_message& msg, outbox& out);
  // Removes `self` for good and queues peer-left for the others. Caller holds the lock.
  void remove_locked(shard& s, name_map<room>::iterator room_it, std::vector<member>::iterator member_it,
                     protocol::leave_reason reason, bool notify, outbox& out);
  void send_all(outbox& out);
  void start_grace_timer(const peer_ref& self);
  void expire(const peer_ref& self);

  boost::asio::any_io_executor timers_;
  registry_limits limits_;
  metrics& metrics_;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> room_count_{0};
  std::atomic<std::uint64_t> next_epoch_{1};
  std::atomic<bool> closed_{false};
};

}  // namespace rendezvous::server
