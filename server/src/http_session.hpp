#pragma once
// One plain HTTP connection: answers health, readiness and metrics, and hands
// WebSocket upgrades for room and lobby paths to a websocket_session.
//
// Threading: runs on the strand the listener gave the socket; owned by the
// shared_from_this() of its pending handler.
#include "server_state.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>

namespace rendezvous::server {

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(boost::asio::ip::tcp::socket&& socket, server_state& state);
  void run();

 private:
  using request = boost::beast::http::request<boost::beast::http::string_body>;
  using response = boost::beast::http::response<boost::beast::http::string_body>;

  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void send(std::shared_ptr<response> res);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);

  boost::beast::tcp_stream stream_;
  server_state& state_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace rendezvous::server
