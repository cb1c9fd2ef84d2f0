#include "config.hpp"

#include "forwarded_for.hpp"
#include "redis_url.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>

#ifndef RENDEZVOUS_VERSION
#error "RENDEZVOUS_VERSION must be defined by the build (server/CMakeLists.txt)"
#endif

namespace rendezvous::server {

namespace {

constexpr std::string_view program_name = "rendezvous-server";
constexpr std::string_view env_prefix = "RENDEZVOUS_";

// ---------------------------------------------------------------------------
// Text helpers

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n";
  auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(space);
  return s.substr(first, last - first + 1);
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += sep;
    out += items[i];
  }
  return out;
}

// JSON-style quoting keeps an error on one line whatever the value holds
// (newlines in an env var, invalid UTF-8 in a file).
std::string json_quoted(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

// Comma-separated items, trimmed; blank text is the empty list, and an empty
// item (a,,b) stays in so that the caller can refuse it.
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  if (trim(text).empty()) return items;
  std::size_t start = 0;
  while (true) {
    auto comma = text.find(',', start);
    auto end = comma == std::string_view::npos ? text.size() : comma;
    items.emplace_back(trim(text.substr(start, end - start)));
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

// ---------------------------------------------------------------------------
// Value parsers. Strict: no signs, no whitespace, no trailing characters.

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  // from_chars accepts "inf" and "nan"; neither is a sensible limit.
  if (s.empty() || ec != std::errc{} || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string format_double(double v) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return ec == std::errc{} ? std::string(buf, ptr) : std::to_string(v);
}

bool is_ipv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

// Accepts a zone suffix (fe80::1%eth0), as asio's make_address does.
bool is_ipv6(std::string_view host) {
  auto percent = host.find('%');
  if (percent != std::string_view::npos && percent + 1 == host.size()) return false;
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(host.substr(0, percent)).c_str(), &addr) == 1;
}

// ---------------------------------------------------------------------------
// Setting factories: each builds one row of the table from a config member.

template <auto member>
using member_t = std::remove_cvref_t<decltype(std::declval<config&>().*member)>;

template <auto member>
setting uint_setting(std::string name, std::string value_name, std::string help, std::uint64_t min,
                     std::uint64_t max = std::numeric_limits<member_t<member>>::max()) {
  using T = member_t<member>;
  static_assert(std::is_unsigned_v<T>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::integer};
  s.set = [min, max](config& c, std::string_view text) -> std::string {
    auto v = parse_uint(text);
    if (v && *v >= min && *v <= max) {
      c.*member = static_cast<T>(*v);
      return {};
    }
    // Only mention the upper bound when it is a real limit or was passed.
    bool all_digits = !text.empty() &&
                      std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    bool too_big = all_digits && (!v || *v > max);  // !v: past 64 bits
    if (max != std::numeric_limits<T>::max() || too_big)
      return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return "expected an integer >= " + std::to_string(min);
  };
  s.get = [](const config& c) { return std::to_string(c.*member); };
  return s;
}

template <auto member>
setting number_setting(std::string name, std::string value_name, std::string help, double min) {
  static_assert(std::is_same_v<member_t<member>, double>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::number};
  s.set = [min](config& c, std::string_view text) -> std::string {
    auto v = parse_double(text);
    if (!v || *v < min) return "expected a number >= " + format_double(min);
    c.*member = *v;
    return {};
  };
  s.get = [](const config& c) { return format_double(c.*member); };
  return s;
}

// A fixed set of words, matched case-insensitively and stored in lower case.
template <auto member>
setting choice_setting(std::string name, std::string value_name, std::string help,
                       std::vector<std::string> choices) {
  static_assert(std::is_same_v<member_t<member>, std::string>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::string};
  s.set = [choices](config& c, std::string_view text) -> std::string {
    auto word = to_lower(text);
    if (std::find(choices.begin(), choices.end(), word) == choices.end())
      return "expected one of " + join(choices, ", ");
    c.*member = std::move(word);
    return {};
  };
  s.get = [](const config& c) { return c.*member; };
  return s;
}

// Comma-separated text; items are trimmed and checked one by one. An empty
// or blank text is the empty list, an empty item (a,,b) is an error.
template <auto member>
setting list_setting(std::string name, std::string value_name, std::string help,
                     std::function<bool(std::string_view)> item_ok, std::string expectation) {
  static_assert(std::is_same_v<member_t<member>, std::vector<std::string>>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::list};
  s.set = [item_ok = std::move(item_ok), expectation = std::move(expectation)](
              config& c, std::string_view text) -> std::string {
    std::vector<std::string> items = split_list(text);
    for (const auto& item : items)
      if (item.empty() || !item_ok(item)) return expectation;
    c.*member = std::move(items);
    return {};
  };
  s.get = [](const config& c) { return join(c.*member, ","); };
  return s;
}

// Free text (a path or a secret); `secret` hides it in logs and --help.
template <auto member>
setting text_setting(std::string name, std::string value_name, std::string help, bool secret = false) {
  static_assert(std::is_same_v<member_t<member>, std::string>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::string, secret};
  s.set = [](config& c, std::string_view text) -> std::string {
    if (std::any_of(text.begin(), text.end(),
                    [](char ch) { return std::iscntrl(static_cast<unsigned char>(ch)); }))
      return "expected text without control characters";
    c.*member = std::string(text);
    return {};
  };
  s.get = [](const config& c) { return c.*member; };
  return s;
}

// Free text checked by `check` (returns "" or what was expected).
template <auto member>
setting checked_text_setting(std::string name, std::string value_name, std::string help,
                             std::function<std::string(std::string_view)> check, bool secret = false) {
  static_assert(std::is_same_v<member_t<member>, std::string>);
  setting s{std::move(name), std::move(value_name), std::move(help), setting_kind::string, secret};
  s.set = [check = std::move(check)](config& c, std::string_view text) -> std::string {
    if (auto err = check(text); !err.empty()) return err;
    c.*member = std::string(text);
    return {};
  };
  s.get = [](const config& c) { return c.*member; };
  return s;
}

// Key prefixes and node ids become parts of Redis key and channel names.
std::string check_key_part(std::string_view text) {
  if (text.empty() || text.size() > 64 || std::any_of(text.begin(), text.end(), [](char ch) {
        return !(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.');
      }))
    return "expected 1 to 64 letters, digits, '-', '_' or '.'";
  return {};
}

bool has_scheme(std::string_view item, std::initializer_list<std::string_view> schemes) {
  auto lower = to_lower(item);
  for (auto scheme : schemes) {
    if (lower.starts_with(scheme) && lower.size() > scheme.size() &&
        std::none_of(item.begin(), item.end(), [](char ch) {
          return std::isspace(static_cast<unsigned char>(ch)) || std::iscntrl(static_cast<unsigned char>(ch));
        }))
      return true;
  }
  return false;
}

setting listen_setting() {
  setting s{"listen", "HOST:PORT", "address to listen on; port 0 picks a free port; IPv6 as [::1]:8080",
            setting_kind::string};
  s.set = [](config& c, std::string_view text) -> std::string {
    const std::string expected =
        "expected HOST:PORT with an IP address and a port from 0 to 65535, e.g. 0.0.0.0:8080 or [::1]:8080";
    std::string_view host, port;
    bool host_ok = false;
    if (text.starts_with('[')) {
      auto close = text.find(']');
      if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
        return expected;
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
      host_ok = is_ipv6(host);
    } else {
      auto colon = text.rfind(':');
      if (colon == std::string_view::npos) return expected;
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (host.find(':') != std::string_view::npos)
        return "expected HOST:PORT; write an IPv6 address in brackets, e.g. [::1]:8080";
      host_ok = is_ipv4(std::string(host));
    }
    auto p = parse_uint(port);
    if (!host_ok || !p || *p > 65535) return expected;
    c.listen_host = std::string(host);
    c.listen_port = static_cast<std::uint16_t>(*p);
    return {};
  };
  s.get = [](const config& c) {
    bool v6 = c.listen_host.find(':') != std::string::npos;
    return (v6 ? "[" + c.listen_host + "]" : c.listen_host) + ":" + std::to_string(c.listen_port);
  };
  return s;
}

bool is_stun_uri(std::string_view item) {
  auto lower = to_lower(item);
  std::string_view rest;
  if (lower.starts_with("stun:"))
    rest = std::string_view(item).substr(5);
  else if (lower.starts_with("stuns:"))
    rest = std::string_view(item).substr(6);
  else
    return false;
  return !rest.empty() && std::none_of(rest.begin(), rest.end(), [](char ch) {
    return std::isspace(static_cast<unsigned char>(ch)) || std::iscntrl(static_cast<unsigned char>(ch));
  });
}

std::vector<setting> make_table() {
  using c = config;
  constexpr std::uint64_t max_frame = 16u * 1024 * 1024;
  std::vector<setting> t;
  // Network and process
  t.push_back(listen_setting());
  // Capped so a typo cannot spawn millions of threads.
  t.push_back(uint_setting<&c::threads>("threads", "N", "I/O threads; 0 = hardware concurrency", 0, 1024));
  // Rooms and sessions
  t.push_back(uint_setting<&c::reconnect_grace_ms>(
      "reconnect_grace_ms", "MS",
      "how long a dropped room peer keeps its place and held messages for a resume; 0 = it leaves at once",
      0));
  t.push_back(uint_setting<&c::max_peers_per_room>(
      "max_peers_per_room", "N", "peers in one room; one more is refused with room-full (4429)", 1));
  t.push_back(uint_setting<&c::max_message_bytes>(
      "max_message_bytes", "BYTES", "largest frame accepted; a bigger one closes the connection with 1009",
      256, max_frame));
  t.push_back(uint_setting<&c::max_rooms>(
      "max_rooms", "N", "rooms at once; a join that would create one more is refused (4503)", 1));
  t.push_back(uint_setting<&c::max_connections>(
      "max_connections", "N", "WebSocket connections at once; beyond it joins are refused (4503)", 1));
  // Rate limit
  t.push_back(number_setting<&c::rate_limit_per_s>(
      "rate_limit_per_s", "RATE",
      "frames per second per connection (token bucket refill); 0 disables the limit", 0));
  t.push_back(number_setting<&c::rate_limit_burst>(
      "rate_limit_burst", "N", "token bucket size: frames a connection may send in one burst", 1));
  t.push_back(uint_setting<&c::rate_limit_strikes>(
      "rate_limit_strikes", "N", "refused frames in a row before the connection is closed with 4429", 1));
  // Per client address
  t.push_back(uint_setting<&c::max_connections_per_ip>(
      "max_connections_per_ip", "N",
      "open connections from one client address; beyond it HTTP 429 before the upgrade; 0 = no limit", 0));
  t.push_back(uint_setting<&c::max_handshakes_per_ip>(
      "max_handshakes_per_ip", "N",
      "connections from one client address not yet upgraded to WebSocket; beyond it HTTP 429; 0 = no limit",
      0));
  t.push_back(number_setting<&c::join_rate_per_ip>(
      "join_rate_per_ip", "RATE",
      "joins per second from one client address (token bucket refill); over it rate-limited (4429); 0 "
      "disables",
      0));
  t.push_back(number_setting<&c::join_burst_per_ip>(
      "join_burst_per_ip", "N", "joins one client address may make in one burst (token bucket size)", 1));
  t.push_back(uint_setting<&c::ipv6_prefix_bits>(
      "ipv6_prefix_bits", "BITS", "IPv6 clients are counted per prefix of this length (one site: /64)", 1,
      128));
  t.push_back(uint_setting<&c::fd_reserve>(
      "fd_reserve", "N",
      "file descriptors of RLIMIT_NOFILE kept back from connections (listeners, TLS files, logs)", 8));
  // Timers
  t.push_back(uint_setting<&c::ping_interval_ms>(
      "ping_interval_ms", "MS", "WebSocket ping interval; a connection silent for twice this is dropped",
      100));
  t.push_back(uint_setting<&c::handshake_timeout_ms>(
      "handshake_timeout_ms", "MS", "time allowed for the HTTP request and the WebSocket upgrade", 100));
  t.push_back(uint_setting<&c::drain_timeout_ms>(
      "drain_timeout_ms", "MS",
      "on SIGTERM/SIGINT, how long connections get to close before the process exits", 0));
  // Memory bounds
  t.push_back(uint_setting<&c::outbound_max_messages>(
      "outbound_max_messages", "N", "messages queued for a slow reader before it is disconnected (1008)", 1));
  t.push_back(uint_setting<&c::outbound_max_bytes>(
      "outbound_max_bytes", "BYTES", "bytes queued for a slow reader before it is disconnected (1008)",
      1024));
  t.push_back(uint_setting<&c::held_max_messages>(
      "held_max_messages", "N", "messages held for a dropped peer during its grace; the oldest go first", 0));
  t.push_back(uint_setting<&c::held_max_bytes>(
      "held_max_bytes", "BYTES", "bytes held for a dropped peer during its grace; the oldest go first", 0));
  // ICE
  t.push_back(list_setting<&c::stun_uris>(
      "stun_uris", "URIS",
      "STUN URIs put in welcome.iceServers (a list; comma-separated in flags and env), e.g. "
      "stun:stun.example.org",
      is_stun_uri,
      "expected a comma-separated list of stun: or stuns: URIs, e.g. stun:stun.example.org:3478"));
  // TLS
  t.push_back(text_setting<&c::tls_cert>(
      "tls_cert", "FILE", "PEM certificate chain; with tls_key the port serves https and wss only"));
  t.push_back(text_setting<&c::tls_key>("tls_key", "FILE", "PEM private key of tls_cert"));
  // Auth
  t.push_back(text_setting<&c::auth_jwt_secret>(
      "auth_jwt_secret", "SECRET", "HS256 secret; when set, every join needs a valid JWT (off when empty)",
      true));
  t.push_back(text_setting<&c::auth_jwt_secret_file>(
      "auth_jwt_secret_file", "FILE", "file holding the HS256 secret (trailing newline ignored)"));
  t.push_back(list_setting<&c::allowed_origins>(
      "allowed_origins", "ORIGINS",
      "browser origins allowed to join, e.g. https://app.example.org (a list); empty = all",
      [](std::string_view i) {
        return has_scheme(i, {"http://", "https://"});
      },
      "expected a comma-separated list of origins such as https://app.example.org"));
  t.push_back(list_setting<&c::trusted_proxies>(
      "trusted_proxies", "RANGES",
      "reverse proxies (addresses or CIDR ranges, a list) whose X-Forwarded-For names the client (logs, "
      "per-address limits); empty = none",
      [](std::string_view i) { return parse_ip_range(i).has_value(); },
      "expected a comma-separated list of IP addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8"));
  // TURN
  t.push_back(list_setting<&c::turn_uris>(
      "turn_uris", "URIS",
      "TURN URIs put in welcome.iceServers with ephemeral credentials (needs turn_secret)",
      [](std::string_view i) {
        return has_scheme(i, {"turn:", "turns:"});
      },
      "expected a comma-separated list of turn: or turns: URIs, e.g. turn:turn.example.org:3478"));
  t.push_back(text_setting<&c::turn_secret>(
      "turn_secret", "SECRET", "coturn static-auth-secret used to derive TURN credentials (REST API form)",
      true));
  t.push_back(uint_setting<&c::turn_ttl_s>("turn_ttl_s", "SECONDS", "lifetime of TURN credentials", 60,
                                           366u * 24 * 3600));
  // Several nodes
  t.push_back(checked_text_setting<&c::redis_url>(
      "redis_url", "URL",
      "Redis that joins several nodes into one server: redis://[:password@]host:port[/db] or "
      "unix:///path; empty: this node alone",
      [](std::string_view text) -> std::string {
        redis_endpoint ignored;
        return text.empty() ? std::string{} : parse_redis_url(text, ignored);
      },
      true));
  t.push_back(checked_text_setting<&c::redis_key_prefix>(
      "redis_key_prefix", "PREFIX",
      "prefix of every Redis key and channel, so deployments can share one Redis", check_key_part));
  t.push_back(checked_text_setting<&c::node_id>(
      "node_id", "ID", "this node's name in Redis and logs; empty: random at each start",
      [](std::string_view text) { return text.empty() ? std::string{} : check_key_part(text); }));
  t.push_back(uint_setting<&c::cluster_heartbeat_ms>("cluster_heartbeat_ms", "MS",
                                                     "how often a node tells Redis it is alive", 100, 60000));
  t.push_back(uint_setting<&c::cluster_node_ttl_ms>(
      "cluster_node_ttl_ms", "MS",
      "a node silent this long is dead: its peers are held for the reconnect grace (>= 2 heartbeats)", 200,
      600000));
  t.push_back(uint_setting<&c::resume_seal_timeout_ms>(
      "resume_seal_timeout_ms", "MS",
      "how long a resume on another node waits for the old node's held messages", 10, 60000));
  // Static files
  t.push_back(text_setting<&c::web_root>("web_root", "DIR",
                                         "static files for plain GETs (demo page at /, module at "
                                         "/rendezvous.js): builtin, off, or a directory"));
  // Logging
  t.push_back(choice_setting<&c::log_level>("log_level", "LEVEL",
                                            "log level: trace, debug, info, warn, error or off",
                                            {"trace", "debug", "info", "warn", "error", "off"}));
  t.push_back(choice_setting<&c::log_format>(
      "log_format", "FORMAT", "log format: text, or json for one JSON object per line", {"text", "json"}));
  return t;
}

const setting* find_setting(std::string_view name) {
  for (const auto& s : settings())
    if (s.name == name) return &s;
  return nullptr;
}

// ---------------------------------------------------------------------------
// Loading

load_outcome fail(std::string line) {
  load_outcome out;
  out.status = load_status::exit_error;
  out.output = one_line(std::string(program_name) + ": " + std::move(line)) + "\n";
  return out;
}

// Runs a setter; on failure returns the one-line message naming the setting
// and where the value came from.
std::optional<std::string> apply(const setting& s, config& cfg, std::string_view text,
                                 std::string_view source) {
  std::string expected = s.set(cfg, text);
  if (expected.empty()) return std::nullopt;
  std::string shown = s.secret ? "(hidden)" : json_quoted(text);
  return "invalid value " + shown + " for " + s.name + " (" + std::string(source) + "): " + expected;
}

// A file value as the text a setter parses: lists become comma-joined text.
std::optional<std::string> file_value_text(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string: return v.get<std::string>();
    case nlohmann::json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return v.dump();
    case nlohmann::json::value_t::array: {
      std::vector<std::string> items;
      for (const auto& item : v) {
        // A comma inside an item would split it in two.
        if (!item.is_string() || item.get_ref<const std::string&>().find(',') != std::string::npos)
          return std::nullopt;
        items.push_back(item.get<std::string>());
      }
      return join(items, ",");
    }
    default: return std::nullopt;
  }
}

std::optional<std::string> apply_file(config& cfg, const std::string& path, std::string_view path_source) {
  const std::string where = "config file " + json_quoted(path);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return "cannot read " + where + " (" + std::string(path_source) + "): it is a directory";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + where + " (" + std::string(path_source) + "): " + std::strerror(errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return "cannot read " + where + " (" + std::string(path_source) + ")";

  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (auto close = what.find("] "); what.starts_with("[json.exception") && close != std::string::npos)
      what.erase(0, close + 2);
    return where + " is not valid JSON: " + what;
  }
  if (!doc.is_object()) return where + " must hold a JSON object of settings";

  const std::string source = "config file " + path;
  for (const auto& [key, value] : doc.items()) {
    const setting* s = find_setting(key);
    if (!s) {
      std::string hint;
      std::string underscored = key;
      std::replace(underscored.begin(), underscored.end(), '-', '_');
      if (auto* near = find_setting(to_lower(underscored)); near)
        hint = " (did you mean \"" + near->name + "\"?)";
      return "unknown setting " + json_quoted(key) + " in " + where + hint;
    }
    auto v = file_value_text(value);
    if (!v)
      return "invalid value " + (s->secret ? std::string("(hidden)") : value.dump()) + " for " + s->name +
             " (" + source + "): expected a string, number, boolean or array of strings without commas";
    if (auto err = apply(*s, cfg, *v, source)) return err;
  }
  return std::nullopt;
}

std::string help_text() {
  std::string out;
  out += "Usage: " + std::string(program_name) + " [OPTIONS]\n\n";
  out += "Rendezvous: WebRTC signaling server (rooms over WebSocket).\n\n";
  out += "Every setting is a config file key, an environment variable and a flag:\n";
  out += "key max_rooms = env RENDEZVOUS_MAX_ROOMS = flag --max-rooms.\n";
  out += "Precedence: defaults < config file < environment < flags.\n\n";
  out += "Options:\n";
  out += "  -h, --help\n      print this help and exit\n";
  out += "  --version\n      print the version and exit\n";
  out += "  --config FILE\n      JSON config file with the keys below; comments allowed\n";
  out += "      env RENDEZVOUS_CONFIG\n\n";
  out += "Settings:\n";
  for (const auto& s : settings()) {
    auto def = s.default_text();
    if (s.secret)
      def = def.empty() ? "empty" : "hidden";
    else if (def.empty())
      def = "empty";
    out += "  " + s.flag() + " " + s.value_name + "\n";
    out += "      " + s.help + "\n";
    out += "      key " + s.name + ", env " + s.env() + ", default " + def + "\n";
  }
  return out;
}

load_outcome load(int argc, const char* const* argv, const std::function<const char*(const char*)>& getenv) {
  const auto& table = settings();

  CLI::App app{"Rendezvous WebRTC signaling server", std::string(program_name)};
  app.set_version_flag("--version", std::string(program_name) + " " RENDEZVOUS_VERSION);
  std::string config_path;
  CLI::Option* config_opt = app.add_option("--config", config_path)->type_name("FILE");
  // Flags only capture text here; the table's setters parse it below, so a
  // flag, an env var and a file key share one validation and one message.
  std::vector<std::string> flag_text(table.size());
  std::vector<CLI::Option*> flag_opts;
  for (std::size_t i = 0; i < table.size(); ++i) {
    flag_opts.push_back(app.add_option(table[i].flag(), flag_text[i], table[i].help)
                            ->type_name(table[i].value_name)
                            ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast));  // last one wins
  }
  // TODO(subcommands): `rendezvous-server token ...` becomes app.add_subcommand();
  // until then CLI11 refuses any positional argument as unexpected.

  // CLI11 wants the arguments reversed and without argv[0].
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) args.emplace_back(argv[i]);
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return {load_status::exit_ok, {}, help_text()};
  } catch (const CLI::CallForVersion& e) {
    return {load_status::exit_ok, {}, std::string(e.what()) + "\n"};
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see --help)");
  }

  config cfg;
  if (config_opt->count() > 0) {
    if (auto err = apply_file(cfg, config_path, "--config")) return fail(*err);
  } else if (const char* path = getenv ? getenv("RENDEZVOUS_CONFIG") : nullptr) {
    if (auto err = apply_file(cfg, path, "RENDEZVOUS_CONFIG")) return fail(*err);
  }
  // A variable that is set, even to "", is a value (RENDEZVOUS_STUN_URIS= clears the list).
  if (getenv) {
    for (const auto& s : table) {
      auto name = s.env();
      if (const char* v = getenv(name.c_str()))
        if (auto err = apply(s, cfg, v, name)) return fail(*err);
    }
  }
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (flag_opts[i]->count() > 0)
      if (auto err = apply(table[i], cfg, flag_text[i], table[i].flag())) return fail(*err);
  }
  return {load_status::run, std::move(cfg), {}};
}

}  // namespace

