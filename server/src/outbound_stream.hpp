#pragma once
// A connection's outbound side, as a stream layer under Beast's WebSocket
// stream: the one bounded queue of what waits to be written, the one socket
// write in flight, and the one overflow rule.
//
// Data frames do not go through Beast's async_write: send_text() appends the
// relayed message itself (the shared, immutable string every receiver of a
// broadcast shares) behind a 2-10 byte frame header, without copying it. A
// socket write takes everything queued at once; over plain TCP as one
// scatter-gather write (writev), over TLS flattened into one buffer first
// (Asio's TLS stream would make one record per buffer). So the payload is
// copied once in user space after it is read (by the sender-id rewrite), and
// the frames queued for a peer while a write is in flight leave together.
//
// Beast's own writes (the 101 response, ping, pong, close) pass through
// async_write_some: their bytes are copied into the same queue, in the order
// Beast issues them, so frames never interleave and this layer is the only
// writer of the socket. Once Beast has written a close frame, data frames are
// refused (`closed`). Before open(), data frames wait behind the handshake
// response.
//
// Bounds: one figure, `max_bytes`, over everything not yet written (in flight
// included), and `max_frames`. A data frame past either is refused
// (`overflow`): the session treats its peer as a slow reader. Beast's writes
// are never refused, but while the queue is past its bounds their completion
// waits for the socket write in flight, so a peer that sends pings and does
// not read stops its own read loop. Storage is released when the queue
// empties: an idle connection holds none.
//
// Single-threaded use: every call on the stream's strand (as Beast does).
#include "peer_link.hpp"

#include <rendezvous/protocol/bounded_queue.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rendezvous::server {

// Whether a socket write may take many buffers at once (writev). Not over
// TLS, where each buffer would become a record of its own.
template <class Stream>
inline constexpr bool writes_vectored = true;
template <class Stream>
inline constexpr bool writes_vectored<boost::beast::ssl_stream<Stream>> = false;

enum class send_status { queued, overflow, closed };

