#pragma once
// Error codes of docs/protocol.md ("Error codes") and the WebSocket close codes that go
// with refusals (4000 + HTTP-like status).
#include <cstdint>
#include <optional>
#include <string_view>

namespace rendezvous::protocol {

enum class error_code {
  bad_request,
  bad_message,
  reserved_type,
  peer_not_found,
  message_too_large,
  rate_limited,
  room_full,
  id_taken,
  unauthorized,
  forbidden,
  unavailable,
  internal,
};
inline constexpr int error_code_count = 12;

// Wire name, e.g. error_code::peer_not_found -> "peer-not-found".
std::string_view to_string(error_code code) noexcept;
std::optional<error_code> error_code_from_string(std::string_view name) noexcept;

// WebSocket close codes the server uses.
enum class close_code : std::uint16_t {
  normal = 1000,
  going_away = 1001,  // server draining / shutting down
  policy = 1008,      // outbound queue overflow (slow consumer)
  too_big = 1009,     // frame over max_message_bytes
  internal_error = 1011,
  bad_request = 4400,
  unauthorized = 4401,
  forbidden = 4403,
  id_taken = 4409,     // also: a half-open connection replaced by a resume
  too_many = 4429,     // room full, rate limited
  unavailable = 4503,  // draining, over capacity (rooms, connections)
};

// The close code that follows an `error` of this code when the server ends
// the connection because of it (join refusals, rate-limit close).
close_code close_code_for(error_code code) noexcept;

// Why a peer left for good; sent in peer-left `reason`.
enum class leave_reason { closed, timeout, kicked };
std::string_view to_string(leave_reason reason) noexcept;

}  // namespace rendezvous::protocol
