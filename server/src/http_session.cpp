#include "http_session.hpp"

#include "http_limits.hpp"
#include "http_routes.hpp"

#include <rendezvous/protocol/endpoint.hpp>

#include <boost/asio/dispatch.hpp>
#include <spdlog/spdlog.h>

namespace rendezvous::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

void start_http_session(connection_socket&& socket, server_state& state, net::ssl::context* tls) {
  if (tls) {
    std::make_shared<http_session<tls_stream>>(tls_stream(std::move(socket), *tls), state)->run();
  } else {
    std::make_shared<http_session<plain_stream>>(plain_stream(std::move(socket)), state)->run();
  }
}

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, server_state& state)
    : stream_(std::move(stream)), state_(state) {}

template <class Stream>
void http_session<Stream>::run() {
  // The socket was accepted onto its own strand; start there.
  net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      beast::get_lowest_layer(self->stream_).expires_after(self->state_.settings().handshake_timeout);
      self->stream_.async_handshake(net::ssl::stream_base::server,
                                    beast::bind_front_handler(&http_session::on_handshake, self));
    } else {
      self->do_read();
    }
  });
}

template <class Stream>
void http_session<Stream>::on_handshake(beast::error_code ec) {
  if (ec) {
    spdlog::debug("tls handshake failed: {}", ec.message());
    return;
  }
  do_read();
}

template <class Stream>
void http_session<Stream>::do_read() {
  parser_.emplace();  // a fresh parser per request
  limit_request_parser(*parser_);
  beast::get_lowest_layer(stream_).expires_after(state_.settings().handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) return close();
  if (ec) {
    if (ec != beast::error::timeout && ec != net::error::operation_aborted)
      spdlog::debug("http read failed: {}", ec.message());
    return;
  }
  auto req = parser_->release();
  auto target = protocol::parse_endpoint(req.target());
  if (is_websocket_join(req, target)) {
    // Hand the stream over; this http_session ends when this handler returns.
    std::make_shared<websocket_session<Stream>>(std::move(stream_), state_)
        ->run(std::move(req), std::move(target));
    return;
  }
  send(std::make_shared<response>(answer_plain_request(req, target, state_)));
}

template <class Stream>
void http_session<Stream>::send(std::shared_ptr<response> res) {
  bool keep_alive = res->keep_alive();
  // The response lives in the handler until the write completes.
  http::async_write(stream_, *res,
                    [self = this->shared_from_this(), res, keep_alive](
                        beast::error_code ec, std::size_t bytes) { self->on_write(keep_alive, ec, bytes); });
}

template <class Stream>
void http_session<Stream>::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  if (ec) return;
  if (!keep_alive) return close();
  do_read();
}

template <class Stream>
void http_session<Stream>::close() {
  beast::error_code ec;
  if constexpr (std::is_same_v<Stream, tls_stream>) {
    // No TLS close_notify round trip: the response is complete (Content-Length).
    beast::get_lowest_layer(stream_).socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  } else {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  }
}

template class http_session<plain_stream>;
template class http_session<tls_stream>;

}  // namespace rendezvous::server
