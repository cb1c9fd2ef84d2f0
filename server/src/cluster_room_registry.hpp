#pragma once
// The registry of a node among several: rooms span server processes over
// Redis (the backplane). Each node keeps a copy of every room it has a peer
// in, with the members on every node, kept current by the events on the
// room's channel (cluster_wire.hpp); joins and leaves are Lua scripts
// (cluster_scripts.hpp), so id-taken and room-full hold over all nodes.
//
//   same-node message    straight to the target, as in local_room_registry
//   cross-node message   SPUBLISH on the room's channel (pipelined: what is
//                        queued together goes in one write), delivered by
//                        the node that has the target
//   join                 SSUBSCRIBE the room (first peer on this node), then
//                        the join script; done once this node has seen its
//                        own join event, so every earlier event is applied
//   resume elsewhere     the script moves the place; the old node hands its
//                        held messages over (F) and seals (S)
//   node death           heartbeats in a sorted set; the node that sees one
//                        expire marks its places held, then ends them after
//                        the reconnect grace
//   Redis outage         not ready (readyz 503), joins refused unavailable,
//                        cross-node messages dropped and counted; on
//                        reconnect every place this node has is put back
//
// Threading: the Redis connections, timers and event handling run on one
// strand; the room copies are guarded by one mutex, taken by session
// strands for local deliveries. Deliveries to sessions happen outside it.
#include "cluster_wire.hpp"
#include "config.hpp"
#include "local_room_registry.hpp"  // registry_detail::name_map
#include "metrics.hpp"
#include "redis_url.hpp"
#include "resp_connection.hpp"
#include "room_registry.hpp"

#include <rendezvous/protocol/bounded_queue.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace rendezvous::server {

struct cluster_settings {
  redis_endpoint redis;
  std::string prefix;
  std::string node_id;  // as configured (or random); the incarnation adds a nonce
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds node_ttl{5000};
  std::chrono::milliseconds seal_timeout{500};
  std::chrono::milliseconds reconnect_grace{15000};
  std::size_t max_peers_per_room = 16;
  std::size_t max_rooms = 100000;
  std::size_t held_max_messages = 64;
  std::size_t held_max_bytes = 262144;
  std::size_t max_output_bytes = 64 << 20;  // to Redis, per connection, before drops

  static cluster_settings from(const config& cfg, std::string node_id);
};

class cluster_room_registry final : public room_registry {
 public:
  cluster_room_registry(boost::asio::io_context& ioc, cluster_settings settings, metrics& m);
  ~cluster_room_registry() override;

  // Connects (and keeps reconnecting) to Redis. Call once, before run().
  void start();
  // Says goodbye: this node's heartbeat expires at once, so the others hold
  // its places now rather than after the TTL. Then closes the connections.
  // `done` runs on the strand once that is sent (or at once without Redis).
  void stop(std::function<void()> done);

  protocol::result<join_granted> join(join_request request) override;  // refuses: use join_async
  void join_async(join_request request, join_handler done) override;
  void leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) override;
  deliver_status deliver(const peer_ref& from, std::string_view target, shared_message msg) override;
  std::size_t broadcast(const peer_ref& from, shared_message msg) override;
  void hold_late(const peer_ref& self, shared_message msg) override;
  void close_joins() override { closed_.store(true); }
  std::string not_ready() const override;

  const std::string& incarnation() const noexcept { return incarnation_; }

 private:
  struct member;
  struct room_copy;
  struct pending_join;
  struct lobby_peer {
    std::weak_ptr<peer_link> link;
    std::uint64_t epoch = 0;
  };
  // What to hand to sessions once the lock is released; a null message means
  // "replaced": close that connection (4409).
  using outbox = registry_detail::outbox;

  // Connection life (strand)
  void connect();
  void on_connected();
  void on_lost(std::string_view why);
  void heartbeat();
  void reap(const std::string& dead);
  void reassert_all();

  // Joins (strand)
  void start_join(std::shared_ptr<pending_join> pj);
  void run_join_script(std::shared_ptr<pending_join> pj);
  void on_join_reply(std::shared_ptr<pending_join> pj, const redisReply* r);
  void try_complete_locked(room_copy& room, outbox& out);
  void finish_join_locked(room_copy& room, pending_join& pj, outbox& out);
  void fail_join(pending_join& pj, protocol::error_code code, std::string why);
  void start_lobby_join(std::shared_ptr<pending_join> pj);

  // Events (strand)
  void on_push(const redisReply& r);
  void on_room_event(room_copy& room, std::string_view text, outbox& out);
  void apply_event_locked(room_copy& room, const cluster_wire::event& e, outbox& out);
  void on_lobby_event(std::string_view text, outbox& out);
  void apply_snapshot_locked(room_copy& room, const redisReply* all, std::uint64_t seq);

  // Leaving (strand)
  void run_leave_script(const std::string& room, const std::string& id, const std::string& node,
                        std::string_view reason);
  void start_grace_timer(const std::string& room, const std::string& id, std::uint64_t epoch);
  void maybe_drop_room_locked(const std::string& name);

  // Sending to Redis from any thread: queued under the lock, written on the strand.
  void publish_locked(std::string channel, std::string payload);
  void flush_publishes();
  void notify_locals_locked(room_copy& room, const shared_message& msg, std::string_view except, outbox& out);
  // Appends to a held member's queue, counting what the bound pushes out.
  void hold_locked(member& m, shared_message msg);
  void enqueue_locked(member& m, const shared_message& msg, outbox& out);
  void send_all(outbox& out);
  void count_drop(std::string_view reason, double n = 1);

  boost::asio::io_context& ioc_;
  redis_strand strand_;
  cluster_settings settings_;
  metrics& metrics_;
  std::string incarnation_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> ready_{false};
  bool stopping_ = false;  // strand

  std::shared_ptr<resp_connection> cmd_;  // strand: commands and publishes
  std::shared_ptr<resp_connection> sub_;  // strand: subscriptions
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer reconnect_timer_;
  std::chrono::milliseconds backoff_{100};
  bool heartbeat_ok_ = false;  // strand
  bool ever_connected_ = false;
  std::set<std::string> alive_;  // strand: incarnations seen alive

  mutable std::mutex mu_;
  registry_detail::name_map<std::shared_ptr<room_copy>> rooms_;
  registry_detail::name_map<lobby_peer> lobby_;
  std::vector<std::pair<std::string, std::string>> publishes_;  // channel, payload
  std::uint64_t next_epoch_ = 1;
  std::string lost_reason_ = "connecting to Redis";

  // Metrics of the backplane
  prometheus::Gauge* up_gauge_ = nullptr;
  prometheus::Gauge* nodes_gauge_ = nullptr;
  prometheus::Counter* reconnects_ = nullptr;
  prometheus::Counter* sent_ = nullptr;
  prometheus::Counter* received_ = nullptr;
  prometheus::Family<prometheus::Counter>* drops_ = nullptr;
};

}  // namespace rendezvous::server
