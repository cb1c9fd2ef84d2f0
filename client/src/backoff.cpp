#include <rendezvous/client/backoff.hpp>

#include <algorithm>

namespace rendezvous::client {

std::chrono::milliseconds backoff::next(double random01) noexcept {
  random01 = std::clamp(random01, 0.0, 1.0);
  // initial * 2^attempt, capped (and without overflowing the shift).
  auto cap = initial_;
  for (int i = 0; i < attempt_ && cap < max_; ++i) cap *= 2;
  cap = std::min(cap, max_);
  if (attempt_ < 64) ++attempt_;
  auto half = cap.count() / 2;
  return std::chrono::milliseconds(
      half + static_cast<long long>(static_cast<double>(cap.count() - half) * random01));
}

}  // namespace rendezvous::client
