#include <rendezvous/protocol/token_bucket.hpp>

#include <doctest/doctest.h>

#include <cstdint>

using namespace rendezvous::protocol;

namespace {

int take_all(token_bucket& b, std::int64_t now_us, int limit = 100000) {
  int n = 0;
  while (n < limit && b.try_take(now_us)) ++n;
  return n;
}

constexpr std::int64_t ms = 1000;
constexpr std::int64_t s = 1000 * ms;

}  // namespace

TEST_CASE("starts full at burst") {
  token_bucket b(50, 200, 0);
  CHECK(take_all(b, 0) == 200);
  CHECK_FALSE(b.try_take(0));
}

TEST_CASE("refills continuously at the rate") {
  token_bucket b(50, 200, 0);
  CHECK(take_all(b, 0) == 200);
  CHECK_FALSE(b.try_take(19 * ms));
  CHECK(b.try_take(20 * ms));  // 50/s: one token per 20 ms
  CHECK_FALSE(b.try_take(20 * ms));
  CHECK(take_all(b, 20 * ms + 1 * s) == 50);

  // Small steps add up.
  token_bucket c(2, 1, 0);
  CHECK(c.try_take(0));
  for (std::int64_t t = 50 * ms; t < 500 * ms; t += 50 * ms) CHECK_FALSE(c.try_take(t));
  CHECK(c.try_take(500 * ms));
}

TEST_CASE("refill is capped at burst") {
  token_bucket b(50, 200, 0);
  CHECK(take_all(b, 0) == 200);
  CHECK(take_all(b, 3600 * s) == 200);
  token_bucket fresh(1000, 5, 0);
  CHECK(take_all(fresh, 10 * s) == 5);
}

TEST_CASE("sustained traffic at the rate passes, above it does not") {
  token_bucket b(50, 10, 0);
  CHECK(take_all(b, 0) == 10);
  int passed = 0;
  for (std::int64_t t = 20 * ms; t <= 10 * s; t += 20 * ms) passed += b.try_take(t) ? 1 : 0;
  CHECK(passed == 500);
  // Twice the rate: half is refused.
  token_bucket fast(50, 1, 0);
  passed = 0;
  for (std::int64_t t = 10 * ms; t <= 10 * s; t += 10 * ms) passed += fast.try_take(t) ? 1 : 0;
  CHECK(passed == 500);  // every other one
}

TEST_CASE("rate 0 disables the limit") {
  token_bucket b(0, 200, 0);
  CHECK(take_all(b, 0, 10000) == 10000);
  token_bucket none(0, 0, 0);
  CHECK(take_all(none, 0, 10000) == 10000);
}

TEST_CASE("a burst below one still lets one message through") {
  token_bucket b(10, 0, 0);
  CHECK(b.try_take(0));
  CHECK_FALSE(b.try_take(0));
  CHECK(b.try_take(100 * ms));
}

TEST_CASE("time going backwards adds nothing") {
  token_bucket b(50, 10, 1 * s);
  CHECK(take_all(b, 1 * s) == 10);
  CHECK_FALSE(b.try_take(0));
  CHECK_FALSE(b.try_take(-100 * s));
  // Refill resumes from the latest time seen, not from the step back.
  CHECK_FALSE(b.try_take(1 * s + 19 * ms));
  CHECK(b.try_take(1 * s + 20 * ms));
  CHECK_FALSE(b.try_take(1 * s + 20 * ms));
}

TEST_CASE("a step back in time takes nothing away either") {
  token_bucket b(50, 10, 1 * s);
  for (int i = 0; i < 5; ++i) CHECK(b.try_take(1 * s));
  CHECK(take_all(b, 900 * ms) == 5);
}

TEST_CASE("works with large timestamps") {
  const std::int64_t epoch_us = 1'700'000'000LL * s;
  token_bucket b(50, 2, epoch_us);
  CHECK(take_all(b, epoch_us) == 2);
  CHECK_FALSE(b.try_take(epoch_us + 19 * ms));
  CHECK(b.try_take(epoch_us + 20 * ms));
}
