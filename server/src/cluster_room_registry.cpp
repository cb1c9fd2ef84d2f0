#include "cluster_room_registry.hpp"

#include "cluster_scripts.hpp"
#include "cluster_wire.hpp"
#include "random_token.hpp"

#include <rendezvous/protocol/server_messages.hpp>

#include <boost/asio/post.hpp>
#include <hiredis/hiredis.h>
#include <prometheus/family.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <list>

namespace rendezvous::server {

namespace net = boost::asio;
namespace wire = cluster_wire;
using protocol::error_code;
using protocol::failure;
using protocol::leave_reason;

namespace {
constexpr std::size_t resume_token_bytes = 16;
constexpr std::size_t generated_id_bytes = 6;

shared_message notice(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

std::string_view str(const redisReply* r) { return reply_text(r); }

std::optional<std::uint64_t> integer(const redisReply* r) {
  if (!r) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<std::uint64_t>(r->integer);
  return std::nullopt;
}

leave_reason reason_from(std::string_view text) {
  if (text == "kicked") return leave_reason::kicked;
  if (text == "timeout") return leave_reason::timeout;
  return leave_reason::closed;
}
}  // namespace

// A place in a room copy: on this node (local) or on another one.
struct cluster_room_registry::member {
  std::string id;
  std::string node;
  std::uint64_t seq = 0;  // join order, room-wide
  bool held = false;      // local: dropped, in its grace; remote: its node died
  bool local = false;
  std::weak_ptr<peer_link> link;  // local and live
  std::uint64_t epoch = 0;        // local
  std::string token;              // local: the resume token
  protocol::held_messages held_messages = protocol::make_held_messages(0, 0);
};

struct cluster_room_registry::pending_join {
  join_request request;
  join_handler done;
  std::string id;
  std::string token;  // the new resume token
  bool replied = false;
  bool resumed = false;
  std::uint64_t event = 0;     // the join's event number
  std::uint64_t join_seq = 0;  // its place in the room's order
  std::string old_node;        // resumed: where the place was
  bool wait_seal = false;
  // This node has seen the join's own event (J or R) on the channel: what
  // comes after it for this id is for this join, even before the script's
  // reply (the reply and the channel are two connections).
  bool event_seen = false;
  bool sealed = false;                    // the old node's S came
  std::vector<shared_message> forwarded;  // F: what the old node held, oldest first
  std::vector<shared_message> later;      // sent to the id after its join event, before it was done
  std::shared_ptr<net::steady_timer> seal_timer;
  bool finished = false;
};

struct cluster_room_registry::room_copy {
  std::string name;
  std::string channel;
  std::map<std::string, member, std::less<>> members;
  std::uint64_t last_seq = 0;
  bool subscribed = false;
  bool subscribing = false;
  bool synced = false;             // has a baseline (a snapshot), kept current by events since
  std::vector<std::string> early;  // events that came before the baseline
  std::list<std::shared_ptr<pending_join>> pending;  // waiting for subscribe, reply or seal
  std::size_t local_count() const {
    return static_cast<std::size_t>(
        std::count_if(members.begin(), members.end(), [](auto& kv) { return kv.second.local; }));
  }
};

cluster_settings cluster_settings::from(const config& cfg, std::string node_id) {
  cluster_settings s;
  parse_redis_url(cfg.redis_url, s.redis);
  s.prefix = cfg.redis_key_prefix;
  s.node_id = std::move(node_id);
  s.heartbeat = std::chrono::milliseconds(cfg.cluster_heartbeat_ms);
  s.node_ttl = std::chrono::milliseconds(cfg.cluster_node_ttl_ms);
  s.seal_timeout = std::chrono::milliseconds(cfg.resume_seal_timeout_ms);
  s.reconnect_grace = std::chrono::milliseconds(cfg.reconnect_grace_ms);
  s.max_peers_per_room = cfg.max_peers_per_room;
  s.max_rooms = cfg.max_rooms;
  s.held_max_messages = cfg.held_max_messages;
  s.held_max_bytes = cfg.held_max_bytes;
  return s;
}

cluster_room_registry::cluster_room_registry(net::io_context& ioc, cluster_settings settings, metrics& m)
    : ioc_(ioc),
      strand_(net::make_strand(ioc)),
      settings_(std::move(settings)),
      metrics_(m),
      incarnation_(settings_.node_id + "~" + random_hex(4)),
      heartbeat_timer_(strand_),
      reconnect_timer_(strand_) {
  auto& reg = m.prometheus_registry();
  up_gauge_ = &prometheus::BuildGauge()
                   .Name("rendezvous_backplane_up")
                   .Help("1 while this node's Redis connections are up")
                   .Register(reg)
                   .Add({});
  nodes_gauge_ = &prometheus::BuildGauge()
                      .Name("rendezvous_backplane_nodes_alive")
                      .Help("Nodes (this one included) whose heartbeat is current")
                      .Register(reg)
                      .Add({});
  reconnects_ = &prometheus::BuildCounter()
                     .Name("rendezvous_backplane_reconnects_total")
                     .Help("Times this node connected to Redis again after losing it")
                     .Register(reg)
                     .Add({});
  auto& msgs = prometheus::BuildCounter()
                   .Name("rendezvous_backplane_messages_total")
                   .Help("Messages to and from other nodes, by direction")
                   .Register(reg);
  sent_ = &msgs.Add({{"direction", "sent"}});
  received_ = &msgs.Add({{"direction", "received"}});
  drops_ = &prometheus::BuildCounter()
                .Name("rendezvous_backplane_dropped_total")
                .Help("Messages for other nodes that could not be sent, by reason")
                .Register(reg);
  drops_->Add({{"reason", "redis_down"}});
  drops_->Add({{"reason", "redis_backlog"}});
}

cluster_room_registry::~cluster_room_registry() = default;

// ---- connection life ----

void cluster_room_registry::start() {
  spdlog::info("backplane: node {} (incarnation {}), Redis {}", settings_.node_id, incarnation_,
               settings_.redis.display());
  net::post(strand_, [this] { connect(); });
}

void cluster_room_registry::stop(std::function<void()> done) {
  net::post(strand_, [this, done = std::move(done)] {
    stopping_ = true;
    heartbeat_timer_.cancel();
    reconnect_timer_.cancel();
    if (cmd_ && cmd_->up()) {
      // Expired now: the next heartbeat of another node reaps this one.
      auto key = wire::nodes_key(settings_.prefix);
      cmd_->command({"ZADD", key, "0", incarnation_}, [this, done](const redisReply*) {
        if (cmd_) cmd_->close();
        if (sub_) sub_->close();
        done();
      });
    } else {
      if (cmd_) cmd_->close();
      if (sub_) sub_->close();
      done();
    }
  });
}

std::string cluster_room_registry::not_ready() const {
  if (ready_.load()) return {};
  std::lock_guard lock(mu_);
  return "backplane: " + lost_reason_;
}

void cluster_room_registry::connect() {
  if (stopping_) return;
  auto timeout = std::max(settings_.heartbeat * 2, std::chrono::milliseconds(1000));
  cmd_ = std::make_shared<resp_connection>(strand_, settings_.redis, timeout, settings_.max_output_bytes);
  sub_ = std::make_shared<resp_connection>(strand_, settings_.redis, timeout, settings_.max_output_bytes);
  auto cmd = cmd_, sub = sub_;
  auto both = std::make_shared<int>(0);
  auto failed = std::make_shared<bool>(false);
  auto on_one = [this, cmd, sub, both, failed](bool ok) {
    if (cmd != cmd_) return;  // a newer attempt
    if (!ok) *failed = true;
    if (++*both < 2) return;
    if (*failed) {
      cmd->close();
      sub->close();
      {
        std::lock_guard lock(mu_);
        lost_reason_ = "cannot connect to Redis at " + settings_.redis.display() + ", retrying";
      }
      spdlog::warn("backplane: cannot connect to Redis at {}; retrying in {} ms", settings_.redis.display(),
                   backoff_.count());
      reconnect_timer_.expires_after(backoff_);
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
      reconnect_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) connect();
      });
      return;
    }
    on_connected();
  };
  cmd_->connect(on_one);
  sub_->connect(on_one);
}

