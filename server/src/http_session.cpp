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

void start_http_session(connection_socket&& socket, connection_tickets tickets, server_state& state,
                        net::ssl::context* tls) {
  if (tls) {
    std::make_shared<http_session<tls_stream>>(tls_stream(std::move(socket), *tls), std::move(tickets), state)
        ->run();
  } else {
    std::make_shared<http_session<plain_stream>>(plain_stream(std::move(socket)), std::move(tickets), state)
        ->run();
  }
}

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, connection_tickets tickets, server_state& state)
    : stream_(std::move(stream)), tickets_(std::move(tickets)), state_(state) {}

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
    if (!tickets_.key && !count_forwarded_client(req)) return;
    // Hand the stream over; this http_session ends when this handler returns.
    std::make_shared<websocket_session<Stream>>(std::move(stream_), std::move(tickets_), state_)
        ->run(std::move(req), std::move(target));
    return;
  }
  send(std::make_shared<response>(answer_plain_request(req, target, state_)));
}

template <class Stream>
bool http_session<Stream>::count_forwarded_client(const request& req) {
  beast::error_code ec;
  auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
  if (ec) return false;  // gone: nothing to upgrade
  const auto client =
      forwarded_client(peer.address(), req["X-Forwarded-For"], state_.settings().trusted_proxies)
          .value_or(peer.address());
  tickets_.key = state_.key_of(client);
  auto counted = state_.limits().try_connect(tickets_.key, steady_now_us());
  if (!counted.refused) {
    tickets_.connection = std::move(counted.connection);
    tickets_.handshake = std::move(counted.handshake);
    return true;
  }
  state_.note_refusal(*counted.refused, counted.log);
  auto res = std::make_shared<response>(http::status::too_many_requests, req.version());
  res->set(http::field::server, "rendezvous");
  res->set(http::field::retry_after, "1");
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->body() = *counted.refused == refusal_reason::connections
                    ? "too many connections from this address\n"
                    : "too many connections in handshake from this address\n";
  res->keep_alive(false);
  res->prepare_payload();
  send(std::move(res));
  return false;
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
