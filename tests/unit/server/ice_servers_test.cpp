#include "ice_servers.hpp"

#include <doctest/doctest.h>

using namespace rendezvous::server;

TEST_CASE("coturn REST credential: base64(HMAC-SHA1(secret, username))") {
  // Reference value from: printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64
  CHECK(turn_credential("secret", "1700000000:alice") == "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
}

TEST_CASE("iceServers: STUN entry, then TURN with ephemeral credentials") {
  ice_settings s;
  CHECK(make_ice_servers(s, "p", 100) == nlohmann::json::array());
  s.stun_uris = {"stun:a:3478"};
  auto only_stun = make_ice_servers(s, "p", 100);
  REQUIRE(only_stun.size() == 1);
  CHECK(only_stun[0] == nlohmann::json{{"urls", {"stun:a:3478"}}});
  s.turn_uris = {"turn:t:3478?transport=udp"};
  CHECK(make_ice_servers(s, "p", 100).size() == 1);  // no secret: no TURN entry
  s.turn_secret = "secret";
  s.turn_ttl_s = 600;
  auto both = make_ice_servers(s, "alice", 1'700'000'000 - 600);
  REQUIRE(both.size() == 2);
  CHECK(both[1]["urls"] == nlohmann::json{"turn:t:3478?transport=udp"});
  CHECK(both[1]["username"] == "1700000000:alice");
  CHECK(both[1]["credential"] == "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
}