void cluster_room_registry::on_connected() {
  backoff_ = std::chrono::milliseconds(100);
  cmd_->set_on_lost([this, c = cmd_](std::string_view why) {
    if (c == cmd_) on_lost(why);
  });
  sub_->set_on_lost([this, s = sub_](std::string_view why) {
    if (s == sub_) on_lost(why);
  });
  sub_->set_push_handler([this](const redisReply& r) { on_push(r); });
  if (ever_connected_) reconnects_->Increment();
  ever_connected_ = true;
  // Subscriptions first: the lobby, and every room this node has a copy of.
  sub_->command({"SSUBSCRIBE", wire::lobby_channel(settings_.prefix)});
  {
    std::lock_guard lock(mu_);
    for (auto& [name, room] : rooms_) {
      room->subscribed = false;
      room->subscribing = true;
      sub_->command({"SSUBSCRIBE", room->channel}, [this, name = name](const redisReply* r) {
        std::lock_guard lock(mu_);
        auto it = rooms_.find(name);
        if (it == rooms_.end() || reply_is_error(r)) return;
        it->second->subscribing = false;
        it->second->subscribed = true;
      });
    }
  }
  heartbeat_ok_ = false;
  heartbeat();
  reassert_all();
}

void cluster_room_registry::on_lost(std::string_view why) {
  bool was_ready = ready_.exchange(false);
  up_gauge_->Set(0);
  std::vector<std::shared_ptr<pending_join>> failed;
  {
    std::lock_guard lock(mu_);
    lost_reason_ = "lost Redis (" + std::string(why) + "), reconnecting";
    for (auto& [name, room] : rooms_) {
      room->subscribed = room->subscribing = false;
      room->synced = false;  // after the outage the baseline is the reassert's snapshot
      room->early.clear();
      for (auto& pj : room->pending) failed.push_back(pj);
      room->pending.clear();
    }
  }
  for (auto& pj : failed) fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
  if (was_ready || !stopping_) spdlog::warn("backplane: lost Redis: {}; reconnecting", why);
  if (cmd_) cmd_->close();
  if (sub_) sub_->close();
  if (stopping_) return;
  heartbeat_timer_.cancel();
  reconnect_timer_.expires_after(backoff_);
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) connect();
  });
}

