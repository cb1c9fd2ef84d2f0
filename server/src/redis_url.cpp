#include "redis_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace rendezvous::server {

namespace {
const std::string expected = "expected redis://[:password@]host[:port][/db] or unix:///path[?db=N]";

bool parse_number(std::string_view text, unsigned max, unsigned& out) {
  if (text.empty() || text.size() > 5) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && out <= max;
}

bool clean(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char ch) {
    return std::isspace(static_cast<unsigned char>(ch)) || std::iscntrl(static_cast<unsigned char>(ch));
  });
}
}  // namespace

std::string redis_endpoint::display() const {
  std::string out = unix_path.empty()
                        ? "redis://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                              std::to_string(port)
                        : "unix://" + unix_path;
  if (db != 0) out += (unix_path.empty() ? "/" : "?db=") + std::to_string(db);
  return out;
}

std::string parse_redis_url(std::string_view text, redis_endpoint& out) {
  out = {};
  if (!clean(text)) return expected;
  if (text.starts_with("unix://")) {
    auto rest = text.substr(7);
    auto query = rest.find('?');
    out.unix_path = std::string(rest.substr(0, query));
    if (out.unix_path.empty() || out.unix_path.front() != '/') return expected;
    if (query != std::string_view::npos) {
      auto q = rest.substr(query + 1);
      if (!q.starts_with("db=") || !parse_number(q.substr(3), 65535, out.db)) return expected;
    }
    return {};
  }
  if (!text.starts_with("redis://")) return expected;
  auto rest = text.substr(8);
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty() && !parse_number(db, 65535, out.db)) return expected;
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto user_info = authority.substr(0, at);
    // redis://:password@host (Redis 6 ACL users are not supported)
    if (!user_info.starts_with(':') || user_info.size() < 2) return expected;
    out.password = std::string(user_info.substr(1));
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return expected;
    out.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return expected;
      port_text = after.substr(1);
      if (port_text.empty()) return expected;
    }
  } else {
    auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return expected;
    }
  }
  if (out.host.empty()) return expected;
  if (!port_text.empty()) {
    unsigned port = 0;
    if (!parse_number(port_text, 65535, port) || port == 0) return expected;
    out.port = static_cast<std::uint16_t>(port);
  }
  return {};
}

}  // namespace rendezvous::server
