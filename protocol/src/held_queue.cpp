#include <rendezvous/protocol/held_queue.hpp>

namespace rendezvous::protocol {

std::size_t held_queue::push(message m) {
  if (!m) return 0;  // nothing to hold
  const std::size_t size = m->size();
  // Never evict the queue for a message that could not fit anyway.
  if (size > max_bytes_ || max_messages_ == 0) return 1;
  if (!queue_) queue_.emplace();
  auto& q = *queue_;
  std::size_t dropped = 0;
  while (!q.empty() && (q.size() >= max_messages_ || bytes_ + size > max_bytes_)) {
    bytes_ -= q.front()->size();
    q.pop_front();
    ++dropped;
  }
  bytes_ += size;
  q.push_back(std::move(m));
  return dropped;
}

std::deque<held_queue::message> held_queue::take() noexcept {
  std::deque<message> out;
  if (queue_) out.swap(*queue_);
  queue_.reset();
  bytes_ = 0;
  return out;
}

}  // namespace rendezvous::protocol
