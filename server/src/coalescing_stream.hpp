#pragma once
// A stream layer under Beast's WebSocket stream that gathers the frames
// written while a socket write is in flight and sends them in one write.
//
// Why: relaying a small message costs little in user space; the system call
// that sends it is most of the cost (one sendmsg per message). When several
// messages are queued for one peer, one sendmsg can carry them all.
//
// How: async_write_some copies the bytes into `pending_` and completes at once
// (posted, never inline). If no socket write is running, one starts with what
// is pending; when it completes, the next one takes everything that arrived
// meanwhile. All of Beast's writes (data frames, and its own ping, pong and
// close frames) pass through here in the order Beast issues them, so frames
// are never interleaved: this layer is the only writer of the socket.
//
// Bounded: above `max_pending` bytes the write is still accepted but its
// completion waits until the socket has taken the batch in flight, so a peer
// that does not read stops its session's writes, as a plain socket would
// (the session's own queue limit then applies). Buffers are released when
// the stream is idle, so an idle connection holds none.
//
// Single-threaded use: every call on the stream's strand (as Beast does).
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace rendezvous::server {

template <class NextLayer>
class coalescing_stream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  // Bytes gathered before a write's completion waits for the socket.
  static constexpr std::size_t max_pending = 64 * 1024;

  explicit coalescing_stream(NextLayer&& next) : next_(std::move(next)) {}
  coalescing_stream(const coalescing_stream&) = delete;
  coalescing_stream& operator=(const coalescing_stream&) = delete;
  ~coalescing_stream() { st_->alive = false; }

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }

  // Socket writes started so far (each carries one or more frames).
  std::uint64_t socket_writes() const noexcept { return st_->socket_writes; }

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
    const std::size_t at = st.pending.size();
    st.pending.resize(at + n);
    boost::asio::buffer_copy(boost::asio::buffer(st.pending.data() + at, n), buffers);
    const bool over = st.writing && st.pending.size() > max_pending;
    if (!st.writing) start_write();
    if (!over) {
      return boost::asio::post(
          get_executor(), boost::beast::bind_front_handler(handler_t(std::forward<WriteHandler>(handler)),
                                                           boost::beast::error_code{}, n));
    }
    // Completes once the batch in flight is written (or fails).
    st.waiting =
        std::make_unique<waiting_write<handler_t>>(handler_t(std::forward<WriteHandler>(handler)), n);
  }

  // Calls `handler(ec)` once everything accepted so far is written (or failed).
  template <class Handler>
  void async_flush(Handler&& handler) {
    using handler_t = std::decay_t<Handler>;
    auto& st = *st_;
    if (!st.writing) {
      return boost::asio::post(get_executor(), boost::beast::bind_front_handler(
                                                   handler_t(std::forward<Handler>(handler)), st.failed));
    }
    st.flushed = std::make_unique<flush_wait<handler_t>>(handler_t(std::forward<Handler>(handler)));
  }

 private:
  // A completion handler held until the socket catches up. Beast issues one
  // write at a time and closes once, so one slot of each is enough.
  struct held {
    virtual ~held() = default;
    virtual void complete(executor_type ex, boost::beast::error_code ec) = 0;
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
    explicit flush_wait(H&& h) : handler(std::move(h)) {}
    void complete(executor_type ex, boost::beast::error_code ec) override {
      boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), ec));
    }
    H handler;
  };

  // Shared with the socket write in flight, whose completion may run after
  // the stream is gone (the socket's destruction aborts it): it then only
  // sees `alive == false` and touches nothing else.
  struct state {
    std::string pending;    // accepted, not yet handed to the socket
    std::string in_flight;  // being written by the socket now
    bool writing = false;
    bool alive = true;
    std::uint64_t socket_writes = 0;
    boost::beast::error_code failed;  // the first write error; every later write gets it
    std::unique_ptr<held> waiting;    // a write over max_pending, completed after the batch
    std::unique_ptr<held> flushed;    // async_flush's handler
  };

  void start_write() {
    auto& st = *st_;
    st.writing = true;
    ++st.socket_writes;
    st.in_flight.swap(st.pending);
    st.pending.clear();
    // The whole batch, in as many write_some calls as the socket needs.
    boost::asio::async_write(next_, boost::asio::buffer(st.in_flight),
                             [this, keep = st_](boost::beast::error_code ec, std::size_t) {
                               if (keep->alive) on_written(ec);
                             });
  }

  void on_written(boost::beast::error_code ec) {
    auto& st = *st_;
    st.writing = false;
    if (ec) {
      st.failed = ec;
      st.pending.clear();
    }
    if (st.waiting) std::exchange(st.waiting, nullptr)->complete(get_executor(), ec);
    if (!st.failed && !st.pending.empty()) return start_write();
    if (st.flushed) std::exchange(st.flushed, nullptr)->complete(get_executor(), st.failed);
    // Idle: give the memory back.
    std::string().swap(st.in_flight);
    std::string().swap(st.pending);
  }

  NextLayer next_;
  std::shared_ptr<state> st_ = std::make_shared<state>();
};

// Beast closes a WebSocket by tearing down its next layer: write what is
// pending first (the close frame is in it), then tear down the layer below.
template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, coalescing_stream<NextLayer>& stream,
                    TeardownHandler&& handler) {
  stream.async_flush(
      [role, &stream, h = std::forward<TeardownHandler>(handler)](boost::beast::error_code) mutable {
        using boost::beast::websocket::async_teardown;
        async_teardown(role, stream.next_layer(), std::move(h));
      });
}

template <class NextLayer>
void teardown(boost::beast::role_type role, coalescing_stream<NextLayer>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

}  // namespace rendezvous::server
