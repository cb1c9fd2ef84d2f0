#include <rendezvous/protocol/held_queue.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace rendezvous::protocol;

namespace {

held_queue::message msg(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

std::vector<std::string> contents(held_queue& q) {
  std::vector<std::string> out;
  for (const auto& m : q.take()) out.push_back(*m);
  return out;
}

}  // namespace

TEST_CASE("keeps messages in order and counts bytes") {
  held_queue q(64, 256 * 1024);
  CHECK(q.size() == 0);
  CHECK(q.bytes() == 0);
  CHECK(q.push(msg("one")) == 0);
  CHECK(q.push(msg("two!")) == 0);
  CHECK(q.push(msg("three")) == 0);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 12);
  CHECK(contents(q) == std::vector<std::string>{"one", "two!", "three"});
}

TEST_CASE("take empties the queue, which stays usable") {
  held_queue q(2, 100);
  q.push(msg("a"));
  auto first = q.take();
  CHECK(first.size() == 1);
  CHECK(q.size() == 0);
  CHECK(q.bytes() == 0);
  CHECK(q.take().empty());
  CHECK(q.push(msg("b")) == 0);
  CHECK(q.push(msg("c")) == 0);
  CHECK(q.push(msg("d")) == 1);
  CHECK(contents(q) == std::vector<std::string>{"c", "d"});
}

TEST_CASE("the message bound drops the oldest") {
  held_queue q(3, 1000);
  for (const char* s : {"1", "2", "3"}) CHECK(q.push(msg(s)) == 0);
  CHECK(q.push(msg("4")) == 1);
  CHECK(q.push(msg("5")) == 1);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 3);
  CHECK(contents(q) == std::vector<std::string>{"3", "4", "5"});
}

TEST_CASE("the byte bound drops as many of the oldest as needed") {
  held_queue q(64, 10);
  CHECK(q.push(msg("aaa")) == 0);
  CHECK(q.push(msg("bbb")) == 0);
  CHECK(q.push(msg("ccc")) == 0);
  CHECK(q.bytes() == 9);
  CHECK(q.push(msg("d")) == 0);  // exactly 10 fits
  CHECK(q.bytes() == 10);
  CHECK(q.push(msg("eeeeeeee")) == 3);  // 8 bytes: aaa, bbb, ccc go
  CHECK(q.bytes() == 9);
  CHECK(contents(q) == std::vector<std::string>{"d", "eeeeeeee"});
}

TEST_CASE("a message bigger than the byte bound is dropped itself") {
  held_queue q(64, 10);
  CHECK(q.push(msg("keep")) == 0);
  CHECK(q.push(msg(std::string(11, 'x'))) == 1);
  CHECK(q.size() == 1);
  CHECK(q.bytes() == 4);
  CHECK(q.push(msg(std::string(10, 'y'))) == 1);  // fits exactly, evicts "keep"
  CHECK(contents(q) == std::vector<std::string>{std::string(10, 'y')});
}

TEST_CASE("the shared message itself is held, not a copy") {
  held_queue q(4, 100);
  const auto m = msg("shared");
  q.push(m);
  const auto out = q.take();
  REQUIRE(out.size() == 1);
  CHECK(out.front().get() == m.get());
}

TEST_CASE("zero bounds and null messages") {
  held_queue none(0, 100);
  CHECK(none.push(msg("a")) == 1);
  CHECK(none.size() == 0);
  held_queue no_bytes(4, 0);
  CHECK(no_bytes.push(msg("a")) == 1);
  CHECK(no_bytes.push(msg("")) == 0);  // an empty message takes no bytes
  CHECK(no_bytes.size() == 1);
  held_queue q(4, 100);
  CHECK(q.push(nullptr) == 0);
  CHECK(q.size() == 0);
}
