#include "local_room_registry.hpp"

#include "random_token.hpp"

#include <rendezvous/protocol/server_messages.hpp>

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <functional>

namespace rendezvous::server {

namespace net = boost::asio;
using protocol::error_code;
using protocol::failure;
using protocol::leave_reason;

namespace {
constexpr std::size_t resume_token_bytes = 16;  // 128 bits
constexpr std::size_t generated_id_bytes = 6;

template <class Members>
auto find_member(Members& members, std::string_view id) {
  return std::find_if(members.begin(), members.end(), [&](const auto& m) { return m->id == id; });
}

// A peer_ref that came from a join (one made up elsewhere has no handles).
bool joined(const peer_ref& p) noexcept { return p.room_handle && p.place; }

shared_message notice(std::string text) { return std::make_shared<const std::string>(std::move(text)); }
}  // namespace

void registry_detail::hand_to(const std::weak_ptr<peer_link>& weak, shared_message msg, metrics& m) {
  if (auto link = weak.lock()) {
    link->deliver(std::move(msg));
  } else {
    m.dropped(drop_reason::closed).Increment();
  }
}

void registry_detail::send_all(outbox& out, metrics& m) {
  for (auto& [weak, msg] : out) hand_to(weak, std::move(msg), m);
  out.clear();  // the last session reference may drop here, outside any lock
}

// ---- facade ----

local_room_registry::local_room_registry(net::any_io_executor timers, registry_limits limits, metrics& m)
    : metrics_(m), rooms_(std::move(timers), limits, m, closed_), lobby_(m) {}

protocol::result<join_granted> local_room_registry::join(join_request request) {
  if (closed_.load()) return failure{error_code::unavailable, "server is shutting down"};
  return request.mode == protocol::peer_mode::lobby ? lobby_.join(request) : rooms_.join(request);
}

void local_room_registry::leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) {
  if (lobby(self)) return lobby_.leave(self, kind);
  rooms_.leave(self, kind, std::move(unsent));
}

deliver_status local_room_registry::deliver(const peer_ref& from, std::string_view target,
                                            shared_message msg) {
  return lobby(from) ? lobby_.deliver(from, target, std::move(msg))
                     : rooms_.deliver(from, target, std::move(msg));
}

std::size_t local_room_registry::broadcast(const peer_ref& from, shared_message msg) {
  return lobby(from) ? 0 : rooms_.broadcast(from, std::move(msg));
}

void local_room_registry::hold_late(const peer_ref& self, shared_message msg) {
  if (lobby(self)) {
    metrics_.dropped(drop_reason::closed).Increment();  // nothing to resume into
    return;
  }
  rooms_.hold_late(self, std::move(msg));
}

// ---- rooms ----

room_table::room_table(net::any_io_executor timers, registry_limits limits, metrics& m,
                       const std::atomic<bool>& closed)
    : timers_(std::move(timers)), limits_(limits), metrics_(m), closed_(closed) {}

room_table::shard& room_table::shard_for(std::string_view room) {
  return shards_[std::hash<std::string_view>{}(room) % registry_detail::shard_count];
}

void room_table::hold_locked(member_state& m, shared_message msg) {
  if (auto dropped = m.held_messages.push(std::move(msg)).dropped)
    metrics_.dropped(drop_reason::held_overflow).Increment(static_cast<double>(dropped));
}

void room_table::enqueue_locked(member_state& m, const shared_message& msg, outbox& out) {
  if (m.held) {
    hold_locked(m, msg);
  } else {
    out.emplace_back(m.link, msg);
  }
}

