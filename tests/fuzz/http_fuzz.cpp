// Fuzzer for the server's HTTP side: the input is what a client sends on one
// connection. Requests are read with Beast as http_session reads them (the
// same parser limits, one flat_buffer across keep-alive requests), then each
// goes through what the server does before any WebSocket handshake:
// parse_endpoint, is_websocket_join, then either decide_join (names, Origin
// allowlist, token from the query or Bearer, JWT check) under an open and a
// locked policy, or answer_plain_request against a real server_state with the
// built-in web files. Oracles: the decisions against the protocol's rules,
// every response serializes and parses back, and the connection's outcome
// does not depend on how TCP split the bytes (whole vs. small reads).
#include "auth.hpp"
#include "http_limits.hpp"
#include "http_routes.hpp"
#include "metrics.hpp"
#include "room_registry.hpp"
#include "server_state.hpp"
#include "upgrade_request.hpp"
#include "web_content.hpp"

#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/names.hpp>
#include <rendezvous/protocol/server_messages.hpp>

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace rp = rendezvous::protocol;
namespace rs = rendezvous::server;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  constexpr std::size_t shown = 1024;  // the reproducer is in the artifact
  std::fprintf(stderr, "http_fuzz: %s\ninput (%zu bytes%s): %.*s\n", what, input.size(),
               input.size() > shown ? ", first 1024 shown" : "",
               static_cast<int>(std::min(input.size(), shown)), input.data());
  std::abort();
}