void cluster_room_registry::heartbeat() {
  if (!cmd_ || !cmd_->up() || stopping_) return;
  auto ttl = std::to_string(settings_.node_ttl.count());
  cmd_->command(
      {"EVAL", cluster_scripts::heartbeat, "1", wire::nodes_key(settings_.prefix), incarnation_, ttl},
      [this, c = cmd_](const redisReply* r) {
        if (c != cmd_) return;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
          if (r) spdlog::warn("backplane: heartbeat refused: {}", str(r));
          return;
        }
        std::set<std::string> alive;
        for (std::size_t i = 0; i < r->element[1]->elements; ++i)
          alive.insert(std::string(str(r->element[1]->element[i])));
        alive_ = std::move(alive);
        nodes_gauge_->Set(static_cast<double>(alive_.size()));
        for (std::size_t i = 0; i < r->element[0]->elements; ++i) {
          std::string dead(str(r->element[0]->element[i]));
          if (dead != incarnation_) reap(dead);
        }
        if (!heartbeat_ok_) {
          heartbeat_ok_ = true;
          {
            std::lock_guard lock(mu_);
            lost_reason_.clear();
          }
          ready_.store(true);
          up_gauge_->Set(1);
          spdlog::info("backplane: connected to Redis at {}, {} node(s) alive", settings_.redis.display(),
                       alive_.size());
        }
      });
  heartbeat_timer_.expires_after(settings_.heartbeat);
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) heartbeat();
  });
}

void cluster_room_registry::reap(const std::string& dead) {
  // Only this node got `dead` from the heartbeat script: it marks the dead
  // node's places held everywhere, and ends them after the grace.
  spdlog::warn("backplane: node {} stopped heartbeating; holding its peers for {} ms", dead,
               settings_.reconnect_grace.count());
  auto rooms_key = wire::node_rooms_key(settings_.prefix, dead);
  cmd_->command({"SMEMBERS", rooms_key}, [this, dead, rooms_key](const redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < r->elements; ++i) {
      std::string room(str(r->element[i]));
      cmd_->command(
          {"EVAL", cluster_scripts::mark_held, "2", wire::room_members_key(settings_.prefix, room),
           wire::room_counter_key(settings_.prefix, room), dead, wire::room_channel(settings_.prefix, room)},
          [this, dead, room](const redisReply* held) {
            if (!held || held->type != REDIS_REPLY_ARRAY) return;
            for (std::size_t j = 0; j < held->elements; ++j) {
              std::string id(str(held->element[j]));
              auto timer = std::make_shared<net::steady_timer>(strand_, settings_.reconnect_grace);
              timer->async_wait([this, timer, dead, room, id](boost::system::error_code ec) {
                if (!ec) run_leave_script(room, id, dead, "timeout");
              });
            }
          });
    }
    cmd_->command({"DEL", rooms_key});
  });
  auto lobby_key = wire::node_lobby_key(settings_.prefix, dead);
  cmd_->command({"SMEMBERS", lobby_key}, [this, dead, lobby_key](const redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < r->elements; ++i)
      cmd_->command({"EVAL", cluster_scripts::lobby_leave, "1", wire::lobby_key(settings_.prefix),
                     str(r->element[i]), dead});
    cmd_->command({"DEL", lobby_key});
  });
}

void cluster_room_registry::reassert_all() {
  // Puts back every place this node has (Redis may have restarted empty),
  // and takes each room's snapshot as the new baseline.
  std::lock_guard lock(mu_);
  auto lobby = wire::lobby_key(settings_.prefix);
  auto lobby_index = wire::node_lobby_key(settings_.prefix, incarnation_);
  for (auto& [id, peer] : lobby_) {
    cmd_->command({"EVAL", cluster_scripts::lobby_join, "1", lobby, id, incarnation_});
    cmd_->command({"SADD", lobby_index, id});
  }
  auto rooms_index = wire::node_rooms_key(settings_.prefix, incarnation_);
  for (auto& [name, room] : rooms_) {
    std::vector<std::string> args{"EVAL",
                                  cluster_scripts::reassert,
                                  "2",
                                  wire::room_members_key(settings_.prefix, name),
                                  wire::room_counter_key(settings_.prefix, name),
                                  incarnation_,
                                  room->channel};
    for (auto& [id, m] : room->members) {
      if (!m.local) continue;
      args.push_back(id);
      args.push_back(std::to_string(m.seq));
      args.push_back(wire::token_hash(m.token));
    }
    std::vector<std::string_view> views(args.begin(), args.end());
    cmd_->command({"SADD", rooms_index, name});
    cmd_->command(views, [this, name = name](const redisReply* r) {
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return;
      outbox out;
      {
        std::lock_guard lock(mu_);
        auto it = rooms_.find(name);
        if (it == rooms_.end()) return;
        auto& room = *it->second;
        auto seq = integer(r->element[0]).value_or(0);
        // Members missing from the copy are added silently; the copy's own
        // are kept (their nodes put them back too).
        apply_snapshot_locked(room, r->element[1], seq);
        room.last_seq = seq;
        room.synced = true;
        auto early = std::move(room.early);
        room.early.clear();
        for (auto& text : early) on_room_event(room, text, out);
      }
      send_all(out);
    });
  }
}

// ---- joins ----

protocol::result<join_granted> cluster_room_registry::join(join_request) {
  return failure{error_code::unavailable, "the cluster registry joins asynchronously"};
}

void cluster_room_registry::join_async(join_request request, join_handler done) {
  if (closed_.load()) return done(failure{error_code::unavailable, "server is shutting down"});
  if (!ready_.load()) return done(failure{error_code::unavailable, "the backplane (Redis) is unreachable"});
  auto pj = std::make_shared<pending_join>();
  pj->request = std::move(request);
  pj->done = std::move(done);
  pj->id = pj->request.id ? *pj->request.id : random_hex(generated_id_bytes);
  pj->token = random_hex(resume_token_bytes);
  net::post(strand_, [this, pj] {
    if (pj->request.mode == protocol::peer_mode::lobby) return start_lobby_join(pj);
    start_join(pj);
  });
}

