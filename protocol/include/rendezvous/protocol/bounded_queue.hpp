#pragma once
// The one bounded FIFO of the project: a count bound and a byte bound, and one
// of two policies when a push would pass either of them.
//
//   drop_oldest: the oldest items make room (messages held for a peer during
//                its reconnect grace: the newest state matters most);
//   report:      the push is refused and the caller decides (a session's
//                outbound queue: a peer that does not read is disconnected).
//
// The storage is created on the first push and released when the queue
// empties: an idle connection pays nothing (an empty std::deque already
// allocates its first block). Pure: no I/O, no clocks, no threads.
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace rendezvous::protocol {

enum class overflow_policy { drop_oldest, report };

// The size of a shared text message, the common item.
struct message_size {
  std::size_t operator()(const std::shared_ptr<const std::string>& m) const noexcept {
    return m ? m->size() : 0;
  }
};

template <class T, class SizeOf = message_size>
class bounded_queue {
 public:
  struct push_result {
    bool accepted = true;     // the item is in the queue
    std::size_t dropped = 0;  // items pushed out (drop_oldest), or the item itself when refused there
  };

  bounded_queue(std::size_t max_items, std::size_t max_bytes, overflow_policy policy) noexcept
      : max_items_(max_items), max_bytes_(max_bytes), policy_(policy) {}

  // Appends `item` within the bounds, by the policy. drop_oldest never evicts
  // for an item that could not fit alone; such an item is dropped itself.
  push_result push(T item) {
    const std::size_t size = SizeOf{}(item);
    if (policy_ == overflow_policy::report) {
      if (count() + 1 > max_items_ || bytes_ + size > max_bytes_) return {false, 0};
      push_unbounded(std::move(item));
      return {};
    }
    if (size > max_bytes_ || max_items_ == 0) return {false, 1};
    push_result r;
    while (count() > 0 && (count() + 1 > max_items_ || bytes_ + size > max_bytes_)) {
      pop_front();
      ++r.dropped;
    }
    push_unbounded(std::move(item));
    return r;
  }

  // Appends whatever the bounds say: for bytes the caller must not refuse
  // (it enforces the bound another way), counted like the rest.
  void push_unbounded(T item) {
    bytes_ += SizeOf{}(item);
    storage().push_back(std::move(item));
  }

  // Inserts before position `at` (0 = the front), whatever the bounds say.
  void insert_unbounded(std::size_t at, T item) {
    bytes_ += SizeOf{}(item);
    auto& q = storage();
    q.insert(q.begin() + static_cast<std::ptrdiff_t>(at), std::move(item));
  }

  bool empty() const noexcept { return count() == 0; }
  std::size_t size() const noexcept { return count(); }
  std::size_t bytes() const noexcept { return bytes_; }
  // Past a bound (possible only through the unbounded pushes).
  bool over() const noexcept { return count() > max_items_ || bytes_ > max_bytes_; }
  std::size_t max_items() const noexcept { return max_items_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }

  T& front() { return q_->front(); }
  T& operator[](std::size_t i) { return (*q_)[i]; }
  const T& operator[](std::size_t i) const { return (*q_)[i]; }

  void pop_front() {
    bytes_ -= SizeOf{}(q_->front());
    q_->pop_front();
    if (q_->empty()) q_.reset();
  }

  T pop_back() {
    T item = std::move(q_->back());
    q_->pop_back();
    bytes_ -= SizeOf{}(item);
    if (q_->empty()) q_.reset();
    return item;
  }

  // Moves everything out, oldest first.
  std::deque<T> take() noexcept {
    std::deque<T> out;
    if (q_) out.swap(*q_);
    q_.reset();
    bytes_ = 0;
    return out;
  }

  void clear() noexcept {
    q_.reset();
    bytes_ = 0;
  }

 private:
  std::size_t count() const noexcept { return q_ ? q_->size() : 0; }
  std::deque<T>& storage() {
    if (!q_) q_.emplace();
    return *q_;
  }

  std::size_t max_items_;
  std::size_t max_bytes_;
  overflow_policy policy_;
  std::size_t bytes_ = 0;
  std::optional<std::deque<T>> q_;
};

// Messages held for a disconnected peer during its reconnect grace
// (docs/protocol.md, "Reconnect and resume").
using held_messages = bounded_queue<std::shared_ptr<const std::string>>;

inline held_messages make_held_messages(std::size_t max_messages, std::size_t max_bytes) {
  return held_messages(max_messages, max_bytes, overflow_policy::drop_oldest);
}

}  // namespace rendezvous::protocol
