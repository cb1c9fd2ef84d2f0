#pragma once
// One WebSocket peer: reads frames, hands them to the protocol rules and the
// registry, and writes what others send it through a bounded queue with one
// write in flight.
//
// Threading: every member below is touched only on this session's strand
// (the socket's executor). Other threads reach the session only through
// deliver(), replaced() and shutdown(), which post to that strand. The
// session is owned by the shared_from_this() its pending handlers hold.
#include "coalescing_stream.hpp"
#include "logging.hpp"
#include "message_queue.hpp"
#include "peer_link.hpp"
#include "room_registry.hpp"
#include "server_state.hpp"

#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/errors.hpp>
#include <rendezvous/protocol/token_bucket.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <optional>

namespace rendezvous::server {

// What the server keeps of every live session, whatever its transport.
class session_base : public peer_link {
 public:
  // Server drain: close with 1001 once what is queued is written. Any thread.
  virtual void shutdown() = 0;
};

using plain_stream = boost::beast::tcp_stream;
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Stream is plain_stream (ws://) or tls_stream (wss://); both are instantiated
// in websocket_session.cpp.
template <class Stream>
class websocket_session final : public session_base,
                                public std::enable_shared_from_this<websocket_session<Stream>> {
 public:
  websocket_session(Stream&& stream, server_state& state);
  ~websocket_session() override;

  // Accepts the upgrade in `req` for the endpoint it names.
  void run(boost::beast::http::request<boost::beast::http::string_body> req, protocol::endpoint target);

  void deliver(shared_message msg) override;
  void replaced() override;
  void shutdown() override;

 private:
  void on_accept(boost::beast::error_code ec);
  void admit();
  void join();
  // Sets remote_ (and proxy_) from the TCP peer and, via a trusted proxy,
  // X-Forwarded-For.
  void note_remote(std::string_view x_forwarded_for);
  // An event line (logging.hpp) with this connection's remote (and proxy) added.
  void log_peer_event(spdlog::level::level_enum level, std::string_view event,
                      std::initializer_list<log_field> fields) const;
  void refuse(protocol::error_code code, std::string message);

  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle_frame(std::string_view text);
  void reply_error(protocol::error_code code, std::string_view message, std::string_view id = {});

  void on_deliver(shared_message msg);
  void enqueue(shared_message msg);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);

  // Ends the membership once (`kind` decides what the room sees) and closes
  // the connection with `code`, after the queue drains if `flush`.
  void end(leave_kind kind, protocol::close_code code, bool flush);
  void do_close();
  void on_close(boost::beast::error_code ec);
  void leave_registry(leave_kind kind, std::deque<shared_message> unsent = {});

  // Frames queued while a socket write is in flight leave in one write.
  boost::beast::websocket::stream<coalescing_stream<Stream>> ws_;
  server_state& state_;
  std::string remote_;         // the client: TCP peer, or X-Forwarded-For via a trusted proxy
  std::string proxy_;          // the trusted proxy's address when remote_ came from it
  std::string origin_;         // Origin header of the upgrade, if any
  std::string authorization_;  // Authorization header of the upgrade, if any
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer close_timer_;
  protocol::endpoint target_;
  std::optional<peer_ref> self_;              // set once joined
  std::optional<protocol::failure> refusal_;  // decided before the upgrade, sent after it
  bool accepted_ = false;                     // WebSocket handshake done
  bool counted_ = false;                      // holds a max_connections slot
  bool left_ = false;                         // registry told; later deliveries go to hold_late
  leave_kind leave_kind_ = leave_kind::closed;
  std::optional<protocol::close_code> closing_;  // close requested
  bool close_started_ = false;
  bool flush_before_close_ = false;

  message_queue queue_;  // front() is being written while writing_
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool read_paused_ = false;  // back-pressure: no read pending while the queue drains

  protocol::token_bucket bucket_;
  std::size_t strikes_ = 0;
  std::string scratch_;
};

}  // namespace rendezvous::server
