// bounded_queue: order, the count and byte bounds, both overflow policies,
// the unbounded pushes, and storage that exists only while something is queued.
#include <rendezvous/protocol/bounded_queue.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace rendezvous::protocol;

namespace {

using message = std::shared_ptr<const std::string>;
message msg(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

template <class Q>
std::vector<std::string> contents(Q& q) {
  std::vector<std::string> out;
  for (const auto& m : q.take()) out.push_back(*m);
  return out;
}

bounded_queue<message> dropping(std::size_t n, std::size_t bytes) {
  return {n, bytes, overflow_policy::drop_oldest};
}
bounded_queue<message> reporting(std::size_t n, std::size_t bytes) {
  return {n, bytes, overflow_policy::report};
}

}  // namespace

TEST_CASE("keeps messages in order and counts bytes") {
  auto q = dropping(64, 256 * 1024);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
  CHECK(q.push(msg("one")).dropped == 0);
  CHECK(q.push(msg("two!")).accepted);
  CHECK(q.push(msg("three")).dropped == 0);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 12);
  CHECK(*q.front() == "one");
  CHECK(*q[2] == "three");
  CHECK(contents(q) == std::vector<std::string>{"one", "two!", "three"});
}

TEST_CASE("take empties the queue, which stays usable") {
  auto q = dropping(2, 100);
  q.push(msg("a"));
  auto first = q.take();
  CHECK(first.size() == 1);
  CHECK(q.size() == 0);
  CHECK(q.bytes() == 0);
  CHECK(q.take().empty());
  CHECK(q.push(msg("b")).dropped == 0);
  CHECK(q.push(msg("c")).dropped == 0);
  CHECK(q.push(msg("d")).dropped == 1);
  CHECK(contents(q) == std::vector<std::string>{"c", "d"});
}

TEST_CASE("drop_oldest: the count bound drops the oldest") {
  auto q = dropping(3, 1000);
  for (const char* s : {"1", "2", "3"}) CHECK(q.push(msg(s)).dropped == 0);
  CHECK(q.push(msg("4")).dropped == 1);
  CHECK(q.push(msg("5")).dropped == 1);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 3);
  CHECK(contents(q) == std::vector<std::string>{"3", "4", "5"});
}

TEST_CASE("drop_oldest: the byte bound drops as many of the oldest as needed") {
  auto q = dropping(64, 10);
  CHECK(q.push(msg("aaa")).dropped == 0);
  CHECK(q.push(msg("bbb")).dropped == 0);
  CHECK(q.push(msg("ccc")).dropped == 0);
  CHECK(q.bytes() == 9);
  CHECK(q.push(msg("d")).dropped == 0);  // exactly 10 fits
  CHECK(q.bytes() == 10);
  CHECK(q.push(msg("eeeeeeee")).dropped == 3);  // 8 bytes: aaa, bbb, ccc go
  CHECK(q.bytes() == 9);
  CHECK(contents(q) == std::vector<std::string>{"d", "eeeeeeee"});
}

TEST_CASE("drop_oldest: a message bigger than the byte bound is dropped itself") {
  auto q = dropping(64, 10);
  CHECK(q.push(msg("keep")).dropped == 0);
  auto r = q.push(msg(std::string(11, 'x')));
  CHECK_FALSE(r.accepted);
  CHECK(r.dropped == 1);
  CHECK(q.size() == 1);
  CHECK(q.bytes() == 4);
  CHECK(q.push(msg(std::string(10, 'y'))).dropped == 1);  // fits exactly, evicts "keep"
  CHECK(contents(q) == std::vector<std::string>{std::string(10, 'y')});
}

TEST_CASE("drop_oldest: zero bounds") {
  auto none = dropping(0, 100);
  CHECK(none.push(msg("a")).dropped == 1);
  CHECK(none.size() == 0);
  auto no_bytes = dropping(4, 0);
  CHECK(no_bytes.push(msg("a")).dropped == 1);
  CHECK(no_bytes.push(msg("")).dropped == 0);  // an empty message takes no bytes
  CHECK(no_bytes.size() == 1);
}

TEST_CASE("report: a push past either bound is refused and changes nothing") {
  auto q = reporting(2, 10);
  CHECK(q.push(msg("12345")).accepted);
  CHECK(q.push(msg("1234")).accepted);
  auto by_count = q.push(msg(""));
  CHECK_FALSE(by_count.accepted);
  CHECK(by_count.dropped == 0);
  CHECK(q.size() == 2);
  q.pop_front();
  CHECK(q.bytes() == 4);
  CHECK_FALSE(q.push(msg("1234567")).accepted);  // 4 + 7 > 10
  CHECK(q.push(msg("123456")).accepted);         // exactly 10
  CHECK(contents(q) == std::vector<std::string>{"1234", "123456"});
}

TEST_CASE("unbounded pushes are counted and can pass the bounds") {
  auto q = reporting(2, 4);
  q.push_unbounded(msg("abc"));
  q.insert_unbounded(0, msg("xy"));
  q.insert_unbounded(1, msg("z"));
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 6);
  CHECK(q.over());
  CHECK_FALSE(q.push(msg("")).accepted);
  CHECK(*q.pop_back() == "abc");
  CHECK_FALSE(q.over());
  CHECK(contents(q) == std::vector<std::string>{"xy", "z"});
}

TEST_CASE("the shared message itself is held, not a copy") {
  auto q = dropping(4, 100);
  const auto m = msg("shared");
  q.push(m);
  const auto out = q.take();
  REQUIRE(out.size() == 1);
  CHECK(out.front().get() == m.get());
}

TEST_CASE("items with their own size function") {
  struct sized {
    std::size_t n;
  };
  struct size_of {
    std::size_t operator()(const sized& s) const noexcept { return s.n; }
  };
  bounded_queue<sized, size_of> q(10, 100, overflow_policy::drop_oldest);
  q.push({60});
  CHECK(q.push({50}).dropped == 1);
  CHECK(q.bytes() == 50);
}