protocol::result<join_granted> room_table::join(join_request& request) {
  auto& s = shard_for(request.room);
  outbox out;
  std::shared_ptr<peer_link> replaced;
  join_granted granted;
  {
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(request.room);
    std::shared_ptr<room_state> room = room_it == s.rooms.end() ? nullptr : room_it->second;
    if (room && request.id) {
      auto existing = find_member(room->members, *request.id);
      if (existing != room->members.end()) {
        if (!request.resume_token || !constant_time_equal(*request.resume_token, (*existing)->resume_token))
          return failure{error_code::id_taken, "peer id '" + *request.id + "' is taken in this room"};
        granted = resume_locked(*room, **existing, request, replaced);
        granted.self.room_handle = room;
        granted.self.place = *existing;
      }
    }
    if (!granted.resumed) {
      if (!room) {
        if (room_count_.fetch_add(1) >= limits_.max_rooms) {
          room_count_.fetch_sub(1);
          return failure{error_code::unavailable, "too many rooms on this server"};
        }
        room = std::make_shared<room_state>(s.mu, request.room);
        s.rooms.emplace(request.room, room);
        metrics_.rooms.Increment();
      }
      auto& members = room->members;
      if (members.size() >= limits_.max_peers_per_room) return failure{error_code::room_full, "room is full"};
      std::string id;
      if (request.id) {
        id = *request.id;
      } else {
        do {
          id = random_hex(generated_id_bytes);
        } while (find_member(members, id) != members.end());
      }
      granted.peers.reserve(members.size());
      for (auto& m : members) granted.peers.push_back(m->id);
      auto joined = notice(protocol::make_peer_joined(id));
      for (auto& m : members) enqueue_locked(*m, joined, out);
      auto m = std::make_shared<member_state>(
          id, request.link, next_epoch_.fetch_add(1),
          protocol::make_held_messages(limits_.held_max_messages, limits_.held_max_bytes));
      m->resume_token = random_hex(resume_token_bytes);
      members.push_back(m);
      granted.self = {request.mode, request.room, id, m->epoch, room, m};
      granted.resume_token = m->resume_token;
    }
  }
  if (replaced) replaced->replaced();
  registry_detail::send_all(out, metrics_);
  (granted.resumed ? metrics_.resumes : metrics_.joins).Increment();
  return granted;
}

join_granted room_table::resume_locked(room_state& room, member_state& m, const join_request& request,
                                       std::shared_ptr<peer_link>& replaced) {
  // The new connection takes the place; the others see nothing.
  join_granted granted;
  replaced = m.link.lock();
  m.link = request.link;
  m.held = false;
  m.epoch = next_epoch_.fetch_add(1);
  m.resume_token = random_hex(resume_token_bytes);
  auto held = m.held_messages.take();
  granted.held.assign(std::make_move_iterator(held.begin()), std::make_move_iterator(held.end()));
  granted.resumed = true;
  granted.self = {request.mode, request.room, m.id, m.epoch, nullptr, nullptr};
  granted.resume_token = m.resume_token;
  for (auto& other : room.members)
    if (other.get() != &m) granted.peers.push_back(other->id);
  return granted;
}

void room_table::remove_locked(const std::shared_ptr<room_state>& room, member_state& m, leave_reason reason,
                               bool notify, outbox& out) {
  auto& members = room->members;
  auto it = std::find_if(members.begin(), members.end(), [&](const auto& p) { return p.get() == &m; });
  if (it == members.end()) return;
  m.removed = true;
  m.link.reset();
  if (auto n = m.held_messages.size())
    metrics_.dropped(drop_reason::closed).Increment(static_cast<double>(n));
  m.held_messages.clear();
  auto keep = *it;  // `m` lives on until the erase is done
  members.erase(it);
  metrics_.leave(reason).Increment();
  if (members.empty()) {
    shard_for(room->name).rooms.erase(room->name);
    room_count_.fetch_sub(1);
    metrics_.rooms.Decrement();
    return;
  }
  if (notify) {
    auto left = notice(protocol::make_peer_left(m.id, reason));
    for (auto& other : members) enqueue_locked(*other, left, out);
  }
}

void room_table::leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) {
  if (!joined(self)) return;
  outbox out;
  bool start_timer = false;
  {
    std::lock_guard lock(self.room_handle->mu);
    auto& m = *self.place;
    if (m.removed) return;  // this place is gone; a new join of the id is someone else
    if (m.epoch != self.epoch) {
      // A resume replaced this connection: what it had not written goes to the new one.
      for (auto& msg : unsent) enqueue_locked(m, msg, out);
    } else if (kind == leave_kind::dropped && limits_.reconnect_grace.count() > 0 && notifying()) {
      m.held = true;
      m.link.reset();
      for (auto& msg : unsent) hold_locked(m, msg);
      start_timer = true;
    } else {
      remove_locked(self.room_handle, m, wire_reason(kind), kind != leave_kind::silent && notifying(), out);
    }
  }
  if (start_timer) start_grace_timer(self);
  registry_detail::send_all(out, metrics_);
}

void room_table::start_grace_timer(const peer_ref& self) {
  // The timer owns itself through its handler. It is never cancelled: a resume
  // changes the epoch, which makes expire() a no-op.
  auto timer = std::make_shared<net::steady_timer>(timers_, limits_.reconnect_grace);
  timer->async_wait([this, timer, self](boost::system::error_code ec) {
    if (!ec) expire(self);
  });
}

