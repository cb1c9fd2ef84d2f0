#pragma once
// welcome.iceServers: STUN URIs, plus ephemeral TURN credentials in coturn's
// REST form (username "<unix expiry>:<peer id>", credential
// base64(HMAC-SHA1(secret, username))) when a TURN secret is configured.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::server {

struct ice_settings {
  std::vector<std::string> stun_uris;
  std::vector<std::string> turn_uris;
  std::string turn_secret;  // empty: no TURN entry
  std::int64_t turn_ttl_s = 86400;
};

// The coturn REST credential for `username`.
std::string turn_credential(std::string_view secret, std::string_view username);

nlohmann::json make_ice_servers(const ice_settings& s, std::string_view peer_id, std::int64_t now_s);

}  // namespace rendezvous::server
