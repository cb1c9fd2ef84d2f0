#include "resp_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

namespace rendezvous::server {

namespace net = boost::asio;
using boost::system::error_code;

bool reply_is_error(const redisReply* r) noexcept { return !r || r->type == REDIS_REPLY_ERROR; }

std::string_view reply_text(const redisReply* r) noexcept {
  if (!r) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    return {r->str, r->len};
  return {};
}

resp_connection::resp_connection(redis_strand strand, redis_endpoint endpoint,
                                 std::chrono::milliseconds reply_timeout, std::size_t max_output_bytes)
    : strand_(std::move(strand)),
      endpoint_(std::move(endpoint)),
      reply_timeout_(reply_timeout),
      max_output_bytes_(max_output_bytes),
      socket_(strand_),
      resolver_(strand_),
      watchdog_(strand_),
      reader_(redisReaderCreate()),
      read_buffer_(16 * 1024) {}

resp_connection::~resp_connection() {
  if (reader_) redisReaderFree(reader_);
}

void resp_connection::connect(std::function<void(bool)> done) {
  state_ = state::connecting;
  connect_started_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();
  auto connected = [this, self, done](const error_code& ec) mutable {
    if (ec || state_ != state::connecting) {
      state_ = state::failed;
      return done(false);
    }
    on_connected(std::move(done));
  };
  arm_watchdog();
  if (!endpoint_.unix_path.empty()) {
    socket_.async_connect(net::local::stream_protocol::endpoint(endpoint_.unix_path), std::move(connected));
    return;
  }
  resolver_.async_resolve(endpoint_.host, std::to_string(endpoint_.port),
                          [this, self, connected = std::move(connected)](
                              const error_code& ec, net::ip::tcp::resolver::results_type results) mutable {
                            if (ec || results.empty() || state_ != state::connecting)
                              return connected(ec ? ec : net::error::host_not_found);
                            socket_.async_connect(
                                net::generic::stream_protocol::endpoint(results.begin()->endpoint()),
                                std::move(connected));
                          });
}

void resp_connection::on_connected(std::function<void(bool)> done) {
  if (endpoint_.unix_path.empty()) {
    error_code ignored;
    socket_.set_option(net::ip::tcp::no_delay(true), ignored);
  }
  state_ = state::up;
  start_read();
  // AUTH and SELECT go first; PING proves the connection answers at all.
  auto ok = std::make_shared<bool>(true);
  auto check = [ok](const redisReply* r) {
    if (reply_is_error(r)) *ok = false;
  };
  if (!endpoint_.password.empty()) command({"AUTH", endpoint_.password}, check);
  if (endpoint_.db != 0) {
    auto db = std::to_string(endpoint_.db);
    command({"SELECT", db}, check);
  }
  command({"PING"}, [this, self = shared_from_this(), ok, done = std::move(done)](const redisReply* r) {
    if (reply_is_error(r) || !*ok) {
      fail("Redis refused AUTH/SELECT/PING", false);
      return done(false);
    }
    done(true);
  });
}

bool resp_connection::command(const std::vector<std::string_view>& args, reply_handler handler) {
  if (state_ != state::up) return false;
  if (output_bytes() > max_output_bytes_) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* text = nullptr;
  int n = redisFormatCommandArgv(&text, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (n < 0) return false;
  output_.append(text, static_cast<std::size_t>(n));
  redisFreeCommand(text);
  pending_.push_back({std::move(handler), std::chrono::steady_clock::now()});
  if (!write_pending_) start_write();
  return true;
}

void resp_connection::start_write() {
  writing_.swap(output_);
  output_.clear();
  write_pending_ = true;
  net::async_write(socket_, net::buffer(writing_),
                   [this, self = shared_from_this()](const error_code& ec, std::size_t) {
                     write_pending_ = false;
                     writing_.clear();
                     if (ec) return fail("write failed: " + ec.message(), true);
                     if (state_ == state::up && !output_.empty()) start_write();
                   });
}

void resp_connection::start_read() {
  socket_.async_read_some(
      net::buffer(read_buffer_), [this, self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (state_ != state::up) return;
        if (ec)
          return fail(ec == net::error::eof ? "Redis closed the connection" : "read failed: " + ec.message(),
                      true);
        on_read(n);
      });
}

void resp_connection::on_read(std::size_t n) {
  if (redisReaderFeed(reader_, read_buffer_.data(), n) != REDIS_OK) return fail("bad reply from Redis", true);
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) return fail("bad reply from Redis", true);
    if (!reply) break;
    dispatch(static_cast<redisReply*>(reply));
    if (state_ != state::up) return;  // a handler closed us
  }
  start_read();
}

void resp_connection::dispatch(redisReply* reply) {
  std::unique_ptr<redisReply, void (*)(void*)> owned(reply, freeReplyObject);
  // A published message on a subscriber connection is not a reply.
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
      reply->element[0]->type == REDIS_REPLY_STRING) {
    std::string_view kind(reply->element[0]->str, reply->element[0]->len);
    if (kind == "message" || kind == "smessage") {
      if (push_) push_(*reply);
      return;
    }
  }
  if (pending_.empty()) return fail("reply nobody asked for", true);
  auto handler = std::move(pending_.front().handler);
  pending_.pop_front();
  if (handler) handler(reply);
}

void resp_connection::arm_watchdog() {
  // Ticks at a quarter of the timeout while anything is outstanding.
  watchdog_.expires_after(reply_timeout_ / 4);
  watchdog_.async_wait([this, self = shared_from_this()](const error_code& ec) {
    if (ec || state_ == state::failed || state_ == state::idle) return;
    auto now = std::chrono::steady_clock::now();
    if (state_ == state::connecting) {
      // connect() armed us; a connect slower than the timeout fails.
      if (now - connect_started_ > reply_timeout_) {
        error_code ignored;
        socket_.close(ignored);  // the connect handler sees an error and reports it
        resolver_.cancel();
        return;
      }
    } else if (!pending_.empty() && now - pending_.front().sent > reply_timeout_) {
      return fail("no reply from Redis within " + std::to_string(reply_timeout_.count()) + " ms", true);
    }
    arm_watchdog();
  });
}

void resp_connection::fail(std::string_view why, bool notify) {
  if (state_ == state::failed) return;
  state_ = state::failed;
  error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  watchdog_.cancel();
  auto waiting = std::move(pending_);
  pending_.clear();
  for (auto& p : waiting)
    if (p.handler) p.handler(nullptr);
  if (notify && on_lost_) on_lost_(why);
}

void resp_connection::close() { fail("closed", false); }

}  // namespace rendezvous::server
