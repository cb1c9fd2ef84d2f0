#pragma once
// Accepts TCP connections, each onto a fresh strand, and starts an
// http_session for it. Keeps accepting after errors (with a short pause when
// out of file descriptors, so it does not spin).
#include "server_state.hpp"
#include "transport.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace rendezvous::server {

// "127.0.0.1:8080" or "[::1]:8080", as logs and the listening line print it.
std::string format_endpoint(const boost::asio::ip::tcp::endpoint& ep);

class listener : public std::enable_shared_from_this<listener> {
 public:
  // Binds and listens; throws boost::system::system_error if it cannot.
  // `tls` non-null: every connection is https/wss with that context.
  listener(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint, server_state& state,
           boost::asio::ssl::context* tls = nullptr);

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void run();
  void stop();  // posts: closes the acceptor

 private:
  void do_accept();
  void on_accept(boost::beast::error_code ec, connection_socket socket);
  // Counts the socket against the budget and its address's limits, then
  // serves it, or refuses it at once without reading it.
  void admit(connection_socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  server_state& state_;
  boost::asio::ssl::context* tls_;
  std::optional<std::chrono::steady_clock::time_point> paused_since_;  // out of descriptors since
};

}  // namespace rendezvous::server
