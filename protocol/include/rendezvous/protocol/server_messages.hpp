#pragma once
// Messages the server itself sends (reserved types), serialized to text.
#include <rendezvous/protocol/errors.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::protocol {

struct welcome_info {
  std::string id;
  std::string room;
  std::vector<std::string> peers;  // others already in the room, oldest first
  std::string resume_token;
  nlohmann::json ice_servers = nlohmann::json::array();  // [{"urls":[...]},...]
  bool resumed = false;                                  // "resumed":true only on a resume
};

std::string make_welcome(const welcome_info& info);
std::string make_peer_joined(std::string_view id);
std::string make_peer_left(std::string_view id, leave_reason reason);
// `id` (optional) names the peer the error is about, e.g. the unknown target.
std::string make_error(error_code code, std::string_view message, std::string_view id = {});
// `t_raw` is the raw JSON of the ping's "t" value, echoed untouched if non-empty.
std::string make_pong(std::string_view t_raw);

}  // namespace rendezvous::protocol
