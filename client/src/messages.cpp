#include <rendezvous/client/messages.hpp>

namespace rendezvous::client {

namespace {
std::string string_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

bool fail(std::string* why, const char* text) {
  if (why) *why = text;
  return false;
}
}  // namespace

std::optional<server_event> parse_server_frame(std::string_view text, std::string* why) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail(why, "not a JSON object"), std::nullopt;
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) return fail(why, "no string type"), std::nullopt;
  auto type = type_it->get<std::string>();

  if (type == "welcome") {
    welcome_event w;
    w.id = string_field(j, "id");
    w.room = string_field(j, "room");
    w.resume_token = string_field(j, "resume");
    if (w.id.empty()) return fail(why, "welcome without id"), std::nullopt;
    if (auto it = j.find("peers"); it != j.end() && it->is_array()) {
      for (const auto& p : *it)
        if (p.is_string()) w.peers.push_back(p.get<std::string>());
    }
    if (auto it = j.find("iceServers"); it != j.end() && it->is_array()) w.ice_servers = *it;
    if (auto it = j.find("resumed"); it != j.end() && it->is_boolean()) w.resumed = it->get<bool>();
    return w;
  }
  if (type == "peer-joined") {
    auto id = string_field(j, "id");
    if (id.empty()) return fail(why, "peer-joined without id"), std::nullopt;
    return peer_joined_event{std::move(id)};
  }
  if (type == "peer-left") {
    auto id = string_field(j, "id");
    if (id.empty()) return fail(why, "peer-left without id"), std::nullopt;
    return peer_left_event{std::move(id), string_field(j, "reason")};
  }
  if (type == "error") {
    error_event e;
    e.code = string_field(j, "code");
    e.message = string_field(j, "message");
    e.id = string_field(j, "id");
    if (e.code.empty()) e.code = "internal";
    return e;
  }
  if (type == "pong") return pong_event{};

  relayed_message m;
  m.type = std::move(type);
  m.from = string_field(j, "id");
  m.body = std::move(j);
  return m;
}

std::string_view to_string(sdp_type t) noexcept { return t == sdp_type::offer ? "offer" : "answer"; }

nlohmann::json make_description_message(std::string_view to, const description& d) {
  return {{"id", to}, {"type", to_string(d.type)}, {"description", d.sdp}};
}

nlohmann::json make_candidate_message(std::string_view to, const candidate& c) {
  return {{"id", to}, {"type", "candidate"}, {"candidate", c.candidate}, {"mid", c.mid}};
}

nlohmann::json make_role_message(std::string_view to, const role_message& r) {
  nlohmann::json j = {{"id", to}, {"type", "role"}, {"seed", r.seed}};
  if (!r.session.empty()) j["session"] = r.session;
  if (r.ice_restart) j["iceRestart"] = true;
  return j;
}

nlohmann::json make_bye_message() { return {{"type", "bye"}}; }

std::optional<description> parse_description(const relayed_message& m) {
  description d;
  if (m.type == "offer")
    d.type = sdp_type::offer;
  else if (m.type == "answer")
    d.type = sdp_type::answer;
  else
    return std::nullopt;
  auto it = m.body.find("description");
  if (it == m.body.end() || !it->is_string()) return std::nullopt;
  d.sdp = it->get<std::string>();
  if (d.sdp.empty()) return std::nullopt;
  return d;
}

std::optional<candidate> parse_candidate(const relayed_message& m) {
  if (m.type != "candidate") return std::nullopt;
  candidate c;
  auto it = m.body.find("candidate");
  if (it != m.body.end() && it->is_string())
    c.candidate = it->get<std::string>();
  else if (it != m.body.end() && !it->is_null())
    return std::nullopt;  // null or absent = end of candidates
  c.mid = string_field(m.body, "mid");
  return c;
}

std::optional<role_message> parse_role(const relayed_message& m) {
  if (m.type != "role") return std::nullopt;
  auto it = m.body.find("seed");
  if (it == m.body.end() || !it->is_number()) return std::nullopt;
  role_message r;
  r.seed = it->get<double>();
  r.session = string_field(m.body, "session");
  if (auto ir = m.body.find("iceRestart"); ir != m.body.end() && ir->is_boolean())
    r.ice_restart = ir->get<bool>();
  return r;
}

}  // namespace rendezvous::client
