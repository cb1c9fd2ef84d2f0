#include "address_limits.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace rendezvous::server;
namespace ip = boost::asio::ip;

namespace {
address_key key(const char* text, unsigned bits = 64) {
  return make_address_key(ip::make_address(text), bits);
}
constexpr std::int64_t second = 1'000'000;
}  // namespace

TEST_SUITE("address_limits") {
  TEST_CASE("address_key: IPv4 as is, IPv6 per /64, v4-mapped IPv6 as IPv4") {
    CHECK(key("192.0.2.1").to_string() == "192.0.2.1");
    CHECK(key("192.0.2.1") != key("192.0.2.2"));
    CHECK(key("::ffff:192.0.2.1") == key("192.0.2.1"));
    CHECK(key("::ffff:192.0.2.1").to_string() == "192.0.2.1");
    // One /64 is one site: every address in it is one key.
    CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    CHECK(key("2001:db8:1:2:abcd::7") == key("2001:db8:1:2::"));
    CHECK(key("2001:db8:1:2::1").to_string() == "2001:db8:1:2::/64");
    CHECK(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"));
    CHECK(key("2001:db8:1:2::1").prefix == 64);
    // Another prefix length, and the whole address.
    CHECK(key("2001:db8:1:2::1", 48) == key("2001:db8:1:ffff::1", 48));
    CHECK(key("2001:db8:1:2::1", 48) != key("2001:db8:2:2::1", 48));
    CHECK(key("2001:db8:1:2::1", 56) == key("2001:db8:1:ff::1", 56));
    CHECK(key("2001:db8:1:2::1", 56) != key("2001:db8:1:100::1", 56));
    CHECK(key("2001:db8::1", 128) != key("2001:db8::2", 128));
    CHECK(key("2001:db8::1", 128).to_string() == "2001:db8::1");
    // A v4 key never equals a v6 key with the same leading bytes.
    CHECK(key("1.2.3.4") != key("102:304::"));
    CHECK_FALSE(address_key{});
    CHECK(address_key_hash{}(key("2001:db8:1:2::1")) == address_key_hash{}(key("2001:db8:1:2::9")));
  }

  TEST_CASE("connections and handshakes per address, given back by the tickets") {
    address_limits limits({.max_connections = 3, .max_handshakes = 2, .join_rate = 0, .join_burst = 1});
    const auto a = key("10.0.0.1");
    const auto b = key("10.0.0.2");
    auto first = limits.try_connect(a, 0);
    auto second_conn = limits.try_connect(a, 0);
    REQUIRE_FALSE(first.refused);
    REQUIRE_FALSE(second_conn.refused);
    CHECK(limits.handshakes(a) == 2);
    // A third is over the handshakes in progress...
    auto third = limits.try_connect(a, 0);
    REQUIRE(third.refused);
    CHECK(*third.refused == refusal_reason::handshakes);
    CHECK_FALSE(third.connection);
    // ...another address is not affected...
    CHECK_FALSE(limits.try_connect(b, 0).refused);
    // ...and once the first two are upgraded, the connection limit is next.
    first.handshake.release();
    second_conn.handshake.release();
    auto t3 = limits.try_connect(a, 0);
    REQUIRE_FALSE(t3.refused);
    t3.handshake.release();
    auto t4 = limits.try_connect(a, 0);
    REQUIRE(t4.refused);
    CHECK(*t4.refused == refusal_reason::connections);
    CHECK(limits.connections(a) == 3);
    {
      auto moved = std::move(t3.connection);  // a ticket moves with its socket
      CHECK_FALSE(t3.connection);
    }
    CHECK(limits.connections(a) == 2);
    CHECK_FALSE(limits.try_connect(a, 0).refused);
  }

  TEST_CASE("an address that holds nothing is forgotten; memory follows live addresses") {
    address_limits limits({.max_connections = 100, .max_handshakes = 20, .join_rate = 0, .join_burst = 1});
    {
      std::vector<address_limits::connect_result> held;
      for (int i = 0; i < 50; ++i)
        held.push_back(limits.try_connect(key(("10.0.1." + std::to_string(i)).c_str()), 0));
      CHECK(limits.tracked() == 50);
    }
    CHECK(limits.tracked() == 0);
  }

  TEST_CASE("joins per address: a token bucket, burst then rate") {
    address_limits limits({.max_connections = 0, .max_handshakes = 0, .join_rate = 10, .join_burst = 5});
    const auto a = key("10.0.0.1");
    for (int i = 0; i < 5; ++i) CHECK(limits.try_join(a, 0).ok);
    CHECK_FALSE(limits.try_join(a, 0).ok);
    CHECK(limits.try_join(key("10.0.0.2"), 0).ok);  // per address
    CHECK(limits.try_join(a, second / 10).ok);      // one token per 100 ms
    CHECK_FALSE(limits.try_join(a, second / 10).ok);
    // b is full again after burst / rate and forgotten by the sweep; a's
    // second refusal is logged by the sweep, and a is kept one more interval
    // so that its next refusal cannot log again within the minute.
    CHECK(limits.tracked() == 2);
    auto due = limits.sweep(70 * second);
    REQUIRE(due.size() == 1);
    CHECK(due[0].reason == refusal_reason::join_rate);
    CHECK(due[0].count == 1);
    CHECK(limits.tracked() == 1);
    limits.sweep(131 * second);
    CHECK(limits.tracked() == 0);
  }

  TEST_CASE("refusals: one line per address per interval, with the count since the last one") {
    address_limits limits({.max_connections = 1,
                           .max_handshakes = 0,
                           .join_rate = 0,
                           .join_burst = 1,
                           .log_interval_us = 60 * second});
    const auto a = key("10.0.0.1");
    auto held = limits.try_connect(a, 0);
    REQUIRE_FALSE(held.refused);
    auto r1 = limits.try_connect(a, 1);
    REQUIRE(r1.log);  // the first refusal of an episode is logged at once
    CHECK(r1.log->count == 1);
    CHECK(r1.log->key == a);
    int lines = 0;
    for (int i = 0; i < 1000; ++i)
      if (limits.try_connect(a, 2 + i).log) ++lines;
    CHECK(lines == 0);
    CHECK(limits.sweep(30 * second).empty());  // within the minute: nothing
    auto due = limits.sweep(61 * second);
    REQUIRE(due.size() == 1);
    CHECK(due[0].count == 1000);
    CHECK(due[0].reason == refusal_reason::connections);
    CHECK(limits.sweep(200 * second).empty());  // nothing new
    // The entry lives while it holds a connection; then it goes.
    held.connection.release();
    held.handshake.release();
    limits.sweep(300 * second);
    CHECK(limits.tracked() == 0);
  }

  TEST_CASE("socket budget") {
    CHECK(socket_budget_for(1024, 32, 10) == 982);
    CHECK(socket_budget_for(20, 32, 10) == 1);
    socket_budget budget(2);
    auto a = budget.try_open();
    auto b = budget.try_open();
    CHECK(a);
    CHECK(b);
    CHECK(budget.spent());
    CHECK_FALSE(budget.try_open());
    CHECK(budget.open() == 2);
    a.release();
    CHECK_FALSE(budget.spent());
    CHECK(budget.try_open());
  }
}
