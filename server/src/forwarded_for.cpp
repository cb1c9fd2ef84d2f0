#include "forwarded_for.hpp"

#include <charconv>

namespace rendezvous::server {

namespace ip = boost::asio::ip;

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return unmapped(a);
}

// The address with every bit past `prefix` cleared.
ip::address masked(const ip::address& a, unsigned prefix) {
  if (a.is_v4()) {
    auto bits = a.to_v4().to_uint();
    auto mask = prefix == 0 ? 0u : ~0u << (32 - prefix);
    return ip::address_v4(bits & mask);
  }
  auto bytes = a.to_v6().to_bytes();
  for (unsigned i = 0; i < bytes.size(); ++i) {
    unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0;
    bytes[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xffu << (8 - keep));
  }
  return ip::address_v6(bytes);
}
}  // namespace

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

bool ip_range::contains(const ip::address& a) const {
  auto u = unmapped(a);
  return u.is_v4() == base.is_v4() && masked(u, prefix) == base;
}

std::optional<ip_range> parse_ip_range(std::string_view text) {
  text = trim(text);
  auto slash = text.find('/');
  auto addr = parse_address(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned width = addr->is_v4() ? 32 : 128;
  unsigned prefix = width;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > width)
      return std::nullopt;
  }
  return ip_range{masked(*addr, prefix), prefix};
}

bool in_any(const std::vector<ip_range>& ranges, const ip::address& a) {
  for (const auto& r : ranges)
    if (r.contains(a)) return true;
  return false;
}

std::optional<ip::address> forwarded_client(const ip::address& peer, std::string_view xff,
                                            const std::vector<ip_range>& trusted) {
  if (!in_any(trusted, peer)) return std::nullopt;
  // Right to left: each hop appended the address it saw.
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    auto item = trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    auto a = parse_address(item);
    if (!a) return std::nullopt;  // garbage (or a port, or "unknown"): trust nothing further left
    if (!in_any(trusted, *a)) return a;
  }
  return std::nullopt;
}

}  // namespace rendezvous::server
