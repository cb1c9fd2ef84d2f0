#pragma once
// The client's address behind a reverse proxy. Only a proxy the operator
// trusts (trusted_proxies) may speak for its client through
// X-Forwarded-For; anyone else could write any address there. Pure: no I/O.
#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::server {

// An address or a CIDR range: "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8".
struct ip_range {
  boost::asio::ip::address base;  // masked to the prefix
  unsigned prefix = 0;            // bits; 32 or 128 for one address

  bool contains(const boost::asio::ip::address& a) const;
};

std::optional<ip_range> parse_ip_range(std::string_view text);
bool in_any(const std::vector<ip_range>& ranges, const boost::asio::ip::address& a);

// IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports) as IPv4.
boost::asio::ip::address unmapped(const boost::asio::ip::address& a);

// The client address when `peer` is a trusted proxy: X-Forwarded-For read
// from the right (the proxy nearest to us appends last), skipping trusted
// proxies; the first address that is not one is the client. nullopt when
// `peer` is not trusted, or the header is absent or unusable (then the TCP
// peer is the client).
std::optional<boost::asio::ip::address> forwarded_client(const boost::asio::ip::address& peer,
                                                         std::string_view x_forwarded_for,
                                                         const std::vector<ip_range>& trusted);

}  // namespace rendezvous::server
