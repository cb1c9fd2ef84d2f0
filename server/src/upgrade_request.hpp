#pragma once
// What the server decides about a WebSocket join from the upgrade request
// alone, before the registry sees it (docs/protocol.md: "Endpoints", "Names",
// "Security"): the
// names in the target, the Origin allowlist and the token. Pure (no I/O), so
// tests/fuzz/http_fuzz.cpp runs the very code websocket_session runs.
#include "room_registry.hpp"

#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/result.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace rendezvous::server {

// The settings a join decision depends on (both are in session_settings).
struct join_policy {
  std::string_view auth_secret;                  // JWT HS256 secret; empty: no token needed
  std::span<const std::string> allowed_origins;  // empty: every origin
};

// Whether a request with this Origin header (empty: none) may join. Only
// browsers send Origin; other clients are not subject to the allowlist.
bool origin_allowed(std::span<const std::string> allowed_origins, std::string_view origin);

// The join that an upgrade to `target` (a room or lobby endpoint) asks for,
// given its Origin and Authorization headers (empty: absent), or why it is
// refused: bad-request for an invalid room name or peer id, forbidden for the
// origin, and when auth is on unauthorized/forbidden for the token, checked
// against `now_s` (unix seconds). The result's `link` is left empty.
protocol::result<join_request> decide_join(const protocol::endpoint& target, std::string_view origin,
                                           std::string_view authorization, const join_policy& policy,
                                           std::int64_t now_s);

}  // namespace rendezvous::server
