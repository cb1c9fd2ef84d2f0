// Fuzzer for parse_endpoint / percent_decode: no crash, and the parse is
// stable: re-encoding what was parsed and parsing again gives the same result.
#include <rendezvous/protocol/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace rp = rendezvous::protocol;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "endpoint_fuzz: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

#define EXPECT(cond, input)                        \
  do {                                             \
    if (!(cond)) fail("EXPECT(" #cond ")", input); \
  } while (0)

// Encodes every byte, so nothing in the result is a delimiter.
std::string encode_all(std::string_view in) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : in) {
    const auto b = static_cast<unsigned char>(c);
    out += '%';
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::string rebuild(const rp::endpoint& ep) {
  std::string target;
  switch (ep.kind) {
    case rp::endpoint_kind::room: target = "/rooms/" + encode_all(ep.name); break;
    case rp::endpoint_kind::lobby: target = "/" + encode_all(ep.name); break;
    case rp::endpoint_kind::healthz: target = "/healthz"; break;
    case rp::endpoint_kind::readyz: target = "/readyz"; break;
    case rp::endpoint_kind::metrics: target = "/metrics"; break;
    case rp::endpoint_kind::root: target = "/"; break;
    case rp::endpoint_kind::unknown: return {};
  }
  char sep = '?';
  for (const auto& [k, v] : ep.query) {
    target += sep;
    target += encode_all(k) + "=" + encode_all(v);
    sep = '&';
  }
  return target;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const auto decoded = rp::percent_decode(input);
  if (decoded) {
    EXPECT(rp::percent_decode(encode_all(*decoded)) == *decoded, input);
    if (input.find('%') == std::string_view::npos) EXPECT(*decoded == input, input);
  } else {
    EXPECT(input.find('%') != std::string_view::npos, input);
  }

  const auto ep = rp::parse_endpoint(input);
  if (ep.kind == rp::endpoint_kind::unknown) {
    EXPECT(ep.name.empty() && ep.query.empty(), input);
    return 0;
  }
  EXPECT(!input.empty() && input.front() == '/', input);
  if (ep.kind != rp::endpoint_kind::room && ep.kind != rp::endpoint_kind::lobby) {
    EXPECT(ep.name.empty(), input);
  }
  if (ep.kind == rp::endpoint_kind::lobby) EXPECT(!ep.name.empty(), input);
  for (const auto& [k, v] : ep.query) {
    const auto first = ep.param(k);
    EXPECT(first.has_value(), input);
  }

  const std::string again_target = rebuild(ep);
  const auto again = rp::parse_endpoint(again_target);
  EXPECT(again.kind == ep.kind, input);
  EXPECT(again.name == ep.name, input);
  EXPECT(again.query == ep.query, input);
  return 0;
}
