#include <rendezvous/protocol/endpoint.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace rendezvous::protocol;
using namespace std::string_literals;

TEST_CASE("room endpoint") {
  const auto ep = parse_endpoint("/rooms/abc");
  CHECK(ep.kind == endpoint_kind::room);
  CHECK(ep.name == "abc");
  CHECK(ep.query.empty());

  const auto q = parse_endpoint("/rooms/abc?peer=alice&resume=tok.123");
  CHECK(q.kind == endpoint_kind::room);
  CHECK(q.name == "abc");
  REQUIRE(q.query.size() == 2);
  CHECK(q.param("peer") == "alice");
  CHECK(q.param("resume") == "tok.123");
  CHECK_FALSE(q.param("token").has_value());
}

TEST_CASE("room names and query values are percent-decoded") {
  CHECK(parse_endpoint("/rooms/a%20b").name == "a b");
  CHECK(parse_endpoint("/rooms/%61%62%63").name == "abc");
  // An encoded slash stays inside the segment (and is refused later as a name).
  const auto slash = parse_endpoint("/rooms/a%2Fb");
  CHECK(slash.kind == endpoint_kind::room);
  CHECK(slash.name == "a/b");
  const auto q = parse_endpoint("/rooms/r?peer=al%69ce&%74oken=x%3Dy");
  CHECK(q.param("peer") == "alice");
  CHECK(q.param("token") == "x=y");
}

TEST_CASE("an empty room segment is a room with an empty name") {
  const auto ep = parse_endpoint("/rooms/");
  CHECK(ep.kind == endpoint_kind::room);
  CHECK(ep.name.empty());
  CHECK(parse_endpoint("/rooms/?peer=a").kind == endpoint_kind::room);
}

TEST_CASE("fixed routes") {
  CHECK(parse_endpoint("/healthz").kind == endpoint_kind::healthz);
  CHECK(parse_endpoint("/readyz").kind == endpoint_kind::readyz);
  CHECK(parse_endpoint("/metrics").kind == endpoint_kind::metrics);
  CHECK(parse_endpoint("/").kind == endpoint_kind::root);
  CHECK(parse_endpoint("/healthz?verbose=1").kind == endpoint_kind::healthz);
  const auto root = parse_endpoint("/?a=b");
  CHECK(root.kind == endpoint_kind::root);
  CHECK(root.param("a") == "b");
  CHECK(parse_endpoint("/healthz").name.empty());
  // Matched after decoding, like every segment.
  CHECK(parse_endpoint("/%68ealthz").kind == endpoint_kind::healthz);
  // Case matters: this is a lobby id.
  CHECK(parse_endpoint("/Healthz").kind == endpoint_kind::lobby);
}

TEST_CASE("any other single segment is a lobby id") {
  const auto ep = parse_endpoint("/alice");
  CHECK(ep.kind == endpoint_kind::lobby);
  CHECK(ep.name == "alice");
  // "/rooms" alone follows the single-segment rule.
  const auto rooms = parse_endpoint("/rooms");
  CHECK(rooms.kind == endpoint_kind::lobby);
  CHECK(rooms.name == "rooms");
  // Not validated here.
  const auto odd = parse_endpoint("/a%20b%00");
  CHECK(odd.kind == endpoint_kind::lobby);
  CHECK(odd.name == "a b\0"s);
  const auto q = parse_endpoint("/bob?x");
  CHECK(q.kind == endpoint_kind::lobby);
  CHECK(q.param("x") == "");
}

TEST_CASE("unknown targets") {
  for (const char* target : {"", "*", "rooms/a", "http://host/rooms/a", "//", "/a/b", "/a/", "/rooms/a/b",
                             "/rooms/a/", "/rooms//", "/healthz/", "/metrics/x", "//rooms/a",
                             // Bad escapes anywhere.
                             "/rooms/%zz", "/rooms/%4", "/rooms/a%", "/%zz", "/a%2", "/rooms/a?peer=%",
                             "/rooms/a?peer=%G1", "/rooms/a?%=1", "/?a=%", "/healthz?%x"}) {
    CAPTURE(target);
    const auto ep = parse_endpoint(target);
    CHECK(ep.kind == endpoint_kind::unknown);
    CHECK(ep.name.empty());
    CHECK(ep.query.empty());
  }
}

TEST_CASE("query splitting") {
  const auto ep = parse_endpoint("/rooms/r?a=1&a=2&b&=v&c=x=y&&d=&e=1+2&");
  CHECK(ep.kind == endpoint_kind::room);
  REQUIRE(ep.query.size() == 7);
  CHECK(ep.query[0] == std::pair<std::string, std::string>{"a", "1"});
  CHECK(ep.query[1] == std::pair<std::string, std::string>{"a", "2"});
  CHECK(ep.query[2] == std::pair<std::string, std::string>{"b", ""});
  CHECK(ep.query[3] == std::pair<std::string, std::string>{"", "v"});
  CHECK(ep.query[4] == std::pair<std::string, std::string>{"c", "x=y"});
  CHECK(ep.query[5] == std::pair<std::string, std::string>{"d", ""});
  CHECK(ep.query[6] == std::pair<std::string, std::string>{"e", "1+2"});
  CHECK(ep.param("a") == "1");  // the first one
  CHECK(ep.param("e") == "1+2");
  CHECK(ep.param("") == "v");
  CHECK_FALSE(ep.param("z").has_value());
  // Only the first '?' splits; later ones belong to the query.
  CHECK(parse_endpoint("/rooms/r?x=a?b").param("x") == "a?b");
  CHECK(parse_endpoint("/rooms/r?").query.empty());
}

TEST_CASE("percent_decode") {
  CHECK(percent_decode("") == "");
  CHECK(percent_decode("abc") == "abc");
  CHECK(percent_decode("%41%42") == "AB");
  CHECK(percent_decode("%4a%4A") == "JJ");
  CHECK(percent_decode("a+b") == "a+b");
  CHECK(percent_decode("%25") == "%");
  CHECK(percent_decode("%2541") == "%41");  // decoded once only
  CHECK(percent_decode("%00") == "\0"s);
  CHECK(percent_decode("%C3%A9") == "\xC3\xA9");
  CHECK(percent_decode("%ff") == "\xFF");
  // A view that ends inside an escape: the bytes after it must not be read.
  const std::string_view cut = std::string_view("%41%42").substr(0, 5);
  CHECK_FALSE(percent_decode(cut).has_value());
  CHECK_FALSE(percent_decode(cut.substr(0, 2)).has_value());
  for (const char* bad : {"%", "%4", "a%", "%G1", "%1G", "%%", "% 1", "%-1", "%+1"}) {
    CAPTURE(bad);
    CHECK_FALSE(percent_decode(bad).has_value());
  }
}
