#pragma once
// What the room registry knows of a connected peer: a thread-safe way to hand
// it a message. websocket_session implements it; the registry only ever holds
// weak_ptrs, so it never keeps a session alive.
#include <memory>
#include <string>

namespace rendezvous::server {

using shared_message = std::shared_ptr<const std::string>;

class peer_link {
 public:
  virtual ~peer_link() = default;

  // Queues `msg` for the peer. Callable from any thread; posts to the peer's
  // strand and never blocks.
  virtual void deliver(shared_message msg) = 0;

  // A resume took this peer's place: close the connection (4409) without
  // leaving the room. Callable from any thread.
  virtual void replaced() = 0;
};

}  // namespace rendezvous::server