void cluster_room_registry::fail_join(pending_join& pj, error_code code, std::string why) {
  if (std::exchange(pj.finished, true)) return;
  auto done = std::move(pj.done);
  done(failure{code, std::move(why)});
}

void cluster_room_registry::start_join(std::shared_ptr<pending_join> pj) {
  if (!cmd_ || !cmd_->up() || !ready_.load())
    return fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
  std::unique_lock lock(mu_);
  auto& slot = rooms_[pj->request.room];
  if (!slot) {
    if (rooms_.size() > settings_.max_rooms) {
      rooms_.erase(pj->request.room);
      lock.unlock();
      return fail_join(*pj, error_code::unavailable, "too many rooms on this server");
    }
    slot = std::make_shared<room_copy>();
    slot->name = pj->request.room;
    slot->channel = wire::room_channel(settings_.prefix, slot->name);
    metrics_.rooms.Increment();
  }
  auto room = slot;
  room->pending.push_back(pj);
  if (room->subscribed) {
    lock.unlock();
    return run_join_script(pj);
  }
  if (room->subscribing) return;  // the subscribe's reply runs the script
  room->subscribing = true;
  lock.unlock();
  sub_->command({"SSUBSCRIBE", room->channel}, [this, name = room->name](const redisReply* r) {
    std::vector<std::shared_ptr<pending_join>> waiting;
    {
      std::lock_guard lock(mu_);
      auto it = rooms_.find(name);
      if (it == rooms_.end()) return;
      auto& room = *it->second;
      room.subscribing = false;
      room.subscribed = !reply_is_error(r);
      for (auto& p : room.pending)
        if (!p->replied) waiting.push_back(p);
    }
    for (auto& p : waiting) {
      if (r && !reply_is_error(r))
        run_join_script(p);
      else
        fail_join(*p, error_code::unavailable, "the backplane (Redis) is unreachable");
    }
  });
}

void cluster_room_registry::run_join_script(std::shared_ptr<pending_join> pj) {
  const auto& room = pj->request.room;
  auto resume_hash = pj->request.resume_token ? wire::token_hash(*pj->request.resume_token) : std::string();
  auto token_hash = wire::token_hash(pj->token);
  auto max = std::to_string(settings_.max_peers_per_room);
  cmd_->command({"SADD", wire::node_rooms_key(settings_.prefix, incarnation_), room});
  bool sent =
      cmd_->command({"EVAL", cluster_scripts::join, "2", wire::room_members_key(settings_.prefix, room),
                     wire::room_counter_key(settings_.prefix, room), pj->id, incarnation_, token_hash, max,
                     resume_hash, wire::room_channel(settings_.prefix, room)},
                    [this, pj](const redisReply* r) { on_join_reply(pj, r); });
  if (!sent) on_join_reply(pj, nullptr);
}

void cluster_room_registry::on_join_reply(std::shared_ptr<pending_join> pj, const redisReply* r) {
  auto drop_pending = [&] {
    std::lock_guard lock(mu_);
    auto it = rooms_.find(pj->request.room);
    if (it == rooms_.end()) return;
    it->second->pending.remove(pj);
    maybe_drop_room_locked(pj->request.room);
  };
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
    if (r) spdlog::warn("backplane: join script failed: {}", str(r));
    drop_pending();
    return fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
  }
  auto status = str(r->element[0]);
  if (status == "taken") {
    drop_pending();
    return fail_join(*pj, error_code::id_taken, "peer id '" + pj->id + "' is taken in this room");
  }
  if (status == "full") {
    drop_pending();
    return fail_join(*pj, error_code::room_full, "room is full");
  }
  if (r->elements != 5) {
    drop_pending();
    return fail_join(*pj, error_code::unavailable, "unexpected reply from the backplane");
  }
  outbox out;
  {
    std::lock_guard lock(mu_);
    auto it = rooms_.find(pj->request.room);
    if (it == rooms_.end()) return;  // cannot happen: pending keeps the copy
    auto& room = *it->second;
    pj->replied = true;
    pj->resumed = status == "resumed";
    pj->event = integer(r->element[1]).value_or(0);
    pj->join_seq = integer(r->element[2]).value_or(0);
    pj->old_node = std::string(str(r->element[3]));
    if (!room.synced) {
      apply_snapshot_locked(room, r->element[4], pj->event);
      room.last_seq = pj->event;
      room.synced = true;
      auto early = std::move(room.early);
      room.early.clear();
      for (auto& text : early) on_room_event(room, text, out);
    }
    if (pj->resumed && pj->old_node != incarnation_ && alive_.count(pj->old_node) && !pj->sealed) {
      // The old node hands over what it held for the peer, then seals.
      pj->wait_seal = true;
      pj->seal_timer = std::make_shared<net::steady_timer>(strand_, settings_.seal_timeout);
      pj->seal_timer->async_wait([this, pj](boost::system::error_code ec) {
        if (ec) return;
        outbox out;
        {
          std::lock_guard lock(mu_);
          if (!pj->wait_seal) return;
          spdlog::warn("backplane: no seal from {} for {} within {} ms; resuming without it", pj->old_node,
                       pj->id, settings_.seal_timeout.count());
          pj->wait_seal = false;
          auto it = rooms_.find(pj->request.room);
          if (it != rooms_.end()) try_complete_locked(*it->second, out);
        }
        send_all(out);
      });
    }
    try_complete_locked(room, out);
  }
  send_all(out);
}

