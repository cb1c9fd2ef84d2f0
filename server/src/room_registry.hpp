#pragma once
// The narrow interface between sessions and rooms: join, leave, deliver, hold
// for resume. Sessions only talk to this interface, so a distributed registry
// (one room spanning several processes over a pub/sub backplane) can replace
// local_room_registry without touching them.
#include "peer_link.hpp"

#include <rendezvous/protocol/errors.hpp>
#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/result.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::server {

// The registry's own records (local_room_registry.hpp); sessions only hold
// them, so a delivery goes straight to the room and the sender's place.
struct room_state;
struct member_state;

// Identifies one membership: a peer id in a room (or in the lobby), at one
// connection epoch. A resume keeps the place and bumps the epoch, so calls
// made on behalf of a replaced connection are recognised; a new join of the
// same id is a new place, so the old one's calls never reach it.
struct peer_ref {
  protocol::peer_mode mode = protocol::peer_mode::room;
  std::string room;  // empty for the lobby
  std::string id;
  std::uint64_t epoch = 0;
  std::shared_ptr<room_state> room_handle;  // null in the lobby
  std::shared_ptr<member_state> place;
};

struct join_request {
  protocol::peer_mode mode = protocol::peer_mode::room;
  std::string room;                         // ignored in lobby mode
  std::optional<std::string> id;            // wanted id; the registry makes one if absent
  std::optional<std::string> resume_token;  // room mode only
  std::weak_ptr<peer_link> link;
};

struct join_granted {
  peer_ref self;
  std::vector<std::string> peers;  // others in the room, oldest first
  std::string resume_token;        // for the next resume (room mode)
  bool resumed = false;
  std::deque<shared_message> held;  // messages held while disconnected, oldest first
};

// How a connection ended, which decides what the others see. The one enum
// for it: logs print to_string(), the wire carries wire_reason().
enum class leave_kind {
  closed,   // the client sent a close frame: peer-left(closed) now
  dropped,  // lost without a close frame: place held for the reconnect grace
  kicked,   // the server threw it out (too big, rate limit): peer-left(kicked) now
  silent,   // server shutdown: leave without telling anyone
};

constexpr std::string_view to_string(leave_kind k) noexcept {
  switch (k) {
    case leave_kind::closed: return "closed";
    case leave_kind::dropped: return "dropped";
    case leave_kind::kicked: return "kicked";
    case leave_kind::silent: return "shutdown";
  }
  return "?";
}

// What peer-left says when a membership of this kind ends for good (a
// dropped one ends after its grace, hence timeout).
constexpr protocol::leave_reason wire_reason(leave_kind k) noexcept {
  switch (k) {
    case leave_kind::closed: return protocol::leave_reason::closed;
    case leave_kind::kicked: return protocol::leave_reason::kicked;
    case leave_kind::dropped:
    case leave_kind::silent: break;
  }
  return protocol::leave_reason::timeout;
}

enum class deliver_status { delivered, held, not_found };

using join_handler = std::function<void(protocol::result<join_granted>)>;

class room_registry {
 public:
  virtual ~room_registry() = default;

  // Admits a peer; failures carry id-taken, room-full or unavailable.
  virtual protocol::result<join_granted> join(join_request request) = 0;

  // The same, for a registry that has to ask elsewhere (the cluster asks
  // Redis): `done` runs once, on any thread, maybe before this returns. The
  // local registry answers at once.
  virtual void join_async(join_request request, join_handler done) { done(join(std::move(request))); }

  // Why the registry cannot admit peers now ("" when it can): /readyz.
  virtual std::string not_ready() const { return {}; }

  // Ends a membership. For `dropped`, `unsent` (messages the connection had
  // queued but not written) is kept in order for a resume.
  virtual void leave(const peer_ref& self, leave_kind kind, std::deque<shared_message> unsent = {}) = 0;

  // Sends `msg` (already rewritten with the sender's id) to `target` in the
  // sender's room. Held if the target is within its reconnect grace.
  virtual deliver_status deliver(const peer_ref& from, std::string_view target, shared_message msg) = 0;

  // Sends `msg` to every other peer of the sender's room; returns how many.
  virtual std::size_t broadcast(const peer_ref& from, shared_message msg) = 0;

  // A message that reached `self`'s connection after it dropped: keep it for
  // the resume if the membership is still held at that epoch.
  virtual void hold_late(const peer_ref& self, shared_message msg) = 0;

  // Stops accepting joins (drain); every later join is refused `unavailable`.
  virtual void close_joins() = 0;
};

}  // namespace rendezvous::server
