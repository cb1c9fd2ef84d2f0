#pragma once
// The server address a client is given (ws://HOST:PORT[/BASE]) and the
// request targets it builds from it (docs/protocol.md, "Endpoints"). Pure: no I/O.
#include <optional>
#include <string>
#include <string_view>

namespace rendezvous::client {

struct server_url {
  bool tls = false;       // wss://
  std::string host;       // without brackets for IPv6
  std::string port;       // "80"/"443" when absent
  std::string base_path;  // "" or "/prefix" (no trailing slash)
};

// Parses ws://HOST[:PORT][/BASE] or wss://...; nullopt if malformed.
std::optional<server_url> parse_server_url(std::string_view url);

// Percent-encodes everything but the unreserved characters [A-Za-z0-9._~-].
std::string percent_encode(std::string_view in);

// "/BASE/rooms/ROOM?peer=ID&token=T&resume=R"; empty arguments are left out.
std::string room_target(const server_url& url, std::string_view room, std::string_view peer,
                        std::string_view token, std::string_view resume);

// "HOST:PORT" as the Host header wants it (IPv6 in brackets).
std::string host_header(const server_url& url);

}  // namespace rendezvous::client
