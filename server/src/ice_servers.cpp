#include "ice_servers.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace rendezvous::server {

std::string turn_credential(std::string_view secret, std::string_view username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &mac_len);
  std::string out(4 * ((mac_len + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

nlohmann::json make_ice_servers(const ice_settings& s, std::string_view peer_id, std::int64_t now_s) {
  auto servers = nlohmann::json::array();
  if (!s.stun_uris.empty()) servers.push_back({{"urls", s.stun_uris}});
  if (!s.turn_uris.empty() && !s.turn_secret.empty()) {
    std::string username = std::to_string(now_s + s.turn_ttl_s) + ":" + std::string(peer_id);
    servers.push_back({{"urls", s.turn_uris},
                       {"username", username},
                       {"credential", turn_credential(s.turn_secret, username)}});
  }
  return servers;
}

}  // namespace rendezvous::server
