#include "local_room_registry.hpp"

#include "random_token.hpp"

#include <rendezvous/protocol/server_messages.hpp>

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
  return std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.id == id; });
}
}  // namespace

local_room_registry::local_room_registry(net::any_io_executor timers, registry_limits limits, metrics& m)
    : timers_(std::move(timers)), limits_(limits), metrics_(m) {}

local_room_registry::shard& local_room_registry::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % shard_count];
}

void local_room_registry::hold_locked(member& m, shared_message msg) {
  if (auto dropped = m.held_messages.push(std::move(msg)).dropped)
    metrics_.dropped(drop_reason::held_overflow).Increment(static_cast<double>(dropped));
}

void local_room_registry::enqueue_locked(member& m, const shared_message& msg, outbox& out) {
  if (m.held) {
    hold_locked(m, msg);
  } else {
    out.emplace_back(m.link, msg);
  }
}

void local_room_registry::send_all(outbox& out) {
  for (auto& [weak, msg] : out) {
    if (auto link = weak.lock()) {
      link->deliver(std::move(msg));
    } else {
      metrics_.dropped(drop_reason::closed).Increment();
    }
  }
  out.clear();  // the last session reference may drop here, outside any lock
}

protocol::result<join_granted> local_room_registry::join(join_request request) {
  if (closed_.load()) return failure{error_code::unavailable, "server is shutting down"};
  if (request.mode == protocol::peer_mode::lobby) return join_lobby(request);

  auto& s = shard_for(request.room);
  outbox out;
  std::shared_ptr<peer_link> replaced;
  join_granted granted;
  {
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(request.room);
    if (room_it != s.rooms.end() && request.id) {
      auto existing = find_member(room_it->second.members, *request.id);
      if (existing != room_it->second.members.end()) {
        if (!request.resume_token || !constant_time_equal(*request.resume_token, existing->resume_token)) {
          return failure{error_code::id_taken, "peer id '" + *request.id + "' is taken in this room"};
        }
        // Resume: the new connection takes the place; the others see nothing.
        replaced = existing->link.lock();
        existing->link = request.link;
        existing->held = false;
        existing->epoch = next_epoch_.fetch_add(1);
        existing->resume_token = random_hex(resume_token_bytes);
        auto held = existing->held_messages.take();
        granted.held.assign(std::make_move_iterator(held.begin()), std::make_move_iterator(held.end()));
        granted.resumed = true;
        granted.self = {request.mode, request.room, existing->id, existing->epoch};
        granted.resume_token = existing->resume_token;
        for (auto& m : room_it->second.members)
          if (m.id != existing->id) granted.peers.push_back(m.id);
      }
    }
    if (!granted.resumed) {
      if (room_it == s.rooms.end()) {
        if (room_count_.fetch_add(1) >= limits_.max_rooms) {
          room_count_.fetch_sub(1);
          return failure{error_code::unavailable, "too many rooms on this server"};
        }
        room_it = s.rooms.emplace(request.room, room{}).first;
        metrics_.rooms.Increment();
      }
      auto& members = room_it->second.members;
      if (members.size() >= limits_.max_peers_per_room) {
        return failure{error_code::room_full, "room is full"};
      }
      std::string id;
      if (request.id) {
        id = *request.id;
      } else {
        do {
          id = random_hex(generated_id_bytes);
        } while (find_member(members, id) != members.end());
      }
      for (auto& m : members) granted.peers.push_back(m.id);
      auto notice = std::make_shared<const std::string>(protocol::make_peer_joined(id));
      for (auto& m : members) enqueue_locked(m, notice, out);
      members.push_back(member{id, request.link, next_epoch_.fetch_add(1), random_hex(resume_token_bytes),
                               false,
                               protocol::make_held_messages(limits_.held_max_messages, limits_.held_max_bytes)});
      granted.self = {request.mode, request.room, id, members.back().epoch};
      granted.resume_token = members.back().resume_token;
    }
  }
  if (replaced) replaced->replaced();
  send_all(out);
  (granted.resumed ? metrics_.resumes : metrics_.joins).Increment();
  return granted;
}

protocol::result<join_granted> local_room_registry::join_lobby(join_request& request) {
  auto& s = shard_for(*request.id);
  std::lock_guard lock(s.mu);
  auto [it, inserted] =
      s.lobby.try_emplace(*request.id, lobby_member{request.link, next_epoch_.fetch_add(1)});
  if (!inserted) return failure{error_code::id_taken, "peer id '" + *request.id + "' is connected"};
  metrics_.joins.Increment();
  join_granted granted;
  granted.self = {request.mode, {}, *request.id, it->second.epoch};
  return granted;
}

void local_room_registry::remove_locked(shard& s, name_map<room>::iterator room_it,
                                        std::vector<member>::iterator member_it, leave_reason reason,
                                        bool notify, outbox& out) {
  auto& members = room_it->second.members;
  auto notice =
      notify ? std::make_shared<const std::string>(protocol::make_peer_left(member_it->id, reason)) : nullptr;
  members.erase(member_it);
  metrics_.leave(reason).Increment();
  if (members.empty()) {
    s.rooms.erase(room_it);
    room_count_.fetch_sub(1);
    metrics_.rooms.Decrement();
    return;
  }
  if (notice)
    for (auto& m : members) enqueue_locked(m, notice, out);
}

