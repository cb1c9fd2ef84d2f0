#include <rendezvous/protocol/errors.hpp>

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <string_view>

using namespace rendezvous::protocol;
using namespace std::string_view_literals;

namespace {

// docs/protocol.md ("Error codes"), in its order, with the close code that follows each
// when the server ends the connection because of it.
struct expectation {
  error_code code;
  const char* name;
  int close;
};
const expectation expected[] = {
    {error_code::bad_request, "bad-request", 4400},
    {error_code::bad_message, "bad-message", 1008},
    {error_code::reserved_type, "reserved-type", 1008},
    {error_code::peer_not_found, "peer-not-found", 1008},
    {error_code::message_too_large, "message-too-large", 1009},
    {error_code::rate_limited, "rate-limited", 4429},
    {error_code::room_full, "room-full", 4429},
    {error_code::id_taken, "id-taken", 4409},
    {error_code::unauthorized, "unauthorized", 4401},
    {error_code::forbidden, "forbidden", 4403},
    {error_code::unavailable, "unavailable", 4503},
    {error_code::internal, "internal", 1011},
};

}  // namespace

TEST_CASE("every error code has its docs/protocol.md wire name") {
  static_assert(sizeof expected / sizeof expected[0] == error_code_count);
  std::set<std::string> names;
  for (const auto& e : expected) {
    CAPTURE(e.name);
    CHECK(to_string(e.code) == e.name);
    names.insert(std::string(to_string(e.code)));
  }
  CHECK(names.size() == static_cast<std::size_t>(error_code_count));
}

TEST_CASE("error_code_from_string inverts to_string and nothing else") {
  for (const auto& e : expected) {
    CAPTURE(e.name);
    const auto parsed = error_code_from_string(e.name);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == e.code);
  }
  for (const std::string_view name : {""sv, "Bad-Request"sv, "bad_request"sv, "bad-request "sv,
                                      "peer-not-found\0x"sv, "too-many"sv, "error"sv}) {
    CAPTURE(name);
    CHECK_FALSE(error_code_from_string(name).has_value());
  }
}

TEST_CASE("close_code_for") {
  for (const auto& e : expected) {
    CAPTURE(e.name);
    CHECK(static_cast<int>(close_code_for(e.code)) == e.close);
  }
}

TEST_CASE("close codes have their wire values") {
  CHECK(static_cast<int>(close_code::normal) == 1000);
  CHECK(static_cast<int>(close_code::going_away) == 1001);
  CHECK(static_cast<int>(close_code::policy) == 1008);
  CHECK(static_cast<int>(close_code::too_big) == 1009);
  CHECK(static_cast<int>(close_code::internal_error) == 1011);
  CHECK(static_cast<int>(close_code::bad_request) == 4400);
  CHECK(static_cast<int>(close_code::unauthorized) == 4401);
  CHECK(static_cast<int>(close_code::forbidden) == 4403);
  CHECK(static_cast<int>(close_code::id_taken) == 4409);
  CHECK(static_cast<int>(close_code::too_many) == 4429);
  CHECK(static_cast<int>(close_code::unavailable) == 4503);
}

TEST_CASE("leave reasons") {
  CHECK(to_string(leave_reason::closed) == "closed");
  CHECK(to_string(leave_reason::timeout) == "timeout");
  CHECK(to_string(leave_reason::kicked) == "kicked");
}
