#include "forwarded_for.hpp"

#include <doctest/doctest.h>

using namespace rendezvous::server;
namespace ip = boost::asio::ip;

namespace {
std::vector<ip_range> ranges(std::initializer_list<const char*> texts) {
  std::vector<ip_range> out;
  for (auto t : texts) {
    auto r = parse_ip_range(t);
    REQUIRE_MESSAGE(r.has_value(), t);
    out.push_back(*r);
  }
  return out;
}
ip::address A(const char* s) { return ip::make_address(s); }
}  // namespace

TEST_CASE("parse_ip_range: addresses and CIDR ranges, v4 and v6") {
  CHECK(parse_ip_range("127.0.0.1")->contains(A("127.0.0.1")));
  CHECK_FALSE(parse_ip_range("127.0.0.1")->contains(A("127.0.0.2")));
  auto ten = parse_ip_range("10.1.2.3/8");  // host bits are masked off
  REQUIRE(ten);
  CHECK(ten->contains(A("10.200.0.1")));
  CHECK_FALSE(ten->contains(A("11.0.0.1")));
  CHECK(parse_ip_range("0.0.0.0/0")->contains(A("8.8.8.8")));
  CHECK_FALSE(parse_ip_range("0.0.0.0/0")->contains(A("::1")));  // families do not mix
  CHECK(parse_ip_range("fd00::/8")->contains(A("fd12:3456::1")));
  CHECK_FALSE(parse_ip_range("fd00::/8")->contains(A("fe80::1")));
  CHECK(parse_ip_range("::1")->contains(A("::1")));
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  CHECK(parse_ip_range("127.0.0.0/8")->contains(A("::ffff:127.0.0.5")));
  for (auto bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x", "localhost", "10.0.0.0/-1"})
    CHECK_FALSE_MESSAGE(parse_ip_range(bad).has_value(), bad);
}

TEST_CASE("forwarded_client: only a trusted proxy speaks for its client") {
  auto trusted = ranges({"127.0.0.1", "10.0.0.0/8"});
  // Not from a trusted proxy: the header is ignored.
  CHECK_FALSE(forwarded_client(A("192.0.2.1"), "203.0.113.7", trusted));
  // From the proxy: the address it appended.
  CHECK(forwarded_client(A("127.0.0.1"), "203.0.113.7", trusted) == A("203.0.113.7"));
  // A client-forged entry on the left is not believed: the rightmost
  // untrusted address is the one the trusted chain saw.
  CHECK(forwarded_client(A("127.0.0.1"), "1.2.3.4, 203.0.113.7", trusted) == A("203.0.113.7"));
  // Chained trusted proxies are skipped.
  CHECK(forwarded_client(A("127.0.0.1"), "203.0.113.7 ,10.0.0.5,10.9.9.9", trusted) == A("203.0.113.7"));
  CHECK(forwarded_client(A("127.0.0.1"), "2001:db8::1", trusted) == A("2001:db8::1"));
  CHECK(forwarded_client(A("::ffff:127.0.0.1"), "203.0.113.7", trusted) == A("203.0.113.7"));
  // Absent, all trusted, or garbage at the first untrusted hop: no answer.
  CHECK_FALSE(forwarded_client(A("127.0.0.1"), "", trusted));
  CHECK_FALSE(forwarded_client(A("127.0.0.1"), "10.0.0.1", trusted));
  CHECK_FALSE(forwarded_client(A("127.0.0.1"), "203.0.113.7, unknown", trusted));
  CHECK_FALSE(forwarded_client(A("127.0.0.1"), "203.0.113.7:5555", trusted));
  // No trusted proxies configured: never.
  CHECK_FALSE(forwarded_client(A("127.0.0.1"), "203.0.113.7", {}));
}
