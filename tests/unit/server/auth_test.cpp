#include "auth.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

using namespace rendezvous::server;
using rendezvous::protocol::error_code;

namespace {
constexpr std::int64_t now = 1'800'000'000;
const std::string secret = "s3cret-for-tests";

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

// A token built by hand (not by make_token), so the tests do not trust the
// code they check: header and claims as given, signed with HMAC-SHA256.
std::string hand_token(const std::string& header, const std::string& claims, const std::string& key) {
  std::string signing_input = b64url(header) + "." + b64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &len);
  return signing_input + "." + b64url(std::string(reinterpret_cast<char*>(mac), len));
}

std::string claims(const std::string& extra) {
  return R"({"exp":)" + std::to_string(now + 60) + (extra.empty() ? "" : "," + extra) + "}";
}
const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";
}  // namespace

TEST_CASE("a valid HS256 token grants its room and sub") {
  auto grant = verify_token(hand_token(hs256, claims(R"("room":"r1","sub":"alice")"), secret), secret, now);
  REQUIRE(grant.ok());
  CHECK(grant->room == "r1");
  REQUIRE(grant->sub);
  CHECK(*grant->sub == "alice");
  CHECK_FALSE(check_grant(grant.value(), "r1", "alice"));
  auto wrong_room = check_grant(grant.value(), "r2", "alice");
  REQUIRE(wrong_room);
  CHECK(wrong_room->code == error_code::forbidden);
  auto wrong_peer = check_grant(grant.value(), "r1", "bob");
  REQUIRE(wrong_peer);
  CHECK(wrong_peer->code == error_code::forbidden);
}

TEST_CASE("room * admits every room and the lobby; no sub admits every id") {
  auto grant = verify_token(hand_token(hs256, claims(R"("room":"*")"), secret), secret, now);
  REQUIRE(grant.ok());
  CHECK_FALSE(check_grant(grant.value(), "anything", "x"));
  CHECK_FALSE(check_grant(grant.value(), "", "lobby-id"));
  auto named = verify_token(hand_token(hs256, claims(R"("room":"r1")"), secret), secret, now);
  REQUIRE(named.ok());
  CHECK(check_grant(named.value(), "", "lobby-id"));  // a named room does not open the lobby
  auto empty_room = verify_token(hand_token(hs256, claims(R"("room":"")"), secret), secret, now);
  REQUIRE(empty_room.ok());
  CHECK(check_grant(empty_room.value(), "", "lobby-id"));  // nor does an empty room claim
}

TEST_CASE("every refusal of verify_token is unauthorized") {
  auto refused = [](const std::string& token, std::int64_t at = now) {
    auto r = verify_token(token, secret, at);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == error_code::unauthorized);
    return r.error().message;
  };
  CHECK(refused("") == "a token is required");
  refused("not.a.jwt");
  refused("garbage");
  // bad signature: signed with another key
  refused(hand_token(hs256, claims(R"("room":"r1")"), "other-secret"));
  // tampered claims keep the old signature
  auto good = hand_token(hs256, claims(R"("room":"r1")"), secret);
  auto dot1 = good.find('.');
  auto dot2 = good.find('.', dot1 + 1);
  refused(good.substr(0, dot1 + 1) + b64url(claims(R"("room":"*")")) + good.substr(dot2));
  // expired, and exactly at exp
  refused(hand_token(hs256, R"({"exp":)" + std::to_string(now - 1) + R"(,"room":"r1"})", secret));
  refused(hand_token(hs256, R"({"exp":)" + std::to_string(now) + R"(,"room":"r1"})", secret));
  // missing or non-numeric exp
  refused(hand_token(hs256, R"({"room":"r1"})", secret));
  refused(hand_token(hs256, R"({"exp":"soon","room":"r1"})", secret));
  // not valid yet
  refused(hand_token(hs256, claims(R"("room":"r1","nbf":)" + std::to_string(now + 30)), secret));
  // missing room, non-string sub
  refused(hand_token(hs256, claims(""), secret));
  refused(hand_token(hs256, claims(R"("room":"r1","sub":7)"), secret));
  // alg none, unsigned
  refused(b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(claims(R"("room":"r1")")) + ".");
  // another HMAC alg signed with the same secret is still refused
  {
    std::string header = R"({"alg":"HS512","typ":"JWT"})";
    std::string input = b64url(header) + "." + b64url(claims(R"("room":"r1")"));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha512(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    refused(input + "." + b64url(std::string(reinterpret_cast<char*>(mac), len)));
  }
}

TEST_CASE("nbf in the past is fine") {
  auto grant = verify_token(
      hand_token(hs256, claims(R"("room":"r1","nbf":)" + std::to_string(now - 5)), secret), secret, now);
  CHECK(grant.ok());
}

TEST_CASE("make_token round-trips through verify_token") {
  auto token = make_token(secret, "room-a", "peer-1", now, 120);
  auto grant = verify_token(token, secret, now + 119);
  REQUIRE(grant.ok());
  CHECK(grant->room == "room-a");
  CHECK(grant->sub.value_or("") == "peer-1");
  CHECK_FALSE(verify_token(token, secret, now + 120).ok());
  auto no_sub = verify_token(make_token(secret, "*", "", now, 60), secret, now);
  REQUIRE(no_sub.ok());
  CHECK_FALSE(no_sub->sub);
}

TEST_CASE("token_from: query parameter first, then Authorization: Bearer") {
  CHECK(token_from(std::string_view("q"), "Bearer h").value() == "q");
  CHECK(token_from(std::nullopt, "Bearer h").value() == "h");
  CHECK(token_from(std::nullopt, "bearer h").value() == "h");
  CHECK_FALSE(token_from(std::nullopt, "Basic abc"));
  CHECK_FALSE(token_from(std::nullopt, ""));
  CHECK_FALSE(token_from(std::string_view(""), "Bearer "));
  // RFC 6750 allows several spaces after the scheme; a token has no whitespace.
  CHECK(token_from(std::nullopt, "Bearer   h").value() == "h");
  CHECK_FALSE(token_from(std::nullopt, "Bearer a b"));
  CHECK_FALSE(token_from(std::nullopt, "Bearer a\tb"));
  CHECK_FALSE(token_from(std::nullopt, "Bearer    "));
}

TEST_CASE("verify_token: a valid token followed by a NUL and more is not that token") {
  const std::string secret = "nul-secret";
  const std::int64_t now = 1'800'000'000;
  auto token = make_token(secret, "r1", "", now, 60);
  REQUIRE(verify_token(token, secret, now).ok());
  auto with_nul = token + std::string("\0garbage", 8);
  auto refused = verify_token(with_nul, secret, now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == rendezvous::protocol::error_code::unauthorized);
}
