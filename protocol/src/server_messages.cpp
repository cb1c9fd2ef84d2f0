#include <rendezvous/protocol/server_messages.hpp>

namespace rendezvous::protocol {

namespace {

using ordered = nlohmann::ordered_json;

// Invalid UTF-8 cannot normally reach here (names are validated, client text
// was scanned), but dump() must never throw on the hot path: replace instead.
std::string dump(const ordered& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string make_welcome(const welcome_info& info) {
  ordered j;
  j["type"] = "welcome";
  j["id"] = info.id;
  j["room"] = info.room;
  j["peers"] = info.peers;
  j["resume"] = info.resume_token;
  j["iceServers"] = ordered(info.ice_servers);
  if (info.resumed) j["resumed"] = true;
  return dump(j);
}

std::string make_peer_joined(std::string_view id) {
  ordered j;
  j["type"] = "peer-joined";
  j["id"] = id;
  return dump(j);
}

std::string make_peer_left(std::string_view id, leave_reason reason) {
  ordered j;
  j["type"] = "peer-left";
  j["id"] = id;
  j["reason"] = to_string(reason);
  return dump(j);
}

std::string make_error(error_code code, std::string_view message, std::string_view id) {
  ordered j;
  j["type"] = "error";
  j["code"] = to_string(code);
  j["message"] = message;
  if (!id.empty()) j["id"] = id;
  return dump(j);
}

std::string make_pong(std::string_view t_raw) {
  // Spliced, not re-serialized: a number in `t` must come back bit for bit.
  constexpr std::string_view bare = R"({"type":"pong"})";
  constexpr std::string_view with_t = R"({"type":"pong","t":)";
  if (t_raw.empty()) return std::string(bare);
  std::string out;
  out.reserve(with_t.size() + t_raw.size() + 1);
  out.append(with_t);
  out.append(t_raw);
  out.push_back('}');
  return out;
}

}  // namespace rendezvous::protocol
