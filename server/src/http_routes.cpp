#include "http_routes.hpp"

#include <boost/beast/websocket/rfc6455.hpp>

namespace rendezvous::server {

namespace http = boost::beast::http;
using protocol::endpoint_kind;

namespace {
http_response text_response(const http_request& req, http::status status, std::string body,
                            std::string_view content_type = "text/plain; charset=utf-8") {
  http_response res{status, req.version()};
  res.set(http::field::server, "rendezvous");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  if (req.method() != http::verb::head) res.body() = std::move(body);
  res.prepare_payload();
  if (req.method() == http::verb::head) res.content_length(body.size());
  return res;
}
}  // namespace

bool is_websocket_join(const http_request& req, const protocol::endpoint& target) {
  return boost::beast::websocket::is_upgrade(req) &&
         (target.kind == endpoint_kind::room || target.kind == endpoint_kind::lobby);
}

http_response answer_plain_request(const http_request& req, const protocol::endpoint& target,
                                   server_state& state) {
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = text_response(req, http::status::method_not_allowed, "method not allowed\n");
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (target.kind == endpoint_kind::root || target.kind == endpoint_kind::lobby ||
      target.kind == endpoint_kind::unknown) {
    // The demo page and browser module; a single-segment path that is not a
    // file stays a lobby path (426 below).
    auto raw = std::string_view(req.target());
    auto path = protocol::percent_decode(raw.substr(0, raw.find('?')));
    if (path) {
      if (auto* f = state.settings().web->find(*path)) {
        auto res = text_response(req, http::status::ok, f->body, f->content_type);
        res.set(http::field::cache_control, "no-cache");
        res.set("X-Content-Type-Options", "nosniff");
        return res;
      }
    }
  }
  switch (target.kind) {
    case endpoint_kind::healthz: return text_response(req, http::status::ok, "ok\n");
    case endpoint_kind::readyz:
      if (state.draining()) return text_response(req, http::status::service_unavailable, "draining\n");
      if (!state.accepting())
        return text_response(req, http::status::service_unavailable,
                             "cannot accept: out of file descriptors\n");
      if (state.sockets().spent())
        return text_response(req, http::status::service_unavailable,
                             "at the socket budget (file descriptors)\n");
      if (state.over_capacity())
        return text_response(req, http::status::service_unavailable, "over capacity\n");
      if (auto why = state.registry().not_ready(); !why.empty())
        return text_response(req, http::status::service_unavailable, why + "\n");
      return text_response(req, http::status::ok, "ready\n");
    case endpoint_kind::metrics:
      state.stats().addresses_tracked.Set(static_cast<double>(state.limits().tracked()));
      state.stats().sockets_open.Set(static_cast<double>(state.sockets().open()));
      return text_response(req, http::status::ok, state.stats().serialize(), "text/plain; version=0.0.4");
    case endpoint_kind::room:
    case endpoint_kind::lobby: {
      auto res = text_response(req, http::status::upgrade_required, "this path takes a WebSocket upgrade\n");
      res.set(http::field::upgrade, "websocket");
      res.set(http::field::connection, "Upgrade");
      res.keep_alive(req.keep_alive());  // setting Connection dropped its close/keep-alive token
      return res;
    }
    case endpoint_kind::root:
    case endpoint_kind::unknown: break;
  }
  return text_response(req, http::status::not_found, "not found\n");
}

}  // namespace rendezvous::server
