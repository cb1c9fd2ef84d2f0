// Differential fuzzer: scan_frame() against nlohmann::json as the oracle, and
// rewrite_sender() checked by re-parsing its output. Also runs the other pure
// entry points on the same bytes, for the sanitizers.
#include <rendezvous/protocol/endpoint.hpp>
#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/names.hpp>
#include <rendezvous/protocol/server_messages.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace rp = rendezvous::protocol;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "protocol_fuzz: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

#define EXPECT(cond, input)                        \
  do {                                             \
    if (!(cond)) fail("EXPECT(" #cond ")", input); \
  } while (0)

// The oracle: what scan_frame must decide, computed by nlohmann's SAX parser.
// nlohmann has no depth limit and collapses duplicate keys in a DOM, so the
// depth and the top-level members are tracked here, from its events.
struct oracle final : json::json_sax_t {
  int depth = 0;
  int max_depth = 0;
  bool started = false;
  bool top_is_object = false;
  enum class which { other, type, id, t } pending = which::other;
  int type_count = 0;
  int id_count = 0;
  bool type_is_string = false;
  bool id_is_string = false;
  bool has_t = false;
  std::string type;
  std::string id;
  int error_id = 0;  // nlohmann exception id when it refused the input

  // Called first for every value (scalars and containers alike).
  void on_value(bool is_object, const std::string* str) {
    if (!started) {
      started = true;
      top_is_object = is_object;
      return;
    }
    if (depth != 1 || !top_is_object) return;
    switch (pending) {
      case which::type:
        ++type_count;
        type_is_string = str != nullptr;
        if (str) type = *str;
        break;
      case which::id:
        ++id_count;
        id_is_string = str != nullptr;
        if (str) id = *str;
        break;
      case which::t: has_t = true; break;
      case which::other: break;
    }
  }

  bool null() override { return on_value(false, nullptr), true; }
  bool boolean(bool) override { return on_value(false, nullptr), true; }
  bool number_integer(number_integer_t) override { return on_value(false, nullptr), true; }
  bool number_unsigned(number_unsigned_t) override { return on_value(false, nullptr), true; }
  bool number_float(number_float_t, const string_t&) override { return on_value(false, nullptr), true; }
  bool string(string_t& s) override { return on_value(false, &s), true; }
  bool binary(binary_t&) override { return on_value(false, nullptr), true; }
  bool start_object(std::size_t) override {
    on_value(true, nullptr);
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool key(string_t& k) override {
    if (depth == 1) {
      pending = k == "type" ? which::type : k == "id" ? which::id : k == "t" ? which::t : which::other;
    }
    return true;
  }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override {
    on_value(false, nullptr);
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool end_array() override { return --depth, true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    error_id = ex.id;
    return false;
  }
};

constexpr std::string_view sender = "sender-1";

std::string_view raw(const rp::scanned_frame& f, rp::span s) {
  return f.text.substr(s.begin, s.end - s.begin);
}

void check_rewrite(const rp::scanned_frame& frame, std::string_view input) {
  std::string out = "garbage that rewrite_sender must clear";
  rp::rewrite_sender(frame, sender, out);
  EXPECT(out.size() == rp::rewritten_size(frame, sender), input);

  // The output is itself a valid frame from `sender`, with the same type.
  const auto again = rp::scan_frame(out);
  EXPECT(again.ok(), input);
  EXPECT(again->type == frame.type, input);
  EXPECT(again->id && *again->id == sender, input);
  EXPECT(raw(again.value(), again->t_value) == raw(frame, frame.t_value), input);

  // Every byte outside the id value is the input's.
  if (frame.id) {
    EXPECT(out.substr(0, frame.id_value.begin) == input.substr(0, frame.id_value.begin), input);
    EXPECT(std::string_view(out).substr(frame.id_value.begin + sender.size() + 2) ==
               input.substr(frame.id_value.end),
           input);
  }

  // And nlohmann agrees: same members, except id. (Skipped when nlohmann
  // cannot build the input's DOM, e.g. a number beyond double range.)
  json before = json::parse(input, nullptr, false);
  if (before.is_discarded()) return;
  json after = json::parse(out, nullptr, false);
  EXPECT(!after.is_discarded(), input);
  EXPECT(after.is_object() && after["id"] == sender, input);
  before.erase("id");
  after.erase("id");
  EXPECT(before == after, input);
}

void check_frame(std::string_view input) {
  const auto scanned = rp::scan_frame(input);

  oracle o;
  const bool syntax_ok =
      json::sax_parse(input.begin(), input.end(), &o, json::input_format_t::json, true, false);
  // nlohmann skips a leading BOM; RFC 8259 senders must not send one, and
  // scan_frame refuses it.
  const bool bom = input.substr(0, 3) == "\xEF\xBB\xBF";
  // nlohmann's lexer takes a NUL byte as the end of input and ignores what
  // follows. Valid JSON never holds a raw NUL (in a string it must be escaped).
  const bool nul = input.find('\0') != std::string_view::npos;
  // 406 is nlohmann refusing a number beyond double range, which JSON allows
  // (and the server relays untouched): no verdict then.
  const bool oracle_knows = syntax_ok || o.error_id != 406;
  const bool expected = syntax_ok && !bom && !nul && o.max_depth <= rp::max_json_depth && o.top_is_object &&
                        o.type_count == 1 && o.type_is_string && o.id_count <= 1 &&
                        (o.id_count == 0 || o.id_is_string);
  if (oracle_knows && scanned.ok() != expected) {
    fail(scanned.ok() ? "scan_frame accepted what the oracle refuses"
                      : "scan_frame refused what the oracle accepts",
         input);
  }
  if (!scanned.ok()) {
    EXPECT(scanned.error().code == rp::error_code::bad_message, input);
    EXPECT(!scanned.error().message.empty(), input);
    return;
  }

  const rp::scanned_frame& frame = scanned.value();
  if (oracle_knows) {
    EXPECT(frame.type == o.type, input);
    EXPECT(frame.id.has_value() == (o.id_count == 1), input);
    if (frame.id) EXPECT(*frame.id == o.id, input);
    EXPECT(!frame.t_value.empty() == o.has_t, input);
  }
  if (frame.id) {
    const std::string_view id_raw = raw(frame, frame.id_value);
    EXPECT(id_raw.size() >= 2 && id_raw.front() == '"' && id_raw.back() == '"', input);
    const json id = json::parse(id_raw, nullptr, false);
    EXPECT(id.is_string() && id.get<std::string>() == *frame.id, input);
  } else {
    EXPECT(frame.id_value.empty(), input);
  }
  if (!frame.t_value.empty()) {
    const std::string_view t_raw = raw(frame, frame.t_value);
    const json t = json::parse(t_raw, nullptr, false);
    const json whole = json::parse(input, nullptr, false);
    if (!whole.is_discarded()) EXPECT(!t.is_discarded() && whole["t"] == t, input);
    // The pong built from it is a valid frame of type pong carrying t as is.
    const std::string pong_text = rp::make_pong(t_raw);  // outlives the scan's view of it
    const auto pong = rp::scan_frame(pong_text);
    EXPECT(pong.ok() && pong->type == "pong", input);
    EXPECT(raw(pong.value(), pong->t_value) == t_raw, input);
  }

  for (const auto mode : {rp::peer_mode::room, rp::peer_mode::lobby}) {
    const auto d = rp::decide(frame, mode);
    if (rp::is_reserved_type(frame.type)) {
      EXPECT(d.what == rp::action::refuse && d.refusal == rp::error_code::reserved_type, input);
    } else if (frame.type == "ping") {
      EXPECT(d.what == rp::action::pong, input);
    } else if (frame.id) {
      EXPECT(d.what == rp::action::relay, input);
    } else {
      EXPECT(d.what == (mode == rp::peer_mode::room ? rp::action::broadcast : rp::action::drop), input);
    }
  }

  check_rewrite(frame, input);

  // Server messages quoting client text must stay valid JSON.
  const json err = json::parse(
      rp::make_error(rp::error_code::peer_not_found, frame.type, frame.id ? std::string_view(*frame.id) : ""),
      nullptr, false);
  EXPECT(err.is_object() && err["code"] == "peer-not-found", input);
}

void check_text_helpers(std::string_view input) {
  const bool valid = rp::is_valid_name(input);
  bool expected = !input.empty() && input.size() <= rp::max_name_length;
  for (const char c : input) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '~' || c == '-';
    expected = expected && ok;
  }
  EXPECT(valid == expected, input);

  const auto decoded = rp::percent_decode(input);
  if (decoded) EXPECT(decoded->size() <= input.size(), input);

  const auto ep = rp::parse_endpoint(input);
  if (ep.kind == rp::endpoint_kind::unknown) EXPECT(ep.name.empty() && ep.query.empty(), input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_frame(input);
  check_text_helpers(input);
  return 0;
}
