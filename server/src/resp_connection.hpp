#pragma once
// One connection to Redis on the server's own io_context: hiredis encodes
// the commands and decodes the replies (RESP), Asio does the I/O, so there is
// no thread of its own and no blocking call. Commands are pipelined: each
// call appends to one output buffer and a single write carries whatever is
// queued; replies come back in order and go to the callers' handlers in that
// order (FIFO). On a subscriber connection, messages that are not replies
// (["message"|"smessage", channel, payload]) go to the push handler.
//
// Failure is one path: a socket error, a reply slower than `reply_timeout`,
// or more than `max_output_bytes` waiting to be written close the connection,
// every pending handler gets nullptr (in order) and `on_lost` runs once.
// Reconnecting is the owner's job (a new resp_connection).
//
// Threading: every member is used on `strand` only, and every handler runs
// there; call the public functions from that strand.
#include "redis_url.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;
struct redisReply;

namespace rendezvous::server {

using redis_strand = boost::asio::strand<boost::asio::io_context::executor_type>;

class resp_connection : public std::enable_shared_from_this<resp_connection> {
 public:
  // The reply, or nullptr when the connection failed before it came.
  using reply_handler = std::function<void(const redisReply*)>;
  using push_handler = std::function<void(const redisReply&)>;

  resp_connection(redis_strand strand, redis_endpoint endpoint, std::chrono::milliseconds reply_timeout,
                  std::size_t max_output_bytes);
  ~resp_connection();
  resp_connection(const resp_connection&) = delete;
  resp_connection& operator=(const resp_connection&) = delete;

  // Connects (AUTH and SELECT when the endpoint asks); `done(true)` once
  // Redis has answered them, `done(false)` on failure (then on_lost is not called).
  void connect(std::function<void(bool)> done);

  // Queues a command; false (handler not called) when the connection is not
  // up or its output buffer is full.
  bool command(const std::vector<std::string_view>& args, reply_handler handler = {});

  void set_push_handler(push_handler handler) { push_ = std::move(handler); }
  void set_on_lost(std::function<void(std::string_view why)> f) { on_lost_ = std::move(f); }

  bool up() const noexcept { return state_ == state::up; }
  // Closes without calling on_lost; pending handlers get nullptr.
  void close();

  // Bytes queued and not yet written (for tests and metrics).
  std::size_t output_bytes() const noexcept { return output_.size() + writing_.size(); }

 private:
  enum class state { idle, connecting, up, failed };
  struct pending {
    reply_handler handler;
    std::chrono::steady_clock::time_point sent;
  };

  void on_connected(std::function<void(bool)> done);
  void start_write();
  void start_read();
  void on_read(std::size_t n);
  void dispatch(redisReply* reply);
  void arm_watchdog();
  void fail(std::string_view why, bool notify);

  redis_strand strand_;
  redis_endpoint endpoint_;
  std::chrono::milliseconds reply_timeout_;
  std::size_t max_output_bytes_;
  boost::asio::generic::stream_protocol::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer watchdog_;
  redisReader* reader_ = nullptr;
  state state_ = state::idle;
  std::string output_;   // queued, not yet being written
  std::string writing_;  // the write in flight
  bool write_pending_ = false;
  std::chrono::steady_clock::time_point connect_started_{};
  std::deque<pending> pending_;
  std::vector<char> read_buffer_;
  push_handler push_;
  std::function<void(std::string_view)> on_lost_;
};

// Reply helpers (the reply types are hiredis's).
bool reply_is_error(const redisReply* r) noexcept;
std::string_view reply_text(const redisReply* r) noexcept;  // string/status/error; "" otherwise

}  // namespace rendezvous::server