void room_table::expire(const peer_ref& self) {
  outbox out;
  {
    std::lock_guard lock(self.room_handle->mu);
    auto& m = *self.place;
    if (m.removed || m.epoch != self.epoch || !m.held) return;
    remove_locked(self.room_handle, m, leave_reason::timeout, notifying(), out);
  }
  registry_detail::send_all(out, metrics_);
}

deliver_status room_table::deliver(const peer_ref& from, std::string_view target, shared_message msg) {
  // The hot path: the sender's room through its handle, the target found in
  // it, the weak_ptr copied out, the post to the target's strand after the
  // lock is released.
  if (!joined(from)) return deliver_status::not_found;
  std::weak_ptr<peer_link> link;
  {
    std::lock_guard lock(from.room_handle->mu);
    const auto& sender = *from.place;
    if (sender.removed || sender.epoch != from.epoch) return deliver_status::not_found;
    auto& members = from.room_handle->members;
    auto it = find_member(members, target);
    if (it == members.end() || it->get() == &sender) return deliver_status::not_found;
    metrics_.relayed.Increment();
    if ((*it)->held) {
      hold_locked(**it, std::move(msg));
      return deliver_status::held;
    }
    link = (*it)->link;
  }
  registry_detail::hand_to(link, std::move(msg), metrics_);
  return deliver_status::delivered;
}

std::size_t room_table::broadcast(const peer_ref& from, shared_message msg) {
  if (!joined(from)) return 0;
  outbox out;
  std::size_t count = 0;
  {
    std::lock_guard lock(from.room_handle->mu);
    const auto& sender = *from.place;
    if (sender.removed || sender.epoch != from.epoch) return 0;
    for (auto& m : from.room_handle->members) {
      if (m.get() == &sender) continue;
      enqueue_locked(*m, msg, out);
      ++count;
    }
  }
  metrics_.relayed.Increment(static_cast<double>(count));
  registry_detail::send_all(out, metrics_);
  return count;
}

void room_table::hold_late(const peer_ref& self, shared_message msg) {
  if (!joined(self)) {
    metrics_.dropped(drop_reason::closed).Increment();
    return;
  }
  outbox out;
  {
    std::lock_guard lock(self.room_handle->mu);
    auto& m = *self.place;
    if (m.removed) {
      metrics_.dropped(drop_reason::closed).Increment();
      return;
    }
    enqueue_locked(m, msg, out);  // held queue, or the connection that resumed
  }
  registry_detail::send_all(out, metrics_);
}

// ---- lobby ----

lobby_table::shard& lobby_table::shard_for(std::string_view id) {
  return shards_[std::hash<std::string_view>{}(id) % registry_detail::shard_count];
}

protocol::result<join_granted> lobby_table::join(join_request& request) {
  auto& s = shard_for(*request.id);
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.peers.try_emplace(*request.id);
  if (!inserted) return failure{error_code::id_taken, "peer id '" + *request.id + "' is connected"};
  it->second = std::make_shared<member_state>(*request.id, request.link, next_epoch_.fetch_add(1),
                                              protocol::make_held_messages(0, 0));
  metrics_.joins.Increment();
  join_granted granted;
  granted.self = {request.mode, {}, *request.id, it->second->epoch, nullptr, it->second};
  return granted;
}

void lobby_table::leave(const peer_ref& self, leave_kind kind) {
  auto& s = shard_for(self.id);
  std::lock_guard lock(s.mu);
  auto it = s.peers.find(self.id);
  if (it == s.peers.end() || it->second != self.place) return;
  it->second->removed = true;
  s.peers.erase(it);
  metrics_.leave(kind == leave_kind::kicked ? leave_reason::kicked : leave_reason::closed).Increment();
}

deliver_status lobby_table::deliver(const peer_ref& from, std::string_view target, shared_message msg) {
  if (target == from.id) return deliver_status::not_found;
  std::weak_ptr<peer_link> link;
  {
    auto& s = shard_for(target);
    std::lock_guard lock(s.mu);
    auto it = s.peers.find(target);
    if (it == s.peers.end()) return deliver_status::not_found;
    link = it->second->link;
  }
  metrics_.relayed.Increment();
  registry_detail::hand_to(link, std::move(msg), metrics_);
  return deliver_status::delivered;
}

}  // namespace rendezvous::server