std::string read_secret_file(const std::string& path, std::string& secret) {
  std::ifstream in(path);
  if (!in) return "cannot read " + path;
  std::stringstream text;
  text << in.rdbuf();
  secret = text.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return path + " is empty";
  return {};
}

std::string finish_config(config& cfg) {
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) return "tls_cert and tls_key must be set together";
  if (!cfg.auth_jwt_secret_file.empty()) {
    if (!cfg.auth_jwt_secret.empty()) return "set auth_jwt_secret or auth_jwt_secret_file, not both";
    if (auto err = read_secret_file(cfg.auth_jwt_secret_file, cfg.auth_jwt_secret); !err.empty())
      return "auth_jwt_secret_file: " + err;
  }
  if (!cfg.turn_uris.empty() && cfg.turn_secret.empty()) return "turn_uris needs turn_secret";
  if (cfg.cluster_node_ttl_ms < 2 * cfg.cluster_heartbeat_ms)
    return "cluster_node_ttl_ms (" + std::to_string(cfg.cluster_node_ttl_ms) +
           ") must be at least twice cluster_heartbeat_ms (" + std::to_string(cfg.cluster_heartbeat_ms) +
           "): one late heartbeat would declare a live node dead";
  // A peer may send rate_limit_burst messages at once, all to one target: a
  // queue bound below that drops a fast reader as slow after one hiccup.
  if (cfg.rate_limit_per_s > 0 && static_cast<double>(cfg.outbound_max_messages) < cfg.rate_limit_burst)
    return "outbound_max_messages (" + std::to_string(cfg.outbound_max_messages) +
           ") is below rate_limit_burst (" + format_double(cfg.rate_limit_burst) +
           "): a reader that pauses once would be dropped as slow after one burst from a peer; raise "
           "outbound_max_messages or lower rate_limit_burst";
  // The largest message plus its frame header must fit in an empty queue.
  if (cfg.outbound_max_bytes < cfg.max_message_bytes + 14)
    return "outbound_max_bytes (" + std::to_string(cfg.outbound_max_bytes) +
           ") is below max_message_bytes (" + std::to_string(cfg.max_message_bytes) +
           ") plus a frame header: the largest message could never be sent";
  return {};
}