template <class NextLayer>
class outbound_stream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  explicit outbound_stream(NextLayer&& next) : next_(std::move(next)) {}
  outbound_stream(const outbound_stream&) = delete;
  outbound_stream& operator=(const outbound_stream&) = delete;
  ~outbound_stream() { st_->alive = false; }

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }

  // Set once, before anything is queued.
  void set_limits(std::size_t max_frames, std::size_t max_bytes) {
    st_->queue = queue_type(max_frames, max_bytes, protocol::overflow_policy::report);
  }

  // Queues `msg` as one text frame.
  send_status send_text(shared_message msg) {
    auto& st = *st_;
    if (st.close_sent || st.failed) return send_status::closed;
    chunk c;
    c.bytes = frame_header(msg->size());
    c.payload = std::move(msg);
    if (!st.queue.push(std::move(c)).accepted) return send_status::overflow;
    if (!st.writing && st.open) start_write();
    return send_status::queued;
  }

  // The handshake is done: data frames may follow Beast's response.
  void open() {
    auto& st = *st_;
    st.open = true;
    if (!st.writing && !st.queue.empty() && !st.failed) start_write();
  }

  // Data frames not handed to the socket yet, oldest first; they leave the queue.
  std::deque<shared_message> take_unsent() {
    auto& st = *st_;
    std::deque<shared_message> out;
    // Beast's bytes among them (a pong at most: the session takes these
    // before it closes) go too: the connection is being given up.
    while (st.queue.size() > st.in_flight) {
      chunk c = st.queue.pop_back();
      if (c.payload) out.push_front(std::move(c.payload));
      if (!st.open && st.raw_prefix > st.queue.size()) st.raw_prefix = st.queue.size();
    }
    return out;
  }

  // An idle connection holds no buffers: call when it has been quiet.
  void shrink() {
    if (!st_->writing) std::vector<boost::asio::const_buffer>().swap(st_->iov);
  }

  // What is queued, the write in flight included.
  std::size_t queued_frames() const noexcept { return st_->queue.size(); }
  std::size_t queued_bytes() const noexcept { return st_->queue.bytes(); }
  std::size_t max_frames() const noexcept { return st_->queue.max_items(); }
  // Socket writes started so far (each carries one or more frames).
  std::uint64_t socket_writes() const noexcept { return st_->socket_writes; }

  // Calls `handler(ec)` once nothing is being written (or the socket failed).
  template <class Handler>
  void async_flush(Handler&& handler) {
    wait(st_->flushed, 1, std::forward<Handler>(handler));
  }

  // Calls `handler(ec)` once fewer than `frames` are queued after a socket
  // write (or the socket failed): the end of a back-pressure pause.
  template <class Handler>
  void async_wait_below(std::size_t frames, Handler&& handler) {
    wait(st_->drained, frames, std::forward<Handler>(handler));
  }

  // Beast's side of the layer.
  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return next_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  template <class ConstBufferSequence, class WriteHandler>
  void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    using handler_t = std::decay_t<WriteHandler>;
    auto& st = *st_;
    if (st.failed) {
      return boost::asio::post(
          get_executor(),
          boost::beast::bind_front_handler(handler_t(std::forward<WriteHandler>(handler)), st.failed, 0));
    }
    const std::size_t n = boost::asio::buffer_size(buffers);
    chunk c;
    c.bytes.resize(n);
    boost::asio::buffer_copy(boost::asio::buffer(c.bytes), buffers);
    // Beast starts every write at a frame boundary; 0x88 is FIN + close.
    if (st.open && n > 0 && static_cast<unsigned char>(c.bytes[0]) == 0x88) st.close_sent = true;
    if (st.open) {
      st.queue.push_unbounded(std::move(c));
    } else {
      st.queue.insert_unbounded(st.raw_prefix++, std::move(c));  // ahead of early data frames
    }
    const bool over = st.writing && st.queue.over();
    if (!st.writing) start_write();
    if (!over) {
      return boost::asio::post(
          get_executor(), boost::beast::bind_front_handler(handler_t(std::forward<WriteHandler>(handler)),
                                                           boost::beast::error_code{}, n));
    }
    st.waiting =
        std::make_unique<waiting_write<handler_t>>(handler_t(std::forward<WriteHandler>(handler)), n);
  }

 private:
  static constexpr std::size_t small_iov = 8;
  static constexpr std::size_t kept_iov = 64;

  struct chunk {
    shared_message payload;  // a data frame's message; empty for Beast's bytes
    std::string bytes;       // the data frame's header (fits the small-string buffer), or Beast's bytes
  };
  struct chunk_size {
    std::size_t operator()(const chunk& c) const noexcept {
      return c.bytes.size() + (c.payload ? c.payload->size() : 0);
    }
  };
  using queue_type = protocol::bounded_queue<chunk, chunk_size>;

  static std::string frame_header(std::size_t n) {
    std::string h;
    h.push_back(static_cast<char>(0x81));  // FIN + text
    if (n < 126) {
      h.push_back(static_cast<char>(n));
    } else if (n < 65536) {
      h.push_back(static_cast<char>(126));
      h.push_back(static_cast<char>(n >> 8));
      h.push_back(static_cast<char>(n & 0xff));
    } else {
      h.push_back(static_cast<char>(127));
      for (int i = 7; i >= 0; --i)
        h.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff));
    }
    return h;
  }

  struct held;
  template <class Handler>
  void wait(std::unique_ptr<held>& slot, std::size_t below, Handler&& handler) {
    using handler_t = std::decay_t<Handler>;
    auto& st = *st_;
    if (!st.writing || st.failed || st.queue.size() < below) {
      return boost::asio::post(get_executor(), boost::beast::bind_front_handler(
                                                   handler_t(std::forward<Handler>(handler)), st.failed));
    }
    slot = std::make_unique<flush_wait<handler_t>>(handler_t(std::forward<Handler>(handler)), below);
  }

  // A completion handler held until the socket catches up. Beast issues one
  // write at a time and tears down once, so one slot of each is enough.
  struct held {
    virtual ~held() = default;
    virtual void complete(executor_type ex, boost::beast::error_code ec) = 0;
    std::size_t below = 0;  // a wait: completes once fewer frames than this are queued
  };
  template <class H>
  struct waiting_write final : held {
    waiting_write(H&& h, std::size_t n) : handler(std::move(h)), bytes(n) {}
    void complete(executor_type ex, boost::beast::error_code ec) override {
      boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), ec, ec ? 0 : bytes));
    }
    H handler;
    std::size_t bytes;
  };
  template <class H>
  struct flush_wait final : held {
    flush_wait(H&& h, std::size_t n) : handler(std::move(h)) { this->below = n; }
    void complete(executor_type ex, boost::beast::error_code ec) override {
      boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), ec));
    }
    H handler;
  };

  // Shared with the socket write in flight, whose completion may run after
  // the stream is gone (the socket's destruction aborts it): it then only
  // sees `alive == false` and touches nothing else.
  struct state {
    queue_type queue{256, 1 << 20, protocol::overflow_policy::report};
    std::size_t in_flight = 0;   // the front chunks the socket write is carrying
    std::size_t raw_prefix = 0;  // before open(): Beast's chunks at the front
    std::vector<boost::asio::const_buffer> iov;
    std::string flat;
    bool writing = false;
    bool open = false;
    bool close_sent = false;
    bool alive = true;
    std::uint64_t socket_writes = 0;
    boost::beast::error_code failed;  // the first write error; every later write gets it
    std::unique_ptr<held> waiting;    // a Beast write past the bounds, completed after the batch
    std::unique_ptr<held> flushed;    // async_flush's handler
    std::unique_ptr<held> drained;    // async_wait_below's handler
  };

  void start_write() {
    auto& st = *st_;
    const std::size_t n = st.open ? st.queue.size() : st.raw_prefix;
    if (n == 0) return;
    st.writing = true;
    st.in_flight = n;
    ++st.socket_writes;
    auto done = [this, keep = st_](boost::beast::error_code ec, std::size_t) {
      if (keep->alive) on_written(ec);
    };
    if constexpr (writes_vectored<NextLayer>) {
      st.iov.clear();
      st.iov.reserve(std::max(2 * n, small_iov));
      for (std::size_t i = 0; i < n; ++i) {
        const chunk& c = st.queue[i];
        st.iov.emplace_back(c.bytes.data(), c.bytes.size());
        if (c.payload) st.iov.emplace_back(c.payload->data(), c.payload->size());
      }
      boost::asio::async_write(next_, st.iov, std::move(done));
    } else {
      st.flat.clear();
      for (std::size_t i = 0; i < n; ++i) {
        const chunk& c = st.queue[i];
        st.flat += c.bytes;
        if (c.payload) st.flat += *c.payload;
      }
      boost::asio::async_write(next_, boost::asio::buffer(st.flat), std::move(done));
    }
  }

  void on_written(boost::beast::error_code ec) {
    auto& st = *st_;
    st.writing = false;
    for (; st.in_flight > 0; --st.in_flight) {
      if (!st.open && st.raw_prefix > 0) --st.raw_prefix;
      st.queue.pop_front();
    }
    if (ec) st.failed = ec;  // the data frames left stay for take_unsent()
    if (st.waiting) std::exchange(st.waiting, nullptr)->complete(get_executor(), ec);
    if (st.drained && (st.failed || st.queue.size() < st.drained->below))
      std::exchange(st.drained, nullptr)->complete(get_executor(), st.failed);
    if (!st.failed && !st.queue.empty()) {
      start_write();
      if (st.writing) return;
    }
    if (st.flushed) std::exchange(st.flushed, nullptr)->complete(get_executor(), st.failed);
    if (st.drained) std::exchange(st.drained, nullptr)->complete(get_executor(), st.failed);
    // Nothing in flight: give the memory back, except the buffer list (up to
    // 1 KiB), which the next write would allocate again; shrink() releases it
    // once the connection has been idle for a while.
    if (st.iov.capacity() > kept_iov) std::vector<boost::asio::const_buffer>().swap(st.iov);
    std::string().swap(st.flat);
  }

  NextLayer next_;
  std::shared_ptr<state> st_ = std::make_shared<state>();
};

// Beast closes a WebSocket by tearing down its next layer: write what is
// queued first (the close frame is in it), then tear down the layer below.
template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, outbound_stream<NextLayer>& stream,
                    TeardownHandler&& handler) {
  stream.async_flush(
      [role, &stream, h = std::forward<TeardownHandler>(handler)](boost::beast::error_code) mutable {
        using boost::beast::websocket::async_teardown;
        async_teardown(role, stream.next_layer(), std::move(h));
      });
}

template <class NextLayer>
void teardown(boost::beast::role_type role, outbound_stream<NextLayer>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

}  // namespace rendezvous::server