void local_room_registry::leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent) {
  if (self.mode == protocol::peer_mode::lobby) {
    auto& s = shard_for(self.id);
    std::lock_guard lock(s.mu);
    auto it = s.lobby.find(self.id);
    if (it != s.lobby.end() && it->second.epoch == self.epoch) {
      s.lobby.erase(it);
      metrics_.leave(kind == leave_kind::kicked ? leave_reason::kicked : leave_reason::closed).Increment();
    }
    return;
  }
  auto& s = shard_for(self.room);
  outbox out;
  bool start_timer = false;
  {
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(self.room);
    if (room_it == s.rooms.end()) return;
    auto& members = room_it->second.members;
    auto it = find_member(members, self.id);
    if (it == members.end()) return;
    if (it->epoch != self.epoch) {
      // A resume replaced this connection: what it had not written yet goes to the new one.
      for (auto& msg : unsent) enqueue_locked(*it, msg, out);
    } else if (kind == leave_kind::dropped && limits_.reconnect_grace.count() > 0 && !closed_.load()) {
      it->held = true;
      it->link.reset();
      for (auto& msg : unsent) enqueue_locked(*it, msg, out);
      start_timer = true;
    } else {
      auto reason = kind == leave_kind::closed   ? leave_reason::closed
                    : kind == leave_kind::kicked ? leave_reason::kicked
                                                 : leave_reason::timeout;
      remove_locked(s, room_it, it, reason, kind != leave_kind::silent && !closed_.load(), out);
    }
  }
  if (start_timer) start_grace_timer(self);
  send_all(out);
}

void local_room_registry::start_grace_timer(const peer_ref& self) {
  // The timer owns itself through its handler. It is never cancelled: a resume
  // changes the epoch, which makes expire() a no-op.
  auto timer = std::make_shared<net::steady_timer>(timers_, limits_.reconnect_grace);
  timer->async_wait([this, timer, self](boost::system::error_code ec) {
    if (!ec) expire(self);
  });
}

void local_room_registry::expire(const peer_ref& self) {
  auto& s = shard_for(self.room);
  outbox out;
  {
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(self.room);
    if (room_it == s.rooms.end()) return;
    auto it = find_member(room_it->second.members, self.id);
    if (it == room_it->second.members.end() || it->epoch != self.epoch || !it->held) return;
    if (auto n = it->held_messages.size())
      metrics_.dropped(drop_reason::closed).Increment(static_cast<double>(n));
    remove_locked(s, room_it, it, leave_reason::timeout, !closed_.load(), out);
  }
  send_all(out);
}

deliver_status local_room_registry::deliver(const peer_ref& from, std::string_view target,
                                            shared_message msg) {
  // The hot path: one lookup under the lock, the weak_ptr copied out, the
  // post to the target's strand after the lock is released.
  std::weak_ptr<peer_link> link;
  if (from.mode == protocol::peer_mode::lobby) {
    auto& s = shard_for(target);
    std::lock_guard lock(s.mu);
    auto it = s.lobby.find(target);
    if (it == s.lobby.end() || target == from.id) return deliver_status::not_found;
    link = it->second.link;
  } else {
    auto& s = shard_for(from.room);
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(from.room);
    if (room_it == s.rooms.end()) return deliver_status::not_found;
    auto& members = room_it->second.members;
    auto sender = find_member(members, from.id);
    if (sender == members.end() || sender->epoch != from.epoch) return deliver_status::not_found;
    auto it = find_member(members, target);
    if (it == members.end() || it == sender) return deliver_status::not_found;
    metrics_.relayed.Increment();
    if (it->held) {
      hold_locked(*it, std::move(msg));
      return deliver_status::held;
    }
    link = it->link;
  }
  if (from.mode == protocol::peer_mode::lobby) metrics_.relayed.Increment();
  if (auto l = link.lock()) {
    l->deliver(std::move(msg));
  } else {
    metrics_.dropped(drop_reason::closed).Increment();
  }
  return deliver_status::delivered;
}

std::size_t local_room_registry::broadcast(const peer_ref& from, shared_message msg) {
  if (from.mode == protocol::peer_mode::lobby) return 0;
  outbox out;
  std::size_t count = 0;
  {
    auto& s = shard_for(from.room);
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(from.room);
    if (room_it == s.rooms.end()) return 0;
    auto& members = room_it->second.members;
    auto sender = find_member(members, from.id);
    if (sender == members.end() || sender->epoch != from.epoch) return 0;
    for (auto& m : members) {
      if (&m == &*sender) continue;
      enqueue_locked(m, msg, out);
      ++count;
    }
  }
  metrics_.relayed.Increment(static_cast<double>(count));
  send_all(out);
  return count;
}

void local_room_registry::hold_late(const peer_ref& self, shared_message msg) {
  if (self.mode == protocol::peer_mode::lobby) {
    metrics_.dropped(drop_reason::closed).Increment();
    return;
  }
  auto& s = shard_for(self.room);
  outbox out;
  {
    std::lock_guard lock(s.mu);
    auto room_it = s.rooms.find(self.room);
    auto it = room_it == s.rooms.end() ? decltype(room_it->second.members.begin()){}
                                       : find_member(room_it->second.members, self.id);
    if (room_it == s.rooms.end() || it == room_it->second.members.end()) {
      metrics_.dropped(drop_reason::closed).Increment();
      return;
    }
    enqueue_locked(*it, msg, out);  // held queue, or the connection that resumed
  }
  send_all(out);
}

}  // namespace rendezvous::server
