#pragma once
// The messages a room client receives and sends (docs/protocol.md: "Room
// mode", "Error codes"), parsed into values. Pure: no I/O. The canonical payloads are
// libdatachannel's: offer/answer carry `description`, candidate carries
// `candidate` + `mid`, role carries `seed`.
#include <rendezvous/protocol/errors.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rendezvous::client {

struct welcome_event {
  std::string id;
  std::string room;
  std::vector<std::string> peers;  // the others already there, oldest first
  std::string resume_token;
  nlohmann::json ice_servers = nlohmann::json::array();
  bool resumed = false;
};

struct peer_joined_event {
  std::string id;
};

struct peer_left_event {
  std::string id;
  std::string reason;  // closed | timeout | kicked
};

struct error_event {
  std::string code;     // wire name, e.g. "room-full" (see protocol::error_code)
  std::string message;  // human text
  std::string id;       // the peer it is about (peer-not-found), if any
  int close_code = 0;   // the WebSocket close code that ended the join, if any
  bool fatal = false;   // the client stopped because of it (refused join)

  // The protocol's code, if the server sent a known one.
  std::optional<protocol::error_code> known_code() const { return protocol::error_code_from_string(code); }
};

// A message relayed from another peer (offer, answer, candidate, role, bye,
// or anything else an application sends). `from` is the sender's id.
struct relayed_message {
  std::string type;
  std::string from;
  nlohmann::json body;  // the whole object as received
};

struct pong_event {};

using server_event =
    std::variant<welcome_event, peer_joined_event, peer_left_event, error_event, relayed_message, pong_event>;

// Parses one text frame from the server. A frame that is not an object with a
// string `type` (or a reserved type with missing fields) is an error value,
// never an exception.
std::optional<server_event> parse_server_frame(std::string_view text, std::string* why = nullptr);

// ---- payloads (libdatachannel-compatible) ----

enum class sdp_type { offer, answer };
std::string_view to_string(sdp_type t) noexcept;

struct description {
  sdp_type type = sdp_type::offer;
  std::string sdp;
};

struct candidate {
  std::string candidate;  // "a=candidate:..." or "candidate:..."; empty = end of candidates
  std::string mid;
};

// Role assignment message: the random seed, plus two optional fields of ours
// that other peers may ignore: `session` (a random id of the sending
// instance, to tell a restarted partner from a re-announcing one) and
// `iceRestart` (the sender can apply an ICE restart).
struct role_message {
  double seed = 0;
  std::string session;
  bool ice_restart = false;
};

nlohmann::json make_description_message(std::string_view to, const description& d);
nlohmann::json make_candidate_message(std::string_view to, const candidate& c);
nlohmann::json make_role_message(std::string_view to, const role_message& r);
nlohmann::json make_bye_message();  // to everyone in the room (no id)

std::optional<description> parse_description(const relayed_message& m);
std::optional<candidate> parse_candidate(const relayed_message& m);
std::optional<role_message> parse_role(const relayed_message& m);

}  // namespace rendezvous::client
