#pragma once
// A session's outbound queue. The deque is created on the first push and
// released when the queue drains: an idle connection holds no queue memory
// (an empty std::deque already allocates its first node).
#include "peer_link.hpp"

#include <deque>
#include <optional>

namespace rendezvous::server {

class message_queue {
 public:
  bool empty() const noexcept { return !q_ || q_->empty(); }
  std::size_t size() const noexcept { return q_ ? q_->size() : 0; }
  shared_message& front() { return q_->front(); }
  shared_message& back() { return q_->back(); }
  void push_back(shared_message m) {
    if (!q_) q_.emplace();
    q_->push_back(std::move(m));
  }
  void pop_front() {
    q_->pop_front();
    if (q_->empty()) q_.reset();
  }
  void pop_back() {
    q_->pop_back();
    if (q_->empty()) q_.reset();
  }
  void clear() noexcept { q_.reset(); }
  // Moves everything out, oldest first.
  std::deque<shared_message> take() {
    std::deque<shared_message> out;
    if (q_) out.swap(*q_);
    q_.reset();
    return out;
  }

 private:
  std::optional<std::deque<shared_message>> q_;
};

}  // namespace rendezvous::server
