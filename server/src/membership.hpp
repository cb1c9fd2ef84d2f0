#pragma once
// A connection's place on the server, as one object: the connection slot it
// holds against max_connections, the peer it is in the registry, and how it
// left. It leaves the registry exactly once: explicitly with a reason, or in
// its destructor as a drop (a session that vanished without closing).
//
// Threading: used on its session's strand only.
#include "room_registry.hpp"
#include "server_state.hpp"

#include <deque>
#include <optional>
#include <utility>

namespace rendezvous::server {

class membership {
 public:
  explicit membership(server_state& state) noexcept : state_(state) {}
  membership(const membership&) = delete;
  membership& operator=(const membership&) = delete;
  ~membership() { release(); }

  // What the destructor does, for an owner that must be done with the
  // registry and the slot before it goes on (idempotent).
  void release() noexcept {
    leave(leave_kind::dropped);
    if (std::exchange(slot_, false)) state_.remove_connection();
  }

  // Takes a max_connections slot; false when the server is full.
  bool take_slot() noexcept { return slot_ = state_.try_add_connection(); }

  // The registry admitted this connection as `self`.
  void enter(peer_ref self) {
    self_ = std::move(self);
    gauge().Increment();
  }

  // Leaves the registry, the first time only (`unsent`: what the connection
  // had queued and not written, held for a resume when `how` is dropped).
  // Returns whether this call left.
  bool leave(leave_kind how, std::deque<shared_message> unsent = {}) {
    if (exit_) return false;
    exit_ = how;
    if (!self_) return false;
    state_.registry().leave(*self_, how, std::move(unsent));
    gauge().Decrement();
    return true;
  }

  // Joined and not yet left.
  bool active() const noexcept { return self_ && !exit_; }
  // The peer, once admitted (it stays known after leaving, for late deliveries).
  const peer_ref* self() const noexcept { return self_ ? &*self_ : nullptr; }
  std::optional<leave_kind> exit() const noexcept { return exit_; }

 private:
  prometheus::Gauge& gauge() noexcept {
    auto& stats = state_.stats();
    return self_->mode == protocol::peer_mode::room ? stats.connections_room : stats.connections_lobby;
  }

  server_state& state_;
  bool slot_ = false;
  std::optional<peer_ref> self_;
  std::optional<leave_kind> exit_;
};

}  // namespace rendezvous::server
