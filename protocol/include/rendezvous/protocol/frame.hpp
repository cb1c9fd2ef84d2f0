#pragma once
// Client frames: scanning, routing decisions and the sender-id rewrite.
//
// The hot path never builds a JSON tree: scan_frame() validates the whole
// frame as strict JSON (RFC 8259, UTF-8, bounded nesting) in one pass and
// remembers where the top-level members the server cares about are
// ("type", "id", "t"). Relaying then copies the original bytes with only the
// value of "id" replaced, so every other field (including numbers such as the
// role `seed`) passes through bit for bit.
#include <rendezvous/protocol/errors.hpp>
#include <rendezvous/protocol/result.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rendezvous::protocol {

inline constexpr int max_json_depth = 64;

// Byte span [begin, end) inside the frame text.
struct span {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool empty() const noexcept { return begin == end; }
};

struct scanned_frame {
  std::string_view text;          // the whole frame (not owned)
  std::string type;               // decoded value of the top-level "type"
  std::optional<std::string> id;  // decoded value of the top-level "id", if present
  span id_value;                  // raw bytes of the id value (with quotes), if present
  span t_value;                   // raw bytes of the top-level "t" value, if present
};

// Validates one text frame. Failures are bad-message: not JSON, not an
// object, no string "type", a non-string "id", duplicate "type"/"id" keys,
// nesting deeper than max_json_depth.
result<scanned_frame> scan_frame(std::string_view text);

// Whether `type` is one the server itself sends (clients may not).
bool is_reserved_type(std::string_view type) noexcept;

enum class peer_mode { room, lobby };

enum class action {
  pong,       // answer {"type":"pong"} (+ t)
  relay,      // to the peer named by frame.id, id rewritten to the sender
  broadcast,  // to every other peer of the room, id added as the sender
  drop,       // lobby message without a target: dropped and counted
  refuse,     // answer with error (decision.refusal)
};

struct decision {
  action what;
  error_code refusal = error_code::bad_message;  // meaningful when what == refuse
};

// What the server does with a well-formed frame from a peer in `mode`.
decision decide(const scanned_frame& frame, peer_mode mode) noexcept;

// Writes into `out` the frame as delivered to its recipient: the top-level
// "id" value replaced by (or, if absent, an "id" member added with) `sender`.
// `sender` must be a valid name (no escaping needed). `out` is cleared first;
// reuse it to avoid allocations.
void rewrite_sender(const scanned_frame& frame, std::string_view sender, std::string& out);

// Size of the rewritten frame, to reserve exactly once.
std::size_t rewritten_size(const scanned_frame& frame, std::string_view sender) noexcept;

}  // namespace rendezvous::protocol
