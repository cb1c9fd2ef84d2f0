// Pure pieces of the client: server URL, backoff, server frames, payloads,
// SDP mids and ICE server URLs.
#include <rendezvous/client/backoff.hpp>
#include <rendezvous/client/messages.hpp>
#include <rendezvous/client/server_url.hpp>
#include <rendezvous/client/webrtc_util.hpp>

#include <doctest/doctest.h>

using namespace rendezvous::client;
using namespace std::chrono_literals;

TEST_CASE("server URL: ws and wss, ports, IPv6, base path; the rest is refused") {
  auto u = parse_server_url("ws://127.0.0.1:8080");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == "8080");
  CHECK(u->base_path.empty());
  CHECK(parse_server_url("ws://example.org")->port == "80");
  CHECK(parse_server_url("wss://example.org")->port == "443");
  CHECK(parse_server_url("wss://example.org")->tls);
  auto v6 = parse_server_url("ws://[::1]:9000/signal/");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == "9000");
  CHECK(v6->base_path == "/signal");
  CHECK(host_header(*v6) == "[::1]:9000");
  CHECK(host_header(*parse_server_url("ws://h")) == "h");
  for (auto bad : {"http://h", "ws://", "ws://h:", "ws://h:0", "ws://h:99999", "ws://h:8x", "ws://u@h",
                   "ws://h/?x", "ws://[::1", "h:80"})
    CHECK_MESSAGE(!parse_server_url(bad), bad);
}

TEST_CASE("room target: percent-encoded, empty parameters left out") {
  auto u = *parse_server_url("ws://h:1/base");
  CHECK(room_target(u, "demo", "", "", "") == "/base/rooms/demo");
  CHECK(room_target(u, "demo", "alice", "", "tok/+=") == "/base/rooms/demo?peer=alice&resume=tok%2F%2B%3D");
  CHECK(room_target(u, "bad name!", "a", "t", "") == "/base/rooms/bad%20name%21?peer=a&token=t");
}

TEST_CASE("backoff: doubles up to the cap, jittered in [cap/2, cap), resets") {
  backoff b(100ms, 1000ms);
  CHECK(b.next(0.0) == 50ms);
  CHECK(b.next(0.0) == 100ms);
  CHECK(b.next(0.999) < 400ms);
  CHECK(b.next(0.0) == 400ms);
  CHECK(b.next(0.0) == 500ms);  // capped at 1000
  CHECK(b.next(0.0) == 500ms);
  for (int i = 0; i < 100; ++i) {
    auto d = b.next(0.5);
    CHECK(d >= 500ms);
    CHECK(d < 1000ms);
  }
  b.reset();
  CHECK(b.next(1.0) == 100ms);
}

TEST_CASE("server frames: welcome, events, errors, relayed messages") {
  auto w = parse_server_frame(R"({"type":"welcome","id":"a","room":"r","peers":["b","c"],"resume":"tok",)"
                              R"("iceServers":[{"urls":["stun:s:3478"]}],"resumed":true})");
  REQUIRE(w);
  auto& we = std::get<welcome_event>(*w);
  CHECK(we.id == "a");
  CHECK(we.peers == std::vector<std::string>{"b", "c"});
  CHECK(we.resume_token == "tok");
  CHECK(we.resumed);
  CHECK(we.ice_servers.size() == 1);

  CHECK(std::get<peer_joined_event>(*parse_server_frame(R"({"type":"peer-joined","id":"b"})")).id == "b");
  auto left =
      std::get<peer_left_event>(*parse_server_frame(R"({"type":"peer-left","id":"b","reason":"timeout"})"));
  CHECK(left.reason == "timeout");
  auto err =
      std::get<error_event>(*parse_server_frame(R"({"type":"error","code":"room-full","message":"full"})"));
  CHECK(err.code == "room-full");
  CHECK(err.known_code() == rendezvous::protocol::error_code::room_full);
  auto nf = std::get<error_event>(
      *parse_server_frame(R"({"type":"error","code":"peer-not-found","message":"x","id":"zed"})"));
  CHECK(nf.id == "zed");
  CHECK(std::holds_alternative<pong_event>(*parse_server_frame(R"({"type":"pong","t":1})")));

  auto m = std::get<relayed_message>(*parse_server_frame(R"({"id":"b","type":"offer","description":"v=0"})"));
  CHECK(m.from == "b");
  CHECK(m.type == "offer");

  std::string why;
  CHECK_FALSE(parse_server_frame("not json", &why));
  CHECK_FALSE(parse_server_frame("[1]", &why));
  CHECK_FALSE(parse_server_frame(R"({"type":5})", &why));
  CHECK_FALSE(parse_server_frame(R"({"type":"welcome"})", &why));
  CHECK(why == "welcome without id");
}

