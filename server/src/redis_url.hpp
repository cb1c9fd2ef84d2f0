#pragma once
// The redis_url setting: where the backplane's Redis is.
//
//   redis://[:password@]host[:port][/db]   TCP (IPv6 hosts in brackets)
//   unix:///path/to/redis.sock[?db=N]      a unix socket (tests use one)
#include <cstdint>
#include <string>
#include <string_view>

namespace rendezvous::server {

struct redis_endpoint {
  std::string host;  // TCP; empty for a unix socket
  std::uint16_t port = 6379;
  std::string unix_path;  // unix socket; empty for TCP
  std::string password;   // AUTH when not empty
  unsigned db = 0;        // SELECT when not 0

  // For logs: never the password.
  std::string display() const;
};

// Parses `text` into `out`; returns "" or what was expected.
std::string parse_redis_url(std::string_view text, redis_endpoint& out);

}  // namespace rendezvous::server
