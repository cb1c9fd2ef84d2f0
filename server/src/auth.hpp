#pragma once
// Join authorization (docs/protocol.md, "Security"): JWT HS256 tokens checked with
// libjwt. Claims: `exp` (required), `nbf` (optional), `room` (a room name or
// "*"), `sub` (optional: then the only peer id the token admits).
#include <rendezvous/protocol/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rendezvous::server {

struct token_grant {
  std::string room;                // "*" admits any room (and the lobby)
  std::optional<std::string> sub;  // the only peer id admitted, if set
};

// Verifies signature (HS256 only; "none" and every other alg refused), expiry
// and not-before against `now_s` (unix seconds). Failures are `unauthorized`.
protocol::result<token_grant> verify_token(std::string_view token, std::string_view secret,
                                           std::int64_t now_s);

// Whether `grant` admits peer `peer_id` (may be empty: server-assigned) into
// `room` (empty: the lobby). Refusals are `forbidden`.
std::optional<protocol::failure> check_grant(const token_grant& grant, std::string_view room,
                                             std::string_view peer_id);

// Signs a token for `room` (and `sub`, if non-empty) valid for ttl_s seconds
// from now_s. Used by `rendezvous-server token` and tests.
std::string make_token(std::string_view secret, std::string_view room, std::string_view sub,
                       std::int64_t now_s, std::int64_t ttl_s);

// The token of an upgrade: the `token` query parameter, else
// `Authorization: Bearer <token>` (one or more spaces, then a token without
// whitespace; anything else is no token).
std::optional<std::string> token_from(std::optional<std::string_view> query_token,
                                      std::string_view authorization);

}  // namespace rendezvous::server
