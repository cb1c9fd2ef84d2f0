#include "logging.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace rendezvous::server;

namespace {
// The tests write fields as braced lists, like the call sites of log_event.
std::string event_text(std::string_view event, std::initializer_list<log_field> fields) {
  return rendezvous::server::event_text(event, {fields.begin(), fields.size()});
}
std::string event_json_members(std::string_view event, std::initializer_list<log_field> fields) {
  return rendezvous::server::event_json_members(event, {fields.begin(), fields.size()});
}
}  // namespace

TEST_CASE("event_text: key=value, quoted only when needed") {
  std::string reason = "token expired";
  CHECK(event_text("join", {{"room", "r1"}, {"peer", std::string("alice")}, {"resumed", false}, {"n", 42}}) ==
        "join room=r1 peer=alice resumed=false n=42");
  CHECK(event_text("refuse", {{"code", "unauthorized"}, {"reason", reason}}) ==
        R"(refuse code=unauthorized reason="token expired")");
  CHECK(event_text("x", {{"empty", ""}}) == R"(x empty="")");
  CHECK(event_text("x", {{"q", R"(a"b\c)"}}) == R"(x q="a\"b\\c")");
  // A newline cannot start a forged log line.
  CHECK(event_text("x", {{"v", "a\nb"}}) == R"(x v="a\x0ab")");
  CHECK(event_text("leave", {}) == "leave");
}

TEST_CASE("event_json_members: every field a key with its JSON type, strings escaped") {
  std::size_t queued = 7;
  auto members = event_json_members(
      "slow-consumer", {{"room", "r\"1"}, {"queued", queued}, {"resumed", true}, {"remote", "[::1]:5"}});
  auto obj = nlohmann::json::parse("{\"msg\":\"m\"" + members + "}");
  CHECK(obj["event"] == "slow-consumer");
  CHECK(obj["room"] == "r\"1");
  CHECK(obj["queued"] == 7);
  CHECK(obj["resumed"] == true);
  CHECK(obj["remote"] == "[::1]:5");
  // Control characters and quotes in values cannot break out of the string.
  auto hostile = event_json_members("e", {{"v", "\",\"level\":\"x\n\x01"}});
  auto parsed = nlohmann::json::parse("{" + hostile.substr(1) + "}");
  CHECK(parsed.size() == 2);
  CHECK(parsed["v"] == "\",\"level\":\"x\n\x01");
}