std::string setting::flag() const {
  std::string out = "--" + name;
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string setting::env() const {
  std::string out(env_prefix);
  for (char ch : name) out += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::string setting::default_text() const { return get(config{}); }

const std::vector<setting>& settings() {
  static const std::vector<setting> table = make_table();
  return table;
}

load_outcome parse_config(int argc, const char* const* argv,
                          const std::function<const char*(const char*)>& getenv) {
  try {
    return load(argc, argv, getenv);
  } catch (const std::exception& e) {
    return fail(std::string("internal error while loading the configuration: ") + e.what());
  }
}

load_outcome load_config(int argc, const char* const* argv,
                         const std::function<const char*(const char*)>& getenv) {
  auto out = parse_config(argc, argv, getenv);
  if (out.status != load_status::run) return out;
  if (auto err = finish_config(out.cfg); !err.empty()) return fail(err);
  return out;
}

std::string describe(const config& cfg) {
  std::string out;
  for (const auto& s : settings()) {
    if (!out.empty()) out += ' ';
    auto v = s.get(cfg);
    if (s.secret && !v.empty())
      v = "(hidden)";
    else if (v.empty() || v.find(' ') != std::string::npos)
      v = json_quoted(v);
    out += s.name + "=" + v;
  }
  return out;
}

std::string default_config_file() {
  std::string out =
      "// Rendezvous server configuration: every setting with its default value.\n"
      "// Use it with: rendezvous-server --config FILE (or RENDEZVOUS_CONFIG=FILE).\n"
      "// Each key is also an environment variable and a flag:\n"
      "//   max_rooms = RENDEZVOUS_MAX_ROOMS = --max-rooms\n"
      "// Precedence: defaults < this file < environment < flags. Every key is\n"
      "// optional; an unknown key is an error. Generated from the settings table\n"
      "// in server/src/config.cpp; a unit test keeps the two equal.\n"
      "{\n";
  const auto& table = settings();
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& s = table[i];
    auto def = s.default_text();
    std::string value;
    switch (s.kind) {
      case setting_kind::integer:
      case setting_kind::number: value = def; break;
      case setting_kind::string: value = json_quoted(def); break;
      case setting_kind::list: value = nlohmann::json(split_list(def)).dump(); break;
    }
    out += "  // " + s.help + "\n";
    out += "  " + json_quoted(s.name) + ": " + value + (i + 1 < table.size() ? ",\n" : "\n");
  }
  out += "}\n";
  return out;
}

}  // namespace rendezvous::server
