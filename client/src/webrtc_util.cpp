#include <rendezvous/client/server_url.hpp>
#include <rendezvous/client/webrtc_util.hpp>

namespace rendezvous::client {

std::vector<std::string> media_mids(std::string_view sdp) {
  std::vector<std::string> mids;
  std::size_t pos = 0;
  while (pos < sdp.size()) {
    auto end = sdp.find('\n', pos);
    if (end == std::string_view::npos) end = sdp.size();
    auto line = sdp.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("m=")) {
      mids.push_back(std::to_string(mids.size()));
    } else if (line.starts_with("a=mid:") && !mids.empty()) {
      mids.back() = std::string(line.substr(6));
    }
    pos = end + 1;
  }
  return mids;
}

std::optional<unsigned> mline_index(const std::vector<std::string>& mids, std::string_view mid) {
  for (std::size_t i = 0; i < mids.size(); ++i)
    if (mids[i] == mid) return static_cast<unsigned>(i);
  if (mids.size() <= 1) return 0u;
  return std::nullopt;
}

std::string strip_candidate_prefix(std::string_view c) {
  if (c.starts_with("a=")) c.remove_prefix(2);
  while (!c.empty() && (c.back() == '\r' || c.back() == '\n')) c.remove_suffix(1);
  return std::string(c);
}

namespace {
// "stun:host:port" / "turn:host:port?transport=udp" / already "stun://..".
void add_url(std::string_view url, const std::string& user, const std::string& pass, gst_ice_servers& out,
             std::vector<std::string>* skipped) {
  auto colon = url.find(':');
  if (colon == std::string_view::npos) {
    if (skipped) skipped->emplace_back(url);
    return;
  }
  auto scheme = url.substr(0, colon);
  auto rest = url.substr(colon + 1);
  if (rest.starts_with("//")) rest.remove_prefix(2);
  if (scheme == "stun" || scheme == "stuns") {
    auto q = rest.find('?');
    out.stun.push_back("stun://" + std::string(rest.substr(0, q)));
  } else if (scheme == "turn" || scheme == "turns") {
    std::string creds;
    if (rest.find('@') == std::string_view::npos && (!user.empty() || !pass.empty()))
      creds = percent_encode(user) + ":" + percent_encode(pass) + "@";
    out.turn.push_back(std::string(scheme) + "://" + creds + std::string(rest));
  } else if (skipped) {
    skipped->emplace_back(url);
  }
}
}  // namespace

gst_ice_servers to_gst_ice_servers(const nlohmann::json& ice_servers, const std::vector<std::string>& extra,
                                   std::vector<std::string>* skipped) {
  gst_ice_servers out;
  if (ice_servers.is_array()) {
    for (const auto& s : ice_servers) {
      if (!s.is_object()) continue;
      std::string user = s.value("username", std::string{});
      std::string pass = s.contains("credential") && s["credential"].is_string()
                             ? s["credential"].get<std::string>()
                             : std::string{};
      auto urls = s.find("urls");
      if (urls == s.end()) continue;
      if (urls->is_string()) add_url(urls->get<std::string>(), user, pass, out, skipped);
      if (urls->is_array())
        for (const auto& u : *urls)
          if (u.is_string()) add_url(u.get<std::string>(), user, pass, out, skipped);
    }
  }
  for (const auto& u : extra) add_url(u, {}, {}, out, skipped);
  return out;
}

}  // namespace rendezvous::client
