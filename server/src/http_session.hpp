#pragma once
// One HTTP connection (plain or TLS): answers health, readiness and metrics,
// and hands WebSocket upgrades for room and lobby paths to a websocket_session.
//
// Threading: runs on the strand the listener gave the socket; owned by the
// shared_from_this() of its pending handler.
#include "server_state.hpp"
#include "websocket_session.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>

namespace rendezvous::server {

// Starts serving an accepted socket; `tls` non-null means https/wss.
void start_http_session(connection_socket&& socket, connection_tickets tickets, server_state& state,
                        boost::asio::ssl::context* tls);

template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
 public:
  http_session(Stream&& stream, connection_tickets tickets, server_state& state);
  void run();

 private:
  using request = boost::beast::http::request<boost::beast::http::string_body>;
  using response = boost::beast::http::response<boost::beast::http::string_body>;

  void on_handshake(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void send(std::shared_ptr<response> res);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void close();
  // Behind a trusted proxy: counts the client that X-Forwarded-For names;
  // false (and a 429 sent) when that client is over its limits.
  bool count_forwarded_client(const request& req);

  Stream stream_;
  connection_tickets tickets_;
  server_state& state_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace rendezvous::server
