#include "auth.hpp"

#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

extern "C" {
#include <jwt.h>
}

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace rendezvous::server {

using protocol::error_code;
using protocol::failure;

namespace {
struct jwt_deleter {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_deleter>;

struct str_deleter {
  void operator()(char* s) const noexcept { free(s); }  // libjwt 1.10 strings are malloc()ed
};
using jwt_str = std::unique_ptr<char, str_deleter>;

failure unauthorized(std::string message) { return failure{error_code::unauthorized, std::move(message)}; }
}  // namespace

protocol::result<token_grant> verify_token(std::string_view token, std::string_view secret,
                                           std::int64_t now_s) {
  if (token.empty()) return unauthorized("a token is required");
  if (secret.empty()) return unauthorized("auth is not configured");
  // libjwt reads a C string: "<token>%00<anything>" must not pass as <token>.
  if (token.find('\0') != std::string_view::npos) return unauthorized("invalid token");
  jwt_t* raw = nullptr;
  std::string text(token);
  int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(secret.data()),
                      static_cast<int>(secret.size()));
  jwt_ptr jwt(raw);
  if (rc != 0 || !jwt) return unauthorized("invalid token");
  // libjwt verifies whatever alg the header names; only HS256 is ours.
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return unauthorized("token algorithm must be HS256");

  jwt_str grants_text(jwt_get_grants_json(jwt.get(), nullptr));
  if (!grants_text) return unauthorized("token has no claims");
  auto claims = nlohmann::json::parse(grants_text.get(), nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return unauthorized("token claims are not an object");

  auto exp = claims.find("exp");
  if (exp == claims.end() || !exp->is_number()) return unauthorized("token has no exp claim");
  if (exp->get<double>() <= static_cast<double>(now_s)) return unauthorized("token expired");
  if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!nbf->is_number()) return unauthorized("token nbf claim is not a number");
    if (nbf->get<double>() > static_cast<double>(now_s)) return unauthorized("token not valid yet");
  }
  token_grant grant;
  auto room = claims.find("room");
  if (room == claims.end() || !room->is_string()) return unauthorized("token has no room claim");
  grant.room = room->get<std::string>();
  if (auto sub = claims.find("sub"); sub != claims.end()) {
    if (!sub->is_string()) return unauthorized("token sub claim is not a string");
    grant.sub = sub->get<std::string>();
  }
  return grant;
}

std::optional<failure> check_grant(const token_grant& grant, std::string_view room,
                                   std::string_view peer_id) {
  // Room names are never empty, so an empty `room` is the lobby: only "*" opens it.
  if (grant.room != "*" && (room.empty() || grant.room != room))
    return failure{error_code::forbidden, "token does not admit this room"};
  if (grant.sub && *grant.sub != peer_id)
    return failure{error_code::forbidden, "token does not admit this peer id"};
  return std::nullopt;
}

std::string make_token(std::string_view secret, std::string_view room, std::string_view sub,
                       std::int64_t now_s, std::int64_t ttl_s) {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return {};
  jwt_ptr jwt(raw);
  std::string room_s(room), sub_s(sub);
  jwt_add_grant(jwt.get(), "room", room_s.c_str());
  if (!sub_s.empty()) jwt_add_grant(jwt.get(), "sub", sub_s.c_str());
  jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now_s));
  jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now_s + ttl_s));
  if (jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                  static_cast<int>(secret.size())) != 0)
    return {};
  jwt_str out(jwt_encode_str(jwt.get()));
  return out ? std::string(out.get()) : std::string{};
}

std::optional<std::string> token_from(std::optional<std::string_view> query_token,
                                      std::string_view authorization) {
  if (query_token && !query_token->empty()) return std::string(*query_token);
  // RFC 6750: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110).
  constexpr std::string_view bearer = "Bearer ";
  if (authorization.size() <= bearer.size() ||
      !boost::beast::iequals(authorization.substr(0, bearer.size()), bearer))
    return std::nullopt;
  auto token = authorization.substr(bearer.size());
  token.remove_prefix(std::min(token.find_first_not_of(' '), token.size()));
  if (token.empty() || token.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return std::string(token);
}

}  // namespace rendezvous::server