void cluster_room_registry::try_complete_locked(room_copy& room, outbox& out) {
  // A join is done once this node has applied every event up to its own
  // (so welcome.peers is the room as of the join), and for a resume from
  // another node, once the old node has sealed.
  for (auto it = room.pending.begin(); it != room.pending.end();) {
    auto& pj = **it;
    if (pj.replied && room.synced && room.last_seq >= pj.event && !pj.wait_seal) {
      auto keep = *it;
      it = room.pending.erase(it);
      finish_join_locked(room, pj, out);
    } else {
      ++it;
    }
  }
}

void cluster_room_registry::finish_join_locked(room_copy& room, pending_join& pj, outbox& out) {
  if (std::exchange(pj.finished, true)) return;
  auto& m = room.members[pj.id];
  join_granted granted;
  bool was_local = m.local;
  if (pj.resumed && m.local) {
    // A resume onto the node that has the place: as on one server. The old
    // connection, if it is still there, is closed 4409 (send_all).
    out.emplace_back(m.link, nullptr);
    auto held = m.held_messages.take();
    granted.held.assign(std::make_move_iterator(held.begin()), std::make_move_iterator(held.end()));
  } else if (!pj.resumed) {
    auto joined = notice(protocol::make_peer_joined(pj.id));
    notify_locals_locked(room, joined, pj.id, out);
  }
  for (auto& msg : pj.forwarded) granted.held.push_back(std::move(msg));
  for (auto& msg : pj.later) granted.held.push_back(std::move(msg));
  m.id = pj.id;
  m.node = incarnation_;
  m.seq = pj.join_seq;
  m.held = false;
  m.local = true;
  m.link = pj.request.link;
  m.epoch = next_epoch_++;
  m.token = pj.token;
  if (!was_local)
    m.held_messages = protocol::make_held_messages(settings_.held_max_messages, settings_.held_max_bytes);
  std::vector<const member*> others;
  for (auto& [id, other] : room.members)
    if (id != pj.id) others.push_back(&other);
  std::sort(others.begin(), others.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  for (auto* o : others) granted.peers.push_back(o->id);
  granted.self = {protocol::peer_mode::room, room.name, pj.id, m.epoch, nullptr, nullptr};
  granted.resume_token = pj.token;
  granted.resumed = pj.resumed;
  (pj.resumed ? metrics_.resumes : metrics_.joins).Increment();
  auto done = std::move(pj.done);
  // The handler posts to the session's strand; calling it under the lock is safe.
  done(std::move(granted));
}

void cluster_room_registry::start_lobby_join(std::shared_ptr<pending_join> pj) {
  if (!cmd_ || !cmd_->up() || !ready_.load())
    return fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
  bool here;
  {
    std::lock_guard lock(mu_);
    here = lobby_.count(pj->id) > 0;
  }
  if (here) return fail_join(*pj, error_code::id_taken, "peer id '" + pj->id + "' is connected");
  bool sent = cmd_->command(
      {"EVAL", cluster_scripts::lobby_join, "1", wire::lobby_key(settings_.prefix), pj->id, incarnation_},
      [this, pj](const redisReply* r) {
        auto taken = integer(r);
        if (!taken) return fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
        if (*taken == 0) return fail_join(*pj, error_code::id_taken, "peer id '" + pj->id + "' is connected");
        join_granted granted;
        {
          std::lock_guard lock(mu_);
          auto& peer = lobby_[pj->id];
          peer.link = pj->request.link;
          peer.epoch = next_epoch_++;
          granted.self = {protocol::peer_mode::lobby, {}, pj->id, peer.epoch, nullptr, nullptr};
        }
        cmd_->command({"SADD", wire::node_lobby_key(settings_.prefix, incarnation_), pj->id});
        metrics_.joins.Increment();
        pj->finished = true;
        auto done = std::move(pj->done);
        done(std::move(granted));
      });
  if (!sent) fail_join(*pj, error_code::unavailable, "the backplane (Redis) is unreachable");
}

// ---- events ----

void cluster_room_registry::on_push(const redisReply& r) {
  std::string_view channel(r.element[1]->str, r.element[1]->len);
  std::string_view text(r.element[2]->str, r.element[2]->len);
  outbox out;
  {
    std::lock_guard lock(mu_);
    if (channel == wire::lobby_channel(settings_.prefix)) {
      on_lobby_event(text, out);
    } else if (auto name = wire::room_of_channel(settings_.prefix, channel)) {
      auto it = rooms_.find(*name);
      if (it != rooms_.end()) on_room_event(*it->second, text, out);
    }
  }
  send_all(out);
}

void cluster_room_registry::on_lobby_event(std::string_view text, outbox& out) {
  auto e = wire::parse_event(text);
  if (!e || e->kind != 'M' || e->node == incarnation_) return;
  auto it = lobby_.find(e->id);
  if (it == lobby_.end()) return;  // another node's peer, or nobody's
  received_->Increment();
  metrics_.relayed.Increment();
  out.emplace_back(it->second.link, notice(std::string(e->message)));
}

void cluster_room_registry::on_room_event(room_copy& room, std::string_view text, outbox& out) {
  auto parsed = wire::parse_event(text);
  if (!parsed) return;
  auto& e = *parsed;
  bool membership = e.kind == 'J' || e.kind == 'L' || e.kind == 'R' || e.kind == 'H' || e.kind == 'A';
  if (membership) {
    if (!room.synced) {
      room.early.emplace_back(text);
      return;
    }
    if (e.seq <= room.last_seq) return;  // already in the snapshot
    room.last_seq = e.seq;
    if (e.node == incarnation_ && (e.kind == 'J' || e.kind == 'R'))
      for (auto& p : room.pending)
        if (p->id == e.id) p->event_seen = true;
    apply_event_locked(room, e, out);
    try_complete_locked(room, out);
    return;
  }
  if (e.node == incarnation_) return;  // this node's own traffic
  received_->Increment();
  auto find_pending = [&](std::string_view id) -> pending_join* {
    for (auto& p : room.pending)
      if (p->id == id && (p->event_seen || p->replied)) return p.get();
    return nullptr;
  };
  switch (e.kind) {
    case 'M': {
      auto msg = notice(std::string(e.message));
      auto it = room.members.find(e.id);
      if (it != room.members.end() && it->second.local) {
        metrics_.relayed.Increment();
        enqueue_locked(it->second, msg, out);
      } else if (auto* p = find_pending(e.id)) {
        p->later.push_back(std::move(msg));  // after what the old node held
      }
      break;
    }
    case 'B': {
      auto msg = notice(std::string(e.message));
      for (auto& [id, m] : room.members) {
        if (!m.local || id == e.id) continue;
        metrics_.relayed.Increment();
        enqueue_locked(m, msg, out);
      }
      for (auto& p : room.pending)
        if ((p->event_seen || p->replied) && p->id != e.id) p->later.push_back(msg);
      break;
    }
    case 'F':
      if (auto* p = find_pending(e.id)) p->forwarded.push_back(notice(std::string(e.message)));
      break;
    case 'S':
      if (auto* p = find_pending(e.id)) {
        p->sealed = true;
        p->wait_seal = false;
        if (p->seal_timer) p->seal_timer->cancel();
        try_complete_locked(room, out);
      }
      break;
    default: break;
  }
}

void cluster_room_registry::apply_event_locked(room_copy& room, const wire::event& e, outbox& out) {
  if (e.node == incarnation_ && e.kind != 'H') return;  // this node applied its own change already
  switch (e.kind) {
    case 'J':
    case 'A': {
      // A: a node put a place back after an outage; new to this copy only if
      // it left meanwhile (then the others hear it joined again).
      auto [it, added] = room.members.try_emplace(e.id);
      auto& m = it->second;
      if (m.local) return;  // cannot happen: the scripts refuse a taken id
      std::uint64_t seq = e.seq;
      if (e.kind == 'A') std::from_chars(e.extra.data(), e.extra.data() + e.extra.size(), seq);
      m.id = e.id;
      m.node = e.node;
      m.seq = seq;
      m.held = false;
      if (added) notify_locals_locked(room, notice(protocol::make_peer_joined(e.id)), e.id, out);
      break;
    }
    case 'L': {
      auto it = room.members.find(e.id);
      if (it == room.members.end() || it->second.node != e.node || it->second.local) return;
      room.members.erase(it);
      auto reason = reason_from(e.extra);
      metrics_.leave(reason).Increment();
      notify_locals_locked(room, notice(protocol::make_peer_left(e.id, reason)), e.id, out);
      break;
    }
    case 'R': {
      auto it = room.members.find(e.id);
      if (it == room.members.end()) {
        auto& m = room.members[e.id];
        m.id = e.id;
        m.node = e.node;
        return;
      }
      auto& m = it->second;
      if (m.local) {
        // The place moved to another node: hand over what was held for it,
        // close a connection that still has it (4409), seal.
        auto held = m.held_messages.take();
        for (auto& msg : held) publish_locked(room.channel, wire::make_relay('F', incarnation_, e.id, *msg));
        publish_locked(room.channel, wire::make_seal(incarnation_, e.id));
        out.emplace_back(m.link, nullptr);  // 4409, from send_all
        m.local = false;
        m.link.reset();
        m.token.clear();
        m.held_messages = protocol::make_held_messages(0, 0);
      }
      m.node = e.node;
      m.held = false;
      break;
    }
    case 'H': {
      auto it = room.members.find(e.id);
      if (it != room.members.end() && !it->second.local) it->second.held = true;
      if (e.node == incarnation_)
        spdlog::error("backplane: another node declared this node ({}) dead; its peers are held elsewhere",
                      incarnation_);
      break;
    }
    default: break;
  }
}

void cluster_room_registry::apply_snapshot_locked(room_copy& room, const redisReply* all, std::uint64_t) {
  if (!all || all->type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i + 1 < all->elements; i += 2) {
    std::string id(str(all->element[i]));
    auto rec = wire::parse_member(str(all->element[i + 1]));
    if (!rec) continue;
    auto& m = room.members[id];
    if (m.local) continue;
    bool pending =
        std::any_of(room.pending.begin(), room.pending.end(), [&](auto& p) { return p->id == id; });
    if (pending && rec->node == incarnation_) {
      // This node's join in flight: it becomes a member when it finishes.
      if (m.id.empty()) room.members.erase(id);
      continue;
    }
    m.id = id;
    m.node = rec->node;
    m.seq = rec->seq;
    m.held = rec->held;
  }
}

// ---- leaving ----

void cluster_room_registry::leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) {
  if (self.mode == protocol::peer_mode::lobby) {
    bool left = false;
    {
      std::lock_guard lock(mu_);
      auto it = lobby_.find(self.id);
      if (it != lobby_.end() && it->second.epoch == self.epoch) {
        lobby_.erase(it);
        left = true;
      }
    }
    if (!left) return;
    metrics_.leave(kind == leave_kind::kicked ? leave_reason::kicked : leave_reason::closed).Increment();
    if (kind == leave_kind::silent) return;  // shutdown: the node's goodbye frees it
    net::post(strand_, [this, id = self.id] {
      if (!cmd_ || !cmd_->up()) return;
      cmd_->command(
          {"EVAL", cluster_scripts::lobby_leave, "1", wire::lobby_key(settings_.prefix), id, incarnation_});
      cmd_->command({"SREM", wire::node_lobby_key(settings_.prefix, incarnation_), id});
    });
    return;
  }
  outbox out;
  bool start_timer = false, tell_redis = false;
  leave_reason reason = wire_reason(kind);
  {
    std::lock_guard lock(mu_);
    auto rit = rooms_.find(self.room);
    if (rit == rooms_.end()) return;
    auto& room = *rit->second;
    auto it = room.members.find(self.id);
    if (it == room.members.end() || !it->second.local) return;
    auto& m = it->second;
    if (m.epoch != self.epoch) {
      for (auto& msg : unsent) enqueue_locked(m, msg, out);  // resumed here: to the new connection
    } else if (kind == leave_kind::dropped && settings_.reconnect_grace.count() > 0 && !closed_.load()) {
      m.held = true;
      m.link.reset();
      for (auto& msg : unsent) hold_locked(m, msg);
      start_timer = true;
    } else {
      if (auto n = m.held_messages.size())
        metrics_.dropped(drop_reason::closed).Increment(static_cast<double>(n));
      room.members.erase(it);
      metrics_.leave(reason).Increment();
      if (kind != leave_kind::silent && !closed_.load()) {
        notify_locals_locked(room, notice(protocol::make_peer_left(self.id, reason)), self.id, out);
      }
      // At shutdown the place stays in Redis: the node's goodbye makes the
      // others hold it, so the peer can resume on another node.
      tell_redis = kind != leave_kind::silent;
      maybe_drop_room_locked(self.room);
    }
  }
  if (start_timer)
    net::post(strand_, [this, room = self.room, id = self.id, epoch = self.epoch] {
      start_grace_timer(room, id, epoch);
    });
  if (tell_redis)
    net::post(strand_, [this, room = self.room, id = self.id, reason] {
      run_leave_script(room, id, incarnation_, protocol::to_string(reason));
    });
  send_all(out);
}

