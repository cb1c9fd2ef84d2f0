#include "http_session.hpp"

#include "http_routes.hpp"
#include "websocket_session.hpp"

#include <rendezvous/protocol/endpoint.hpp>

#include <boost/asio/dispatch.hpp>
#include <spdlog/spdlog.h>

namespace rendezvous::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {
// An upgrade request has no body; anything bigger than this is not ours.
constexpr std::size_t max_header_bytes = 16 * 1024;
constexpr std::size_t max_body_bytes = 4 * 1024;
}  // namespace

http_session::http_session(net::ip::tcp::socket&& socket, server_state& state)
    : stream_(std::move(socket)), state_(state) {}

void http_session::run() {
  // The socket was accepted onto its own strand; start there.
  net::dispatch(stream_.get_executor(), beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
  parser_.emplace();  // a fresh parser per request
  parser_->header_limit(max_header_bytes);
  parser_->body_limit(max_body_bytes);
  stream_.expires_after(state_.settings().handshake_timeout);
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec) {
    if (ec != beast::error::timeout && ec != net::error::operation_aborted)
      spdlog::debug("http read failed: {}", ec.message());
    return;
  }
  auto req = parser_->release();
  auto target = protocol::parse_endpoint(req.target());
  if (is_websocket_join(req, target)) {
    // Hand the socket over; this http_session ends when this handler returns.
    std::make_shared<websocket_session>(std::move(stream_), state_)->run(std::move(req), std::move(target));
    return;
  }
  send(std::make_shared<http_response>(answer_plain_request(req, target, state_)));
}

void http_session::send(std::shared_ptr<response> res) {
  bool keep_alive = res->keep_alive();
  // The response lives in the handler until the write completes.
  http::async_write(stream_, *res,
                    [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t bytes) {
                      self->on_write(keep_alive, ec, bytes);
                    });
}

void http_session::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  if (ec) return;
  if (!keep_alive) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

}  // namespace rendezvous::server
