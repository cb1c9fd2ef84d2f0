#include <rendezvous/protocol/errors.hpp>

#include <array>

namespace rendezvous::protocol {

namespace {

// Indexed by error_code; the order must follow the enum.
constexpr std::array<std::string_view, error_code_count> wire_names = {
    "bad-request", "bad-message", "reserved-type", "peer-not-found", "message-too-large", "rate-limited",
    "room-full",   "id-taken",    "unauthorized",  "forbidden",      "unavailable",       "internal",
};
static_assert(static_cast<int>(error_code::internal) + 1 == error_code_count,
              "wire_names must list every error_code");

}  // namespace

std::string_view to_string(error_code code) noexcept {
  const auto i = static_cast<std::size_t>(code);
  // An out-of-range value can only come from a cast; give it a safe name.
  return i < wire_names.size() ? wire_names[i] : std::string_view{"internal"};
}

std::optional<error_code> error_code_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < wire_names.size(); ++i) {
    if (wire_names[i] == name) return static_cast<error_code>(i);
  }
  return std::nullopt;
}

close_code close_code_for(error_code code) noexcept {
  switch (code) {
    case error_code::bad_request: return close_code::bad_request;
    case error_code::unauthorized: return close_code::unauthorized;
    case error_code::forbidden: return close_code::forbidden;
    case error_code::id_taken: return close_code::id_taken;
    case error_code::room_full: return close_code::too_many;
    case error_code::rate_limited: return close_code::too_many;
    case error_code::unavailable: return close_code::unavailable;
    case error_code::message_too_large: return close_code::too_big;
    case error_code::internal: return close_code::internal_error;
    // These never close the connection on their own (docs/protocol.md, "Error codes");
    // if the server does close because of one, it is a policy violation.
    case error_code::bad_message:
    case error_code::reserved_type:
    case error_code::peer_not_found: return close_code::policy;
  }
  return close_code::policy;
}

std::string_view to_string(leave_reason reason) noexcept {
  switch (reason) {
    case leave_reason::closed: return "closed";
    case leave_reason::timeout: return "timeout";
    case leave_reason::kicked: return "kicked";
  }
  return "closed";
}

}  // namespace rendezvous::protocol