void cluster_room_registry::run_leave_script(const std::string& room, const std::string& id,
                                             const std::string& node, std::string_view reason) {
  if (!cmd_ || !cmd_->up()) return;  // the reassert after the outage will not put it back
  cmd_->command({"EVAL", cluster_scripts::leave, "2", wire::room_members_key(settings_.prefix, room),
                 wire::room_counter_key(settings_.prefix, room), id, node, reason,
                 wire::room_channel(settings_.prefix, room)});
}

void cluster_room_registry::start_grace_timer(const std::string& room, const std::string& id,
                                              std::uint64_t epoch) {
  auto timer = std::make_shared<net::steady_timer>(strand_, settings_.reconnect_grace);
  timer->async_wait([this, timer, room, id, epoch](boost::system::error_code ec) {
    if (ec) return;
    outbox out;
    bool ended = false;
    {
      std::lock_guard lock(mu_);
      auto rit = rooms_.find(room);
      if (rit == rooms_.end()) return;
      auto it = rit->second->members.find(id);
      if (it == rit->second->members.end() || !it->second.local || it->second.epoch != epoch ||
          !it->second.held)
        return;
      if (auto n = it->second.held_messages.size())
        metrics_.dropped(drop_reason::closed).Increment(static_cast<double>(n));
      rit->second->members.erase(it);
      metrics_.leave(leave_reason::timeout).Increment();
      notify_locals_locked(*rit->second, notice(protocol::make_peer_left(id, leave_reason::timeout)), id,
                           out);
      maybe_drop_room_locked(room);
      ended = true;
    }
    if (ended) run_leave_script(room, id, incarnation_, "timeout");
    send_all(out);
  });
}