#define EXPECT(cond, input)                        \
  do {                                             \
    if (!(cond)) fail("EXPECT(" #cond ")", input); \
  } while (0)

// The tokens of the seed corpus are signed with this secret (tests/fuzz/corpus/http).
constexpr std::string_view secret = "fuzz-secret";
// A fixed clock: the seed tokens expire in 2100, some are not valid before 2090.
constexpr std::int64_t now_s = 1700000000;
const std::vector<std::string> allowed_origins = {"https://app.example.com", "http://localhost:8080"};

const rs::join_policy open_policy{};
const rs::join_policy locked_policy{secret, allowed_origins};

// answer_plain_request never touches the registry; joins are not run here.
class null_registry final : public rs::room_registry {
 public:
  rp::result<rs::join_granted> join(rs::join_request) override {
    return rp::failure{rp::error_code::unavailable, "not in the fuzzer"};
  }
  void leave(const rs::peer_ref&, rs::leave_kind, std::deque<rs::shared_message>) override {}
  rs::deliver_status deliver(const rs::peer_ref&, std::string_view, rs::shared_message) override {
    return rs::deliver_status::not_found;
  }
  std::size_t broadcast(const rs::peer_ref&, rs::shared_message) override { return 0; }
  void hold_late(const rs::peer_ref&, rs::shared_message) override {}
  void close_joins() override {}
};

struct world {
  boost::asio::io_context ioc;  // the test streams need one; nothing runs on it
  rs::metrics stats;
  null_registry registry;
  rs::server_state state;

  static rs::session_settings settings() {
    rs::session_settings s;
    s.auth_secret = std::string(secret);
    s.allowed_origins = allowed_origins;
    s.web = std::make_shared<rs::web_content>(rs::web_content::builtin());
    return s;
  }
  world() : state(settings(), stats, registry) {}
};

world& the_world() {
  static auto* w = new world;  // never destroyed: no exit-time ordering issues
  return *w;
}

bool has_space(std::string_view s) { return s.find_first_of(" \t") != std::string_view::npos; }

bool is_base64url(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// A compact JWS: three non-empty base64url parts.
bool is_compact_jws(std::string_view t) {
  int parts = 0;
  while (true) {
    auto dot = t.find('.');
    auto part = t.substr(0, dot);
    if (part.empty() || !is_base64url(part)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    t.remove_prefix(dot + 1);
  }
  return parts == 3;
}

std::string describe(const rp::result<rs::join_request>& r) {
  if (!r) return std::string(rp::to_string(r.error().code));
  std::string out = r->mode == rp::peer_mode::room ? "room:" + r->room : std::string("lobby");
  out += "/" + r->id.value_or("-");
  return out;
}

// The decisions of websocket_session::run/join for one upgrade request.
std::string check_join(const rs::http_request& req, const rp::endpoint& target, std::string_view input) {
  EXPECT(beast::websocket::is_upgrade(req), input);
  EXPECT(target.kind == rp::endpoint_kind::room || target.kind == rp::endpoint_kind::lobby, input);
  const bool room = target.kind == rp::endpoint_kind::room;
  // As websocket_session::run takes them.
  const std::string origin(req[http::field::origin]);
  const std::string authorization(req[http::field::authorization]);

  const auto open = rs::decide_join(target, origin, authorization, open_policy, now_s);
  const auto locked = rs::decide_join(target, origin, authorization, locked_policy, now_s);

  for (const auto* r : {&open, &locked}) {
    if (!*r) {
      const auto code = r->error().code;
      EXPECT(code == rp::error_code::bad_request || code == rp::error_code::forbidden ||
                 code == rp::error_code::unauthorized,
             input);
      // The refusal is sent after the upgrade: it must make a JSON error frame.
      const auto frame = nlohmann::json::parse(rp::make_error(code, r->error().message), nullptr, false);
      EXPECT(frame.is_object() && frame["type"] == "error", input);
      continue;
    }
    const auto& j = r->value();
    EXPECT(j.link.expired(), input);
    EXPECT(j.mode == (room ? rp::peer_mode::room : rp::peer_mode::lobby), input);
    if (j.id) EXPECT(rp::is_valid_name(*j.id), input);
    if (room) {
      EXPECT(rp::is_valid_name(j.room) && j.room == target.name, input);
      if (auto peer = target.param("peer")) EXPECT(j.id == *peer, input);
      const auto resume = target.param("resume");
      EXPECT(j.resume_token.has_value() == resume.has_value(), input);
      if (resume) EXPECT(*j.resume_token == *resume, input);
    } else {
      EXPECT(j.id && *j.id == target.name, input);
    }
  }

  // Without auth or allowlist only the names decide.
  bool names_ok = rp::is_valid_name(target.name);
  if (room) {
    if (auto peer = target.param("peer")) names_ok = names_ok && rp::is_valid_name(*peer);
  }
  EXPECT(open.ok() == names_ok, input);
  if (!open) EXPECT(open.error().code == rp::error_code::bad_request, input);

  // The locked policy only ever refuses more, and admits only with an allowed
  // origin and a valid token for the room.
  if (locked) {
    EXPECT(open.ok(), input);
    EXPECT(rs::origin_allowed(allowed_origins, origin), input);
    EXPECT(origin.empty() || std::any_of(allowed_origins.begin(), allowed_origins.end(),
                                         [&](const auto& o) { return beast::iequals(o, origin); }),
           input);
    const auto token = rs::token_from(target.param("token"), authorization);
    EXPECT(token.has_value(), input);
    const auto grant = rs::verify_token(*token, secret, now_s);
    EXPECT(grant.ok(), input);
    EXPECT(!rs::check_grant(grant.value(), locked->room, locked->id.value_or("")), input);
    if (!open->id && grant->sub) EXPECT(locked->id == grant->sub, input);
  }
  if (open && !rs::origin_allowed(allowed_origins, origin))
    EXPECT(!locked && locked.error().code == rp::error_code::forbidden, input);

  // Token extraction: the query parameter wins; a Bearer token is one b64token.
  const auto query_token = target.param("token");
  const auto token = rs::token_from(query_token, authorization);
  if (query_token && !query_token->empty()) {
    EXPECT(token && *token == *query_token, input);
  } else if (token) {
    EXPECT(authorization.size() > 7 && beast::iequals(authorization.substr(0, 7), "Bearer "), input);
    EXPECT(!token->empty() && !has_space(*token), input);
    EXPECT(std::string_view(authorization).ends_with(*token), input);
  }
  if (token) {
    const auto grant = rs::verify_token(*token, secret, now_s);
    // Only what make_token makes is accepted: no trailing bytes, no NUL cut.
    if (grant) EXPECT(is_compact_jws(*token), input);
    const auto wrong = rs::verify_token(*token, "another-secret", now_s);
    if (grant) EXPECT(!wrong, input);
  }
  return "J:" + describe(open) + ":" + describe(locked) + ";";
}

// The answer to a plain request, and its wire form read back.
std::string check_plain(const rs::http_request& req, const rp::endpoint& target, const rs::http_response& res,
                        std::string_view input) {
  const bool get_or_head = req.method() == http::verb::get || req.method() == http::verb::head;
  const bool head = req.method() == http::verb::head;
  const auto status = res.result();
  EXPECT(res.version() == req.version(), input);
  EXPECT(res.keep_alive() == req.keep_alive(), input);
  if (!get_or_head) {
    EXPECT(status == http::status::method_not_allowed && res[http::field::allow] == "GET, HEAD", input);
  } else {
    switch (target.kind) {
      case rp::endpoint_kind::healthz: EXPECT(status == http::status::ok, input); break;
      case rp::endpoint_kind::readyz:
      case rp::endpoint_kind::metrics: EXPECT(status == http::status::ok, input); break;
      case rp::endpoint_kind::room: EXPECT(status == http::status::upgrade_required, input); break;
      case rp::endpoint_kind::lobby:
        EXPECT(status == http::status::upgrade_required || status == http::status::ok, input);
        break;
      case rp::endpoint_kind::root:
      case rp::endpoint_kind::unknown:
        EXPECT(status == http::status::not_found || status == http::status::ok, input);
        break;
    }
  }
  if (head) EXPECT(res.body().empty(), input);
  if (res.has_content_length() && !head)
    EXPECT(res[http::field::content_length] == std::to_string(res.body().size()), input);

  // Serialize as http_session's async_write would, then parse it back.
  http::response<http::string_body> copy = res;
  http::serializer<false, http::string_body> sr(copy);
  std::string wire;
  beast::error_code ec;
  while (!sr.is_done()) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      wire += beast::buffers_to_string(buffers);
      sr.consume(beast::buffer_bytes(buffers));
    });
    EXPECT(!ec, input);
  }
  http::response_parser<http::string_body> back;
  back.eager(true);
  back.skip(head);  // a response to HEAD has no body whatever its Content-Length
  back.put(boost::asio::buffer(wire), ec);
  if (ec == http::error::need_more) ec = {};
  if (!back.is_done()) back.put_eof(ec);
  EXPECT(!ec && back.is_done(), input);
  EXPECT(back.get().result() == status, input);
  EXPECT(back.get().body() == res.body(), input);
  EXPECT(back.get().keep_alive() == res.keep_alive(), input);
  return "P:" + std::to_string(static_cast<unsigned>(status)) + (res.keep_alive() ? "k" : "c") + ";";
}

