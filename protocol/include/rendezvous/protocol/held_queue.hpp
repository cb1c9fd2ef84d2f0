#pragma once
// Messages held for a disconnected peer during its reconnect grace
// (PROTOCOL.md section 5): kept in order, bounded by count and bytes; beyond
// the bound the oldest are dropped (and counted by the caller).
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>

namespace rendezvous::protocol {

class held_queue {
 public:
  using message = std::shared_ptr<const std::string>;

  held_queue(std::size_t max_messages, std::size_t max_bytes) noexcept
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  // Appends `m`; returns how many old messages were dropped to make room.
  // A single message larger than max_bytes is itself dropped (returns 1).
  std::size_t push(message m);

  // Moves all held messages out, oldest first.
  std::deque<message> take() noexcept;

  std::size_t size() const noexcept { return queue_ ? queue_->size() : 0; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::size_t max_messages_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  // Created on the first push: most members never hold anything, and an
  // empty std::deque already allocates (idle memory per connection).
  std::optional<std::deque<message>> queue_;
};

}  // namespace rendezvous::protocol