void cluster_room_registry::maybe_drop_room_locked(const std::string& name) {
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return;
  auto& room = *it->second;
  if (!room.pending.empty() || room.local_count() > 0) return;
  bool was_subscribed = room.subscribed || room.subscribing;
  auto channel = room.channel;
  rooms_.erase(it);
  metrics_.rooms.Decrement();
  if (!was_subscribed) return;
  net::post(strand_, [this, channel, name] {
    if (!sub_ || !sub_->up()) return;
    std::lock_guard lock(mu_);
    if (rooms_.count(name)) return;  // a new join came meanwhile
    sub_->command({"SUNSUBSCRIBE", channel});
    cmd_->command({"SREM", wire::node_rooms_key(settings_.prefix, incarnation_), name});
  });
}

// ---- relay ----

deliver_status cluster_room_registry::deliver(const peer_ref& from, std::string_view target,
                                              shared_message msg) {
  std::weak_ptr<peer_link> link;
  {
    std::lock_guard lock(mu_);
    if (from.mode == protocol::peer_mode::lobby) {
      if (target == from.id) return deliver_status::not_found;
      auto self = lobby_.find(from.id);
      if (self == lobby_.end() || self->second.epoch != from.epoch) return deliver_status::not_found;
      auto it = lobby_.find(target);
      if (it == lobby_.end()) {
        // Maybe on another node: the lobby's channel reaches every node.
        publish_locked(wire::lobby_channel(settings_.prefix),
                       wire::make_relay('M', incarnation_, target, *msg));
        return deliver_status::delivered;
      }
      link = it->second.link;
    } else {
      auto rit = rooms_.find(from.room);
      if (rit == rooms_.end()) return deliver_status::not_found;
      auto& room = *rit->second;
      auto sit = room.members.find(from.id);
      if (sit == room.members.end() || !sit->second.local || sit->second.epoch != from.epoch)
        return deliver_status::not_found;
      auto it = room.members.find(target);
      if (it == room.members.end() || it == sit) return deliver_status::not_found;
      metrics_.relayed.Increment();
      auto& m = it->second;
      if (!m.local) {
        publish_locked(room.channel, wire::make_relay('M', incarnation_, target, *msg));
        return deliver_status::delivered;
      }
      if (m.held) {
        hold_locked(m, std::move(msg));
        return deliver_status::held;
      }
      link = m.link;
    }
  }
  registry_detail::hand_to(link, std::move(msg), metrics_);
  return deliver_status::delivered;
}

