#pragma once
// Per-connection rate limit (docs/protocol.md, "Limits"). Time is passed in, so the
// rule is testable without clocks.
#include <cstdint>

namespace rendezvous::protocol {

class token_bucket {
 public:
  // `rate_per_s` tokens are added per second up to `burst`; starts full.
  // rate_per_s == 0 disables the limit.
  token_bucket(double rate_per_s, double burst, std::int64_t now_us) noexcept;

  // Takes one token if available. Returns false when over the limit.
  bool try_take(std::int64_t now_us) noexcept;

  // Whether the bucket would be full at `now_us` (always true when disabled):
  // a full bucket remembers nothing, so its owner may forget it.
  bool full(std::int64_t now_us) const noexcept;

 private:
  double rate_per_us_;
  double burst_;
  double tokens_;
  std::int64_t last_us_;
};

}  // namespace rendezvous::protocol
