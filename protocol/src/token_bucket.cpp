#include <rendezvous/protocol/token_bucket.hpp>

#include <algorithm>

namespace rendezvous::protocol {

token_bucket::token_bucket(double rate_per_s, double burst, std::int64_t now_us) noexcept
    // A rate that is not positive (0, negative, NaN) disables the limit.
    : rate_per_us_(rate_per_s > 0 ? rate_per_s / 1e6 : 0),
      // A bucket that cannot hold one token would refuse everything, so a
      // burst below 1 (or NaN) means 1.
      burst_(burst >= 1.0 ? burst : 1.0),
      tokens_(burst_),
      last_us_(now_us) {}

bool token_bucket::try_take(std::int64_t now_us) noexcept {
  if (rate_per_us_ == 0) return true;
  // Time that goes backwards (a clock step) adds nothing and is not
  // remembered, so refill resumes from the latest time seen.
  if (now_us > last_us_) {
    const double elapsed = static_cast<double>(now_us) - static_cast<double>(last_us_);
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_per_us_);
    last_us_ = now_us;
  }
  // The epsilon absorbs rounding of rate/1e6, so 50/s refills exactly one
  // token every 20 ms.
  if (tokens_ < 1.0 - 1e-9) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

bool token_bucket::full(std::int64_t now_us) const noexcept {
  if (rate_per_us_ == 0) return true;
  const double elapsed =
      now_us > last_us_ ? static_cast<double>(now_us) - static_cast<double>(last_us_) : 0.0;
  return tokens_ + elapsed * rate_per_us_ >= burst_ - 1e-9;
}

}  // namespace rendezvous::protocol
