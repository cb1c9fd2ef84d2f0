#include "listener.hpp"

#include "http_session.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <spdlog/spdlog.h>

#include <string_view>
#include <utility>

namespace rendezvous::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
// Refuses an accepted socket at once, holding nothing: a fixed response
// written without waiting (it fits any empty send buffer), what the client
// has already sent read away so that the close is a FIN and not a reset that
// could destroy the response, and the descriptor closed on return. With TLS
// nothing is written: a TLS handshake would cost more than the refusal saves.
void refuse_socket(connection_socket& socket, bool tls, std::string_view status, int retry_after_s,
                   std::string_view why) {
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  if (!tls) {
    const std::string res = fmt::format(
        "HTTP/1.1 {}\r\nServer: rendezvous\r\nRetry-After: {}\r\nConnection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{}\n",
        status, retry_after_s, why.size() + 1, why);
    socket.write_some(net::buffer(res), ec);
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  char sink[2048];
  for (int i = 0; i < 4; ++i) {
    socket.read_some(net::buffer(sink), ec);
    if (ec) break;  // would_block: nothing more sent yet; eof; reset
  }
  socket.close(ec);
}
}  // namespace

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
    admit(std::move(socket));
  }
  do_accept();
}

void listener::admit(connection_socket socket) {
  // On the acceptor's strand; nothing has been read from the socket yet.
  const auto now = steady_now_us();
  connection_tickets tickets;
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // gone already
  // A trusted proxy speaks for many clients: those are counted by
  // X-Forwarded-For once their request is read (http_session). The address
  // comes before the budget, so that what one address is refused never
  // shows in rendezvous_sockets_open.
  if (!in_any(state_.settings().trusted_proxies, peer.address())) {
    tickets.key = state_.key_of(peer.address());
    auto counted = state_.limits().try_connect(tickets.key, now);
    if (counted.refused) {
      state_.note_refusal(*counted.refused, counted.log);
      return refuse_socket(socket, tls_ != nullptr, "429 Too Many Requests", 1,
                           *counted.refused == refusal_reason::connections
                               ? "too many connections from this address"
                               : "too many connections in handshake from this address");
    }
    tickets.connection = std::move(counted.connection);
    tickets.handshake = std::move(counted.handshake);
  }
  tickets.socket = state_.sockets().try_open();
  if (!tickets.socket) {
    state_.note_budget_refusal(now);
    return refuse_socket(socket, tls_ != nullptr, "503 Service Unavailable", 5,
                         "server is at its socket budget");
  }
  socket.set_option(tcp::no_delay(true), ec);
  start_http_session(std::move(socket), std::move(tickets), state_, tls_);
}

}  // namespace rendezvous::server
