#include "upgrade_request.hpp"

#include "auth.hpp"

#include <rendezvous/protocol/names.hpp>

#include <boost/beast/core/string.hpp>

#include <algorithm>

namespace rendezvous::server {

using protocol::error_code;
using protocol::failure;

bool origin_allowed(std::span<const std::string> allowed_origins, std::string_view origin) {
  if (allowed_origins.empty() || origin.empty()) return true;
  return std::any_of(allowed_origins.begin(), allowed_origins.end(),
                     [&](const std::string& o) { return boost::beast::iequals(o, origin); });
}

protocol::result<join_request> decide_join(const protocol::endpoint& target, std::string_view origin,
                                           std::string_view authorization, const join_policy& policy,
                                           std::int64_t now_s) {
  join_request request;
  if (target.kind == protocol::endpoint_kind::room) {
    request.mode = protocol::peer_mode::room;
    if (!protocol::is_valid_name(target.name))
      return failure{error_code::bad_request, "invalid room name: use 1-64 characters of A-Za-z0-9._~-"};
    request.room = target.name;
    if (auto peer = target.param("peer")) {
      if (!protocol::is_valid_name(*peer))
        return failure{error_code::bad_request, "invalid peer id: use 1-64 characters of A-Za-z0-9._~-"};
      request.id = std::string(*peer);
    }
    if (auto token = target.param("resume")) request.resume_token = std::string(*token);
  } else {
    request.mode = protocol::peer_mode::lobby;
    if (!protocol::is_valid_name(target.name))
      return failure{error_code::bad_request, "invalid peer id: use 1-64 characters of A-Za-z0-9._~-"};
    request.id = target.name;
  }

  if (!origin_allowed(policy.allowed_origins, origin))
    return failure{error_code::forbidden, "origin not allowed: " + std::string(origin)};
  if (!policy.auth_secret.empty()) {
    auto token = token_from(target.param("token"), authorization);
    if (!token) return failure{error_code::unauthorized, "a token is required"};
    auto grant = verify_token(*token, policy.auth_secret, now_s);
    if (!grant) return grant.error();
    if (!request.id && grant->sub) {
      if (!protocol::is_valid_name(*grant->sub))
        return failure{error_code::bad_request, "token sub is not a valid peer id"};
      request.id = *grant->sub;  // the token names the peer
    }
    if (auto denied = check_grant(grant.value(), request.room, request.id.value_or(""))) return *denied;
  }
  return request;
}

}  // namespace rendezvous::server
