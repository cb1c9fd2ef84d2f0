#pragma once
// Which endpoint an HTTP request target names (docs/protocol.md, "Endpoints"), and
// its query parameters. Pure parsing: no sockets.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rendezvous::protocol {

enum class endpoint_kind {
  room,     // /rooms/{room}     (WebSocket)
  lobby,    // /{id}             (WebSocket, libdatachannel mode)
  healthz,  // /healthz
  readyz,   // /readyz
  metrics,  // /metrics
  root,     // /
  unknown,  // anything else: 404
};

struct endpoint {
  endpoint_kind kind = endpoint_kind::unknown;
  std::string name;  // percent-decoded room name or lobby id; NOT yet validated
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order

  // First value of a query parameter, if present.
  std::optional<std::string_view> param(std::string_view key) const;
};

// Parses an origin-form request target ("/rooms/x?peer=a&resume=..").
// Malformed percent-escapes make the target unknown.
endpoint parse_endpoint(std::string_view target);

// Percent-decodes `in` ('+' stays '+'); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view in);

}  // namespace rendezvous::protocol
