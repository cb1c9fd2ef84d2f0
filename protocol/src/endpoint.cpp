#include <rendezvous/protocol/endpoint.hpp>

namespace rendezvous::protocol {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits `in` at the first `sep`: {before, after}; after is empty if absent.
std::pair<std::string_view, std::string_view> split_once(std::string_view in, char sep) noexcept {
  const std::size_t at = in.find(sep);
  if (at == std::string_view::npos) return {in, {}};
  return {in.substr(0, at), in.substr(at + 1)};
}

bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out) {
  while (!query.empty()) {
    const auto [piece, rest] = split_once(query, '&');
    query = rest;
    if (piece.empty()) continue;  // "a=1&&b=2", a trailing '&'
    const auto [raw_key, raw_value] = split_once(piece, '=');
    auto key = percent_decode(raw_key);
    auto value = percent_decode(raw_value);
    if (!key || !value) return false;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return true;
}

}  // namespace

std::optional<std::string_view> endpoint::param(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (in.size() - i < 3) return std::nullopt;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

endpoint parse_endpoint(std::string_view target) {
  const auto [path, query] = split_once(target, '?');
  if (path.empty() || path.front() != '/') return {};  // not origin-form

  endpoint ep;
  if (!parse_query(query, ep.query)) return {};
  if (path == "/") {
    ep.kind = endpoint_kind::root;
    return ep;
  }

  // Split before decoding, so an encoded "%2F" stays inside its segment (and
  // is then refused by name validation).
  const auto [raw_first, raw_second] = split_once(path.substr(1), '/');
  const bool two_segments = path.find('/', 1) != std::string_view::npos;
  auto first = percent_decode(raw_first);
  if (!first) return {};

  if (two_segments) {
    // Only /rooms/{room}; "/rooms/" is a room with an empty name, which name
    // validation refuses after the upgrade (bad-request, not 404).
    if (*first != "rooms" || raw_second.find('/') != std::string_view::npos) return {};
    auto room = percent_decode(raw_second);
    if (!room) return {};
    ep.kind = endpoint_kind::room;
    ep.name = std::move(*room);
    return ep;
  }

  if (*first == "healthz") {
    ep.kind = endpoint_kind::healthz;
  } else if (*first == "readyz") {
    ep.kind = endpoint_kind::readyz;
  } else if (*first == "metrics") {
    ep.kind = endpoint_kind::metrics;
  } else {
    // Any other single segment is a lobby id (libdatachannel mode), "/rooms"
    // included: the single-segment rule has no exceptions besides the routes.
    ep.kind = endpoint_kind::lobby;
    ep.name = std::move(*first);
  }
  return ep;
}

}  // namespace rendezvous::protocol
