#include "listener.hpp"

#include "http_session.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <spdlog/spdlog.h>

#include <utility>

namespace rendezvous::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string format_endpoint(const tcp::endpoint& ep) {
  auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" + std::to_string(ep.port());
}

listener::listener(net::io_context& ioc, const tcp::endpoint& endpoint, server_state& state,
                   net::ssl::context* tls)
    : ioc_(ioc),
      acceptor_(net::make_strand(ioc)),
      backoff_(acceptor_.get_executor()),
      state_(state),
      tls_(tls) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  if (endpoint.address().is_v6()) acceptor_.set_option(net::ip::v6_only(false));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

tcp::endpoint listener::local_endpoint() const { return acceptor_.local_endpoint(); }

void listener::run() {
  net::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void listener::stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
    self->backoff_.cancel();
  });
}

void listener::do_accept() {
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(net::make_strand(ioc_.get_executor()),
                         boost::beast::bind_front_handler(&listener::on_accept, shared_from_this()));
}

void listener::on_accept(boost::beast::error_code ec, connection_socket socket) {
  if (!acceptor_.is_open()) return;
  if (ec) {
    if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space) {
      // Out of file descriptors: pause instead of spinning on the same error,
      // say so once per episode, and be not ready until accepting again.
      if (!paused_since_) {
        paused_since_ = std::chrono::steady_clock::now();
        state_.set_accepting(false);
        state_.stats().accept_pauses.Increment();
        spdlog::warn("accept failed: {}: pausing accepts, retrying every 50 ms until a descriptor is free",
                     ec.message());
      }
      backoff_.expires_after(std::chrono::milliseconds(50));
      backoff_.async_wait([self = shared_from_this()](boost::beast::error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    spdlog::warn("accept failed: {}", ec.message());
  } else {
    if (paused_since_) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - *std::exchange(paused_since_, std::nullopt));
      state_.set_accepting(true);
      spdlog::info("accepting again after {} ms without file descriptors", ms.count());
    }
    socket.set_option(tcp::no_delay(true), ec);
    start_http_session(std::move(socket), state_, tls_);
  }
  do_accept();
}

}  // namespace rendezvous::server
