#pragma once
// Reconnect delays: exponential backoff with jitter. Pure: the random number
// is passed in, so the rule is testable without clocks.
#include <chrono>

namespace rendezvous::client {

class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) noexcept
      : initial_(initial), max_(max) {}

  // The delay before the next attempt: the cap doubles with each failure (from
  // `initial` up to `max`) and the delay is drawn in [cap/2, cap) ("equal
  // jitter"), so that peers that lost the same server do not come back in step.
  // `random01` is uniform in [0, 1).
  std::chrono::milliseconds next(double random01) noexcept;

  // After a successful connection.
  void reset() noexcept { attempt_ = 0; }
  int attempts() const noexcept { return attempt_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  int attempt_ = 0;
};

}  // namespace rendezvous::client
