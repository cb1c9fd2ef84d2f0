#include "cluster_wire.hpp"

#include <openssl/evp.h>

#include <charconv>

namespace rendezvous::server::cluster_wire {

namespace {
std::string tagged(std::string_view prefix, std::string_view kind, std::string_view tag,
                   std::string_view suffix) {
  std::string out;
  out.reserve(prefix.size() + kind.size() + tag.size() + suffix.size() + 4);
  out.append(prefix).append(":").append(kind).append(":{").append(tag).append("}:").append(suffix);
  return out;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    auto sp = line.find(' ');
    out.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return out;
}

bool to_u64(std::string_view text, std::uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}
}  // namespace

std::string room_members_key(std::string_view p, std::string_view room) {
  return tagged(p, "room", room, "m");
}
std::string room_counter_key(std::string_view p, std::string_view room) {
  return tagged(p, "room", room, "n");
}
std::string room_channel(std::string_view p, std::string_view room) { return tagged(p, "room", room, "c"); }
// '~' is not a name character, so the lobby's tag cannot be a room's.
std::string lobby_key(std::string_view p) { return tagged(p, "lobby", "~", "m"); }
std::string lobby_channel(std::string_view p) { return tagged(p, "lobby", "~", "c"); }
std::string nodes_key(std::string_view p) { return std::string(p) + ":nodes"; }
std::string node_rooms_key(std::string_view p, std::string_view node) {
  return tagged(p, "node", node, "rooms");
}
std::string node_lobby_key(std::string_view p, std::string_view node) {
  return tagged(p, "node", node, "lobby");
}

std::optional<std::string> room_of_channel(std::string_view prefix, std::string_view channel) {
  std::string head = std::string(prefix) + ":room:{";
  if (!channel.starts_with(head) || !channel.ends_with("}:c")) return std::nullopt;
  auto room = channel.substr(head.size(), channel.size() - head.size() - 3);
  if (room.empty()) return std::nullopt;
  return std::string(room);
}

std::optional<event> parse_event(std::string_view text) {
  auto nl = text.find('\n');
  auto head = fields(text.substr(0, nl));
  if (head.empty() || head[0].size() != 1) return std::nullopt;
  event e;
  e.kind = head[0][0];
  switch (e.kind) {
    case 'J':
    case 'H':
      if (head.size() != 4) return std::nullopt;
      break;
    case 'L':
    case 'R':
    case 'A':
      if (head.size() != 5) return std::nullopt;
      e.extra = std::string(head[4]);
      break;
    case 'M':
    case 'B':
    case 'F':
      if (head.size() != 3 || nl == std::string_view::npos) return std::nullopt;
      e.node = std::string(head[1]);
      e.id = std::string(head[2]);
      e.message = text.substr(nl + 1);
      return e;
    case 'S':
      if (head.size() != 3) return std::nullopt;
      e.node = std::string(head[1]);
      e.id = std::string(head[2]);
      return e;
    default: return std::nullopt;
  }
  if (!to_u64(head[1], e.seq)) return std::nullopt;
  e.node = std::string(head[2]);
  e.id = std::string(head[3]);
  return e;
}

std::string make_relay(char kind, std::string_view node, std::string_view id, std::string_view msg) {
  std::string out;
  out.reserve(node.size() + id.size() + msg.size() + 4);
  out.push_back(kind);
  out.append(" ").append(node).append(" ").append(id).append("\n").append(msg);
  return out;
}

std::string make_seal(std::string_view node, std::string_view id) {
  return "S " + std::string(node) + " " + std::string(id);
}

std::optional<member_record> parse_member(std::string_view text) {
  member_record m;
  auto a = text.find('|');
  if (a == std::string_view::npos) return std::nullopt;
  auto b = text.find('|', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  auto c = text.find('|', b + 1);
  if (c == std::string_view::npos) return std::nullopt;
  m.node = std::string(text.substr(0, a));
  if (!to_u64(text.substr(a + 1, b - a - 1), m.seq)) return std::nullopt;
  auto state = text.substr(b + 1, c - b - 1);
  if (state != "L" && state != "H") return std::nullopt;
  m.held = state == "H";
  m.token_hash = std::string(text.substr(c + 1));
  return m;
}

std::string token_hash(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace rendezvous::server::cluster_wire
