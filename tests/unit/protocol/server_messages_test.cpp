#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/server_messages.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace rendezvous::protocol;
using nlohmann::json;

TEST_CASE("welcome: exact bytes, key order type,id,room,peers,resume,iceServers") {
  welcome_info info;
  info.id = "alice";
  info.room = "lobby-1";
  info.peers = {"bob", "carol"};
  info.resume_token = "tok.abc";
  info.ice_servers = json::array({{{"urls", json::array({"stun:stun.l.google.com:19302"})}}});
  CHECK(make_welcome(info) ==
        R"({"type":"welcome","id":"alice","room":"lobby-1","peers":["bob","carol"],"resume":"tok.abc",)"
        R"("iceServers":[{"urls":["stun:stun.l.google.com:19302"]}]})");

  info.resumed = true;
  CHECK(make_welcome(info) ==
        R"({"type":"welcome","id":"alice","room":"lobby-1","peers":["bob","carol"],"resume":"tok.abc",)"
        R"("iceServers":[{"urls":["stun:stun.l.google.com:19302"]}],"resumed":true})");
}

TEST_CASE("welcome with nobody else and no ICE servers") {
  welcome_info info;
  info.id = "a";
  info.room = "r";
  info.resume_token = "t";
  CHECK(make_welcome(info) ==
        R"({"type":"welcome","id":"a","room":"r","peers":[],"resume":"t","iceServers":[]})");
}

TEST_CASE("welcome carries TURN credentials as given") {
  welcome_info info;
  info.id = "a";
  info.room = "r";
  info.resume_token = "t";
  info.ice_servers = json::parse(
      R"([{"urls":["turn:turn.example.org:3478?transport=udp"],"username":"1700000000:a","credential":"c2VjcmV0"}])");
  const auto j = json::parse(make_welcome(info));
  CHECK(j["iceServers"] == info.ice_servers);
  CHECK_FALSE(j.contains("resumed"));
  // The welcome is a reserved type, so a client could never forge one.
  CHECK(is_reserved_type(j["type"].get<std::string>()));
}

TEST_CASE("peer-joined and peer-left") {
  CHECK(make_peer_joined("bob") == R"({"type":"peer-joined","id":"bob"})");
  CHECK(make_peer_left("bob", leave_reason::closed) ==
        R"({"type":"peer-left","id":"bob","reason":"closed"})");
  CHECK(make_peer_left("bob", leave_reason::timeout) ==
        R"({"type":"peer-left","id":"bob","reason":"timeout"})");
  CHECK(make_peer_left("bob", leave_reason::kicked) ==
        R"({"type":"peer-left","id":"bob","reason":"kicked"})");
}

TEST_CASE("error messages for every code") {
  for (int i = 0; i < error_code_count; ++i) {
    const auto code = static_cast<error_code>(i);
    CAPTURE(to_string(code));
    const std::string text = make_error(code, "human text");
    CHECK(text ==
          R"({"type":"error","code":")" + std::string(to_string(code)) + R"(","message":"human text"})");
    const auto j = json::parse(text);
    CHECK_FALSE(j.contains("id"));
  }
  CHECK(make_error(error_code::peer_not_found, "no such peer", "bob") ==
        R"({"type":"error","code":"peer-not-found","message":"no such peer","id":"bob"})");
}

TEST_CASE("error messages are escaped and never throw") {
  const std::string message =
      "quote \" backslash \\ newline \n tab \t nul " + std::string(1, '\0') + " caf\xC3\xA9";
  const auto j = json::parse(make_error(error_code::bad_message, message));
  CHECK(j["message"] == message);
  // Invalid UTF-8 is replaced rather than thrown.
  std::string text;
  CHECK_NOTHROW(text = make_error(error_code::bad_message, "bad \xFF byte", "x\xC0"));
  const auto replaced = json::parse(text);
  CHECK(replaced["message"] == "bad \xEF\xBF\xBD byte");
  CHECK(replaced["id"] == "x\xEF\xBF\xBD");
}

TEST_CASE("pong") {
  CHECK(make_pong("") == R"({"type":"pong"})");
  CHECK(make_pong("123") == R"({"type":"pong","t":123})");
  CHECK(make_pong("0.30000000000000004") == R"({"type":"pong","t":0.30000000000000004})");
  CHECK(make_pong(R"({ "a" : [1, 2.50] })") == R"({"type":"pong","t":{ "a" : [1, 2.50] }})");
}

TEST_CASE("pong echoes a ping's t exactly as sent") {
  for (const char* t : {"1712345678901", "1.0e+3", R"("\u0041")", "null", R"([ 1 ,2 ])"}) {
    CAPTURE(t);
    const std::string ping = R"({"type":"ping","t":)" + std::string(t) + "}";
    const auto r = scan_frame(ping);
    REQUIRE(r.ok());
    REQUIRE(decide(r.value(), peer_mode::room).what == action::pong);
    const std::string pong = make_pong(r->text.substr(r->t_value.begin, r->t_value.end - r->t_value.begin));
    CHECK(pong == R"({"type":"pong","t":)" + std::string(t) + "}");
  }
  const auto none = scan_frame(R"({"type":"ping"})");
  REQUIRE(none.ok());
  CHECK(make_pong(none->text.substr(none->t_value.begin, none->t_value.end - none->t_value.begin)) ==
        R"({"type":"pong"})");
}
