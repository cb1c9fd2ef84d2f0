#pragma once
// One WebSocket peer, as glue around one state:
//
//   upgrading --on_accept--> open --begin_close--> closing --read ends--> closed
//       \________________ handshake failed ______________________________/
//
//   upgrading  the 101 is being written. Admission has already decided: the
//              peer is in the registry (so it is reachable the moment it sees
//              its socket open) and its first messages are queued behind the
//              response, or a refusal waits to be sent once the upgrade is done.
//   open       one read pending at a time (none while back-pressure pauses
//              it), frames relayed through the registry.
//   closing    the close frame is queued behind what is to be flushed; the
//              read loop runs until the peer answers or the close timer ends it.
//   closed     the read loop has ended; late deliveries go to hold_late.
//
// The parts it owns: `membership_` (the connection slot and the registry
// place, left exactly once), the outbound queue inside `ws_`'s next layer
// (outbound_stream.hpp: the one bound, the write in flight), and the token
// bucket. Admission is a pure step (admission.hpp).
//
// Threading: every member below is touched only on this session's strand
// (the socket's executor). Other threads reach the session only through
// deliver(), replaced() and shutdown(), which post to that strand. The
// session is owned by the shared_from_this() its pending handlers hold.
#include "admission.hpp"
#include "logging.hpp"
#include "membership.hpp"
#include "outbound_stream.hpp"
#include "peer_link.hpp"
#include "room_registry.hpp"
#include "server_state.hpp"
#include "transport.hpp"

#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/errors.hpp>
#include <rendezvous/protocol/token_bucket.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <optional>

namespace rendezvous::server {

// What the server keeps of every live session, whatever its transport.
class session_base : public peer_link {
 public:
  // Server drain: close with 1001 once what is queued is written. Any thread.
  virtual void shutdown() = 0;
};

// Who is on the other end, as logs name it.
struct client_address {
  std::string remote;  // the client: TCP peer, or X-Forwarded-For via a trusted proxy
  std::string proxy;   // the trusted proxy's address when `remote` came from it
};

// Stream is plain_stream (ws://) or tls_stream (wss://); both are instantiated
// in websocket_session.cpp.
template <class Stream>
class websocket_session final : public session_base,
                                public std::enable_shared_from_this<websocket_session<Stream>> {
 public:
  websocket_session(Stream&& stream, connection_tickets tickets, server_state& state);
  ~websocket_session() override;

  // Accepts the upgrade in `req` for the endpoint it names.
  void run(boost::beast::http::request<boost::beast::http::string_body> req, protocol::endpoint target);

  void deliver(shared_message msg) override;
  void replaced() override;
  void shutdown() override;

 private:
  enum class phase { upgrading, open, closing, closed };

  // Upgrading
  void admit();
  void admitted(protocol::result<admission> admitted);
  void accept();
  void on_accept(boost::beast::error_code ec);

  // Open: the read loop and what a frame does
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle_frame(std::string_view text);
  void pause_reading();
  void arm_keepalive();
  void keepalive_tick(boost::beast::error_code ec);
  void on_drained(boost::beast::error_code ec);

  // Outbound: everything leaves through send()
  void send(shared_message msg);
  void reply_error(protocol::error_code code, std::string_view message, std::string_view id = {});
  void on_deliver(shared_message msg);

  // Closing: the only transition out of open
  void refuse(const protocol::failure& refusal);
  // Leaves the registry as `how` and closes with `code`, after what is queued
  // when `flush`; otherwise what was not written is handed back for a resume.
  // `overflowed`: the message that found the queue full, held after the rest.
  void begin_close(leave_kind how, protocol::close_code code, bool flush, shared_message overflowed = {});
  void start_close_handshake();

  void leave(leave_kind how, std::deque<shared_message> unsent = {});
  void log_peer_event(spdlog::level::level_enum level, std::string_view event,
                      std::initializer_list<log_field> fields) const;

  boost::beast::websocket::stream<outbound_stream<Stream>> ws_;
  server_state& state_;
  connection_tickets tickets_;  // the socket's budget place and its address's counts
  phase phase_ = phase::upgrading;
  membership membership_;
  client_address client_;
  protocol::endpoint target_;
  boost::beast::http::request<boost::beast::http::string_body> request_;  // until the upgrade is done
  // Upgrading: what to do once the handshake is done instead of opening
  // (a refusal to send, or a close requested meanwhile).
  std::optional<protocol::failure> refusal_;
  bool quiet_refusal_ = false;  // refused by the join rate: logged per address, not per connection
  std::optional<protocol::close_code> close_code_;  // chosen by begin_close
  bool heard_ = true;    // a frame (data or control) arrived since the last keepalive tick
  bool pinged_ = false;  // the last tick sent a ping
  boost::beast::flat_buffer buffer_;
  connection_timer timer_;  // keepalive ticks while open, then bounds the closing handshake
  protocol::token_bucket bucket_;
  std::size_t strikes_ = 0;
};

}  // namespace rendezvous::server
