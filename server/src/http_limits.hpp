#pragma once
// How http_session reads one request: a fresh Beast parser with these limits.
// tests/fuzz/http_fuzz.cpp configures its parser with the same call.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>

namespace rendezvous::server {

// An upgrade request has no body; anything bigger than this is not ours.
inline constexpr std::size_t max_header_bytes = 16 * 1024;
inline constexpr std::size_t max_body_bytes = 4 * 1024;

inline void limit_request_parser(
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser) {
  parser.header_limit(max_header_bytes);
  parser.body_limit(max_body_bytes);
}

}  // namespace rendezvous::server
