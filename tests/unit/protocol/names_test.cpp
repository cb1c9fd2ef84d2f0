#include <rendezvous/protocol/names.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace rendezvous::protocol;
using namespace std::string_literals;

TEST_CASE("valid names") {
  for (const char* name : {"a", "Z", "0", ".", "_", "~", "-", "alice", "room-1", "a.b_c~d-e",
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"}) {
    CAPTURE(name);
    // The last one is 66 characters: too long.
    CHECK(is_valid_name(name) == (std::string(name).size() <= 64));
  }
  CHECK(is_valid_name(std::string(max_name_length, 'x')));
  CHECK(max_name_length == 64);
}

TEST_CASE("invalid names") {
  CHECK_FALSE(is_valid_name(""));
  CHECK_FALSE(is_valid_name(std::string(max_name_length + 1, 'x')));
  for (const std::string& name : {"a b"s, "a/b"s, "a%20b"s, "a+b"s, "a@b"s, "a:b"s, "a?b"s, "a#b"s, "a\"b"s,
                                  "caf\xC3\xA9"s, "a\0b"s, "\0"s, " a"s, "a "s, "a\n"s}) {
    CAPTURE(name);
    CHECK_FALSE(is_valid_name(name));
  }
}

TEST_CASE("the character set is exactly [A-Za-z0-9._~-]") {
  const std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
  for (int c = 0; c < 256; ++c) {
    CAPTURE(c);
    const std::string one(1, static_cast<char>(c));
    CHECK(is_valid_name(one) == (allowed.find(static_cast<char>(c)) != std::string::npos));
  }
}