// What one connection did: the requests answered, in order, then how it ended.
struct outcome {
  std::string steps;
  std::string end;    // "EOF", "close", "upgrade" or "read error"
  std::string error;  // the read error, if any
  bool header_limit = false;
};

// One connection as http_session serves it.
outcome serve(std::string_view input, std::size_t read_size) {
  auto& w = the_world();
  beast::test::stream stream(w.ioc, input);
  if (read_size) stream.read_size(read_size);
  stream.close_remote();  // the client's FIN after the bytes
  beast::flat_buffer buffer;
  outcome out;
  for (;;) {
    http::request_parser<http::string_body> parser;  // a fresh parser per request
    rs::limit_request_parser(parser);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::end_of_stream) {
      out.end = "EOF";
      return out;
    }
    if (ec) {
      // http_session drops the connection, whichever the error.
      out.end = "read error";
      out.error = ec.message();
      out.header_limit = ec == http::error::header_limit;
      return out;
    }
    auto req = parser.release();
    EXPECT(req.body().size() <= rs::max_body_bytes, input);

    const auto target = rp::parse_endpoint(req.target());
    if (rs::is_websocket_join(req, target)) {
      // The stream goes to a websocket_session: the HTTP part is over.
      out.steps += check_join(req, target, input);
      out.end = "upgrade";
      return out;
    }
    const auto res = rs::answer_plain_request(req, target, w.state);
    out.steps += check_plain(req, target, res, input);
    if (!res.keep_alive()) {
      out.end = "close";
      return out;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto whole = serve(input, 0);
  // The same bytes in small reads, as a slow network delivers them.
  const auto pieces = serve(input, 1 + size % 61);
  static const bool show = std::getenv("HTTP_FUZZ_TRACE") != nullptr;  // see what a seed does
  if (show)
    std::fprintf(stderr, "trace: %s%s %s\n", whole.steps.c_str(), whole.end.c_str(), whole.error.c_str());
  // Which read error Beast reports may depend on the split (a bad request
  // line is seen at once in one read, or only at EOF as a partial message).
  // So may the header limit: Beast 1.74 leaves the request line out of the
  // count when the line was complete in the first bytes parsed, and counts it
  // otherwise, so a header just over 16 KiB may pass in one split only.
  const auto prefix = [](const outcome& limited, const outcome& other) {
    return limited.header_limit && other.steps.starts_with(limited.steps);
  };
  const bool same = whole.steps == pieces.steps && whole.end == pieces.end;
  if (!same && !prefix(whole, pieces) && !prefix(pieces, whole)) {
    std::fprintf(stderr, "whole:  %s%s %s\npieces: %s%s %s\n", whole.steps.c_str(), whole.end.c_str(),
                 whole.error.c_str(), pieces.steps.c_str(), pieces.end.c_str(), pieces.error.c_str());
    fail("the outcome depends on how the bytes were split", input);
  }
  return 0;
}
