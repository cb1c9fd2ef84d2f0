#pragma once
// Answers to plain HTTP requests (docs/protocol.md, "Endpoints"): health, readiness,
// metrics, 426 on WebSocket paths, 404 elsewhere.
#include "server_state.hpp"

#include <rendezvous/protocol/endpoint.hpp>

#include <boost/beast/http.hpp>

namespace rendezvous::server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// Whether `req` is a WebSocket upgrade this server takes (room or lobby path).
bool is_websocket_join(const http_request& req, const protocol::endpoint& target);

http_response answer_plain_request(const http_request& req, const protocol::endpoint& target,
                                   server_state& state);

}  // namespace rendezvous::server