TEST_CASE("payloads are libdatachannel's; the role seed round-trips bit for bit") {
  auto d = make_description_message("b", {sdp_type::answer, "v=0\r\n"});
  CHECK(d == nlohmann::json{{"id", "b"}, {"type", "answer"}, {"description", "v=0\r\n"}});
  auto c = make_candidate_message("b", {"a=candidate:1 1 UDP 1 1.2.3.4 5 typ host", "0"});
  CHECK(c["mid"] == "0");
  CHECK(make_bye_message() == nlohmann::json{{"type", "bye"}});

  double seed = 0.1234567890123456789;
  auto text = make_role_message("b", {seed, "s", true}).dump();
  auto back = std::get<relayed_message>(*parse_server_frame(text));
  auto r = parse_role(back);
  REQUIRE(r);
  CHECK(r->seed == seed);  // exact
  CHECK(r->session == "s");
  CHECK(r->ice_restart);

  relayed_message m{"candidate", "b", {{"type", "candidate"}, {"candidate", nullptr}}};
  auto eoc = parse_candidate(m);
  REQUIRE(eoc);
  CHECK(eoc->candidate.empty());
  relayed_message bad{"offer", "b", {{"type", "offer"}}};
  CHECK_FALSE(parse_description(bad));
  relayed_message no_seed{"role", "b", {{"type", "role"}, {"seed", "x"}}};
  CHECK_FALSE(parse_role(no_seed));
}

TEST_CASE("SDP mids map to m-line indexes; candidate prefixes") {
  std::string sdp =
      "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE application0\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:application0\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\n";
  auto mids = media_mids(sdp);
  CHECK(mids == std::vector<std::string>{"application0", "1"});
  CHECK(mline_index(mids, "application0") == 0u);
  CHECK(mline_index(mids, "1") == 1u);
  CHECK_FALSE(mline_index(mids, "0"));
  CHECK(mline_index({"0"}, "other") == 0u);  // a single section takes anything
  CHECK(strip_candidate_prefix("a=candidate:1 1 UDP 2 1.2.3.4 5 typ host\r\n") ==
        "candidate:1 1 UDP 2 1.2.3.4 5 typ host");
  CHECK(strip_candidate_prefix("candidate:x") == "candidate:x");
}

TEST_CASE("ICE servers: welcome iceServers and flags in GStreamer's URL form") {
  auto ice = nlohmann::json::parse(
      R"([{"urls":["stun:stun.example:3478"]},)"
      R"({"urls":"turn:turn.example:3478?transport=udp","username":"1700000000:alice","credential":"a/b+c="},)"
      R"({"urls":["mailto:x"]}])");
  std::vector<std::string> skipped;
  auto out = to_gst_ice_servers(ice, {"stun:127.0.0.1:1234", "turn:u:p@127.0.0.1:3478"}, &skipped);
  CHECK(out.stun == std::vector<std::string>{"stun://stun.example:3478", "stun://127.0.0.1:1234"});
  REQUIRE(out.turn.size() == 2);
  CHECK(out.turn[0] == "turn://1700000000%3Aalice:a%2Fb%2Bc%3D@turn.example:3478?transport=udp");
  CHECK(out.turn[1] == "turn://u:p@127.0.0.1:3478");
  CHECK(skipped == std::vector<std::string>{"mailto:x"});
}