std::size_t cluster_room_registry::broadcast(const peer_ref& from, shared_message msg) {
  if (from.mode == protocol::peer_mode::lobby) return 0;
  outbox out;
  std::size_t count = 0;
  {
    std::lock_guard lock(mu_);
    auto rit = rooms_.find(from.room);
    if (rit == rooms_.end()) return 0;
    auto& room = *rit->second;
    auto sit = room.members.find(from.id);
    if (sit == room.members.end() || !sit->second.local || sit->second.epoch != from.epoch) return 0;
    bool remote = false;
    for (auto& [id, m] : room.members) {
      if (id == from.id) continue;
      ++count;
      if (m.local)
        enqueue_locked(m, msg, out);
      else
        remote = true;
    }
    if (remote) publish_locked(room.channel, wire::make_relay('B', incarnation_, from.id, *msg));
  }
  metrics_.relayed.Increment(static_cast<double>(count));
  send_all(out);
  return count;
}

void cluster_room_registry::hold_late(const peer_ref& self, shared_message msg) {
  outbox out;
  {
    std::lock_guard lock(mu_);
    auto rit = rooms_.find(self.room);
    auto* m = rit == rooms_.end() ? nullptr : [&]() -> member* {
      auto it = rit->second->members.find(self.id);
      return it == rit->second->members.end() || !it->second.local ? nullptr : &it->second;
    }();
    if (!m || self.mode == protocol::peer_mode::lobby) {
      metrics_.dropped(drop_reason::closed).Increment();
      return;
    }
    enqueue_locked(*m, msg, out);
  }
  send_all(out);
}

// ---- plumbing ----

void cluster_room_registry::hold_locked(member& m, shared_message msg) {
  if (auto dropped = m.held_messages.push(std::move(msg)).dropped)
    metrics_.dropped(drop_reason::held_overflow).Increment(static_cast<double>(dropped));
}

void cluster_room_registry::enqueue_locked(member& m, const shared_message& msg, outbox& out) {
  if (m.held) {
    hold_locked(m, msg);
  } else {
    out.emplace_back(m.link, msg);
  }
}

void cluster_room_registry::notify_locals_locked(room_copy& room, const shared_message& msg,
                                                 std::string_view except, outbox& out) {
  for (auto& [id, m] : room.members)
    if (m.local && id != except) enqueue_locked(m, msg, out);
}

void cluster_room_registry::send_all(outbox& out) {
  // A null message means: the place went to a new connection, close this one.
  for (auto& [weak, msg] : out) {
    if (!msg) {
      if (auto link = weak.lock()) link->replaced();
      continue;
    }
    registry_detail::hand_to(weak, std::move(msg), metrics_);
  }
  out.clear();
}

void cluster_room_registry::publish_locked(std::string channel, std::string payload) {
  bool first = publishes_.empty();
  publishes_.emplace_back(std::move(channel), std::move(payload));
  // One flush per batch: what is queued meanwhile goes in the same write.
  if (first) net::post(strand_, [this] { flush_publishes(); });
}

void cluster_room_registry::flush_publishes() {
  std::vector<std::pair<std::string, std::string>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(publishes_);
  }
  std::size_t dropped_down = 0, dropped_backlog = 0;
  for (auto& [channel, payload] : batch) {
    if (!cmd_ || !cmd_->up()) {
      ++dropped_down;
    } else if (!cmd_->command({"SPUBLISH", channel, payload})) {
      ++dropped_backlog;
    } else {
      sent_->Increment();
    }
  }
  if (dropped_down) count_drop("redis_down", static_cast<double>(dropped_down));
  if (dropped_backlog) count_drop("redis_backlog", static_cast<double>(dropped_backlog));
}

void cluster_room_registry::count_drop(std::string_view reason, double n) {
  drops_->Add({{"reason", std::string(reason)}}).Increment(n);
  static std::atomic<std::int64_t> last_log{0};
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  auto prev = last_log.load();
  if (now - prev >= 10 && last_log.compare_exchange_strong(prev, now))
    spdlog::warn("backplane: dropped {} message(s) for other nodes ({})", n, reason);
}

}  // namespace rendezvous::server
