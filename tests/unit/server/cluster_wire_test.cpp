// Key, channel and event formats of the backplane, and the redis_url setting.
#include "cluster_wire.hpp"

#include "redis_url.hpp"

#include <doctest/doctest.h>

using namespace rendezvous::server;
namespace wire = rendezvous::server::cluster_wire;

TEST_SUITE("cluster wire") {
  TEST_CASE("a room's keys and channel share one hash tag; the lobby's cannot be a room's") {
    CHECK(wire::room_members_key("rdv", "r1") == "rdv:room:{r1}:m");
    CHECK(wire::room_counter_key("rdv", "r1") == "rdv:room:{r1}:n");
    CHECK(wire::room_channel("rdv", "r1") == "rdv:room:{r1}:c");
    CHECK(wire::lobby_key("rdv") == "rdv:lobby:{~}:m");
    CHECK(wire::room_members_key("rdv", "lobby") != wire::lobby_key("rdv"));
    CHECK(wire::room_of_channel("rdv", "rdv:room:{r1}:c") == "r1");
    CHECK(!wire::room_of_channel("rdv", "other:room:{r1}:c"));
    CHECK(!wire::room_of_channel("rdv", wire::lobby_channel("rdv")));
    CHECK(!wire::room_of_channel("rdv", "rdv:room:{}:c"));
  }

  TEST_CASE("membership events parse with their sequence numbers") {
    auto j = wire::parse_event("J 7 n1~ab alice");
    REQUIRE(j);
    CHECK(j->kind == 'J');
    CHECK(j->seq == 7);
    CHECK(j->node == "n1~ab");
    CHECK(j->id == "alice");
    auto l = wire::parse_event("L 9 n1~ab alice timeout");
    REQUIRE(l);
    CHECK(l->extra == "timeout");
    auto r = wire::parse_event("R 10 n2~cd alice n1~ab");
    REQUIRE(r);
    CHECK(r->node == "n2~cd");
    CHECK(r->extra == "n1~ab");
    auto a = wire::parse_event("A 11 n1~ab alice 3");
    REQUIRE(a);
    CHECK(a->kind == 'A');
    CHECK(a->seq == 11);
    CHECK(a->id == "alice");
    CHECK(a->extra == "3");
    CHECK(!wire::parse_event("J x n1 alice"));
    CHECK(!wire::parse_event("J 1 n1"));
    CHECK(!wire::parse_event("Q 1 n1 a"));
    CHECK(!wire::parse_event(""));
  }

  TEST_CASE("relayed messages keep their bytes exactly, newlines included") {
    std::string msg = "{\"type\":\"offer\",\"id\":\"bob\",\"sdp\":\"v=0\\r\\n a\"}\n tail";
    auto text = wire::make_relay('M', "n1~ab", "alice", msg);
    auto e = wire::parse_event(text);
    REQUIRE(e);
    CHECK(e->kind == 'M');
    CHECK(e->node == "n1~ab");
    CHECK(e->id == "alice");
    CHECK(e->message == msg);
    CHECK(!wire::parse_event("M n1 alice"));  // no payload
    auto s = wire::parse_event(wire::make_seal("n1", "alice"));
    REQUIRE(s);
    CHECK(s->kind == 'S');
    CHECK(s->id == "alice");
  }

  TEST_CASE("member records") {
    auto m = wire::parse_member("n1~ab|12|H|deadbeef");
    REQUIRE(m);
    CHECK(m->node == "n1~ab");
    CHECK(m->seq == 12);
    CHECK(m->held);
    CHECK(m->token_hash == "deadbeef");
    CHECK(!wire::parse_member("n1|x|L|t"));
    CHECK(!wire::parse_member("n1|1|Z|t"));
    CHECK(!wire::parse_member("n1|1"));
  }

  TEST_CASE("token hashes are SHA-256 hex, never the token") {
    CHECK(wire::token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(wire::token_hash("abc").find("abc") == std::string::npos);
  }
}

TEST_SUITE("redis_url") {
  TEST_CASE("TCP forms") {
    redis_endpoint e;
    CHECK(parse_redis_url("redis://127.0.0.1", e) == "");
    CHECK(e.host == "127.0.0.1");
    CHECK(e.port == 6379);
    CHECK(parse_redis_url("redis://:s3cret@redis.internal:7000/3", e) == "");
    CHECK(e.host == "redis.internal");
    CHECK(e.port == 7000);
    CHECK(e.password == "s3cret");
    CHECK(e.db == 3);
    CHECK(e.display().find("s3cret") == std::string::npos);
    CHECK(parse_redis_url("redis://[::1]:6380", e) == "");
    CHECK(e.host == "::1");
    CHECK(e.port == 6380);
    CHECK(e.display() == "redis://[::1]:6380");
  }
  TEST_CASE("unix sockets") {
    redis_endpoint e;
    CHECK(parse_redis_url("unix:///tmp/r.sock?db=2", e) == "");
    CHECK(e.unix_path == "/tmp/r.sock");
    CHECK(e.db == 2);
  }
  TEST_CASE("malformed") {
    redis_endpoint e;
    for (auto bad :
         {"", "redis://", "redis://h:", "redis://h:0", "redis://h:65536", "redis://u:p@h", "redis://@h",
          "redis://h/db", "rediss://h", "unix://", "unix://x", "unix:///x?db=z", "redis://h p"}) {
      CAPTURE(bad);
      CHECK(parse_redis_url(bad, e) != "");
    }
  }
}
