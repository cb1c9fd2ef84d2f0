#pragma once
// Admission: what a WebSocket upgrade becomes, decided once, before the 101
// goes out. From the request and the settings it makes either a refusal
// (code and message, sent after the upgrade) or a membership in the registry
// with the first messages the connection sends (room mode: the welcome, then
// what was held for a resume, in order; lobby mode: none). No sockets, so it
// is unit-tested with a real registry and a fake link.
#include "room_registry.hpp"
#include "server_state.hpp"

#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rendezvous::server {

struct admission_request {
  protocol::endpoint target;  // a room or lobby endpoint
  std::string origin;         // Origin header; empty: none
  std::string authorization;  // Authorization header; empty: none
  std::weak_ptr<peer_link> link;
  std::int64_t now_s = 0;  // unix seconds, for token expiry and TURN credentials
};

struct admission {
  peer_ref self;
  bool resumed = false;
  std::vector<shared_message> first;  // to send before anything else
};

// Joins the registry (which delivers peer-joined to the others), or says why not.
protocol::result<admission> admit(admission_request request, const session_settings& settings,
                                  room_registry& registry);

// The same through registry.join_async: `done` runs once, on any thread
// (for the local registry, before this returns).
using admission_handler = std::function<void(protocol::result<admission>)>;
void admit_async(admission_request request, const session_settings& settings, room_registry& registry,
                 admission_handler done);

}  // namespace rendezvous::server
