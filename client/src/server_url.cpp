#include <rendezvous/client/server_url.hpp>

#include <algorithm>
#include <cctype>

namespace rendezvous::client {

std::optional<server_url> parse_server_url(std::string_view url) {
  server_url out;
  if (url.starts_with("ws://")) {
    url.remove_prefix(5);
    out.port = "80";
  } else if (url.starts_with("wss://")) {
    url.remove_prefix(6);
    out.tls = true;
    out.port = "443";
  } else {
    return std::nullopt;
  }
  auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  if (path.find_first_of("?#") != std::string_view::npos) return std::nullopt;

  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      out.host = std::string(authority.substr(0, colon));
      port = authority.substr(colon + 1);
    } else {
      out.host = std::string(authority);
    }
  }
  if (out.host.empty()) return std::nullopt;
  if (!port.empty() || authority.back() == ':') {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
      return std::nullopt;
    auto n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return std::nullopt;
    out.port = std::string(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

std::string percent_encode(std::string_view in) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string room_target(const server_url& url, std::string_view room, std::string_view peer,
                        std::string_view token, std::string_view resume) {
  std::string out = url.base_path + "/rooms/" + percent_encode(room);
  char sep = '?';
  auto add = [&](std::string_view key, std::string_view value) {
    if (value.empty()) return;
    out.push_back(sep);
    sep = '&';
    out.append(key);
    out.push_back('=');
    out.append(percent_encode(value));
  };
  add("peer", peer);
  add("token", token);
  add("resume", resume);
  return out;
}

std::string host_header(const server_url& url) {
  bool v6 = url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + url.host + "]" : url.host;
  bool default_port = (!url.tls && url.port == "80") || (url.tls && url.port == "443");
  return default_port ? host : host + ":" + url.port;
}

}  // namespace rendezvous::client
