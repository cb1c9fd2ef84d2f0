#include <rendezvous/protocol/frame.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <string_view>

using namespace rendezvous::protocol;
using namespace std::string_literals;

namespace {

std::string_view raw(const scanned_frame& f, span s) { return f.text.substr(s.begin, s.end - s.begin); }

// The failure message of a frame that must be refused as bad-message.
std::string refusal(std::string_view text) {
  const auto r = scan_frame(text);
  if (r.ok()) return "<accepted>";
  if (r.error().code != error_code::bad_message) return "<wrong code>";
  return r.error().message;
}

bool accepted(std::string_view text) { return scan_frame(text).ok(); }

// A value embedded as a payload field of an otherwise valid frame.
bool accepts_value(std::string_view value) {
  return accepted(R"({"type":"x","v":)" + std::string(value) + "}");
}

// A string whose contents (between the quotes) are `body`.
bool accepts_string_body(std::string_view body) {
  return accepted(R"({"type":"x","v":")" + std::string(body) + "\"}");
}

std::string rewrite(std::string_view text, std::string_view sender) {
  const auto r = scan_frame(text);
  REQUIRE(r.ok());
  std::string out;
  rewrite_sender(r.value(), sender, out);
  CHECK(out.size() == rewritten_size(r.value(), sender));
  return out;
}

constexpr const char* not_json = "frame is not valid JSON";
constexpr const char* not_utf8 = "frame is not valid UTF-8";
constexpr const char* not_object = "frame must be a JSON object";
constexpr const char* too_deep = "frame nests deeper than 64 levels";
constexpr const char* no_type = "missing string field 'type'";

}  // namespace

TEST_CASE("scan_frame records type, id and t") {
  const std::string text =
      R"({"type":"offer","id":"bob","description":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"})";
  const auto r = scan_frame(text);
  REQUIRE(r.ok());
  CHECK(r->text.data() == text.data());
  CHECK(r->text.size() == text.size());
  CHECK(r->type == "offer");
  REQUIRE(r->id.has_value());
  CHECK(*r->id == "bob");
  CHECK(raw(r.value(), r->id_value) == R"("bob")");
  CHECK(r->t_value.empty());

  const auto ping = scan_frame(R"({"type":"ping","t":1712345678901})");
  REQUIRE(ping.ok());
  CHECK(ping->type == "ping");
  CHECK_FALSE(ping->id.has_value());
  CHECK(ping->id_value.empty());
  CHECK(raw(ping.value(), ping->t_value) == "1712345678901");
}

TEST_CASE("t is recorded raw, whatever its JSON type") {
  const auto obj = scan_frame(R"({"t" : { "a" : [1, 2.50] } ,"type":"ping"})");
  REQUIRE(obj.ok());
  CHECK(raw(obj.value(), obj->t_value) == R"({ "a" : [1, 2.50] })");

  const auto str = scan_frame(R"({"type":"ping","t":"x\"y"})");
  REQUIRE(str.ok());
  CHECK(raw(str.value(), str->t_value) == R"("x\"y")");

  const auto null = scan_frame(R"({"type":"ping","t":null})");
  REQUIRE(null.ok());
  CHECK(raw(null.value(), null->t_value) == "null");

  // Only the top-level member counts.
  const auto nested = scan_frame(R"({"type":"ping","a":{"t":1}})");
  REQUIRE(nested.ok());
  CHECK(nested->t_value.empty());

  // A duplicate "t" is allowed; the last one wins, as in JSON.parse.
  const auto dup = scan_frame(R"({"type":"ping","t":1,"t":2})");
  REQUIRE(dup.ok());
  CHECK(raw(dup.value(), dup->t_value) == "2");

  // Escaped key.
  const auto esc = scan_frame(R"({"type":"ping","\u0074":7})");
  REQUIRE(esc.ok());
  CHECK(raw(esc.value(), esc->t_value) == "7");
}

TEST_CASE("invalid JSON is bad-message") {
  for (const char* text : {
           "",
           " ",
           "{",
           "}",
           R"({"type":"x")",
           R"({"type":"x",})",
           R"({"type" "x"})",
           R"({"type":"x" "a":1})",
           R"({"type":"x",,"a":1})",
           R"({,"type":"x"})",
           "{'type':'x'}",
           R"({type:"x"})",
           R"({"type":"x"} x)",
           R"({"type":"x"}{})",
           R"({"type":"x"},)",
           R"({"type":"x","a":[1,]})",
           R"({"type":"x","a":[1 2]})",
           R"({"type":"x","a":[)",
           R"({"type":"x","a":]})",
           R"({"type":"x","a":{"b"}})",
           R"({"type":"x","a":{1:2}})",
           R"({"type":"x","a":undefined})",
           R"({"type":"x" /* c */})",
           R"({"type":"x"} // c)",
           R"({"type":"x)",
           R"({"type":"x\)",
       }) {
    CAPTURE(text);
    CHECK(refusal(text) == not_json);
  }
  // Embedded NUL bytes, outside and inside strings.
  CHECK(refusal("{\"type\":\"x\"}\0"s) == not_json);
  CHECK(refusal("{\"type\":\"x\0\"}"s) == not_json);
  CHECK(refusal("\0{\"type\":\"x\"}"s) == not_json);
}

TEST_CASE("whitespace is the four RFC 8259 characters, anywhere between tokens") {
  const auto r = scan_frame(" \t\r\n{ \t\r\n\"type\" \n: \"x\" \r, \"id\"\t:\"y\" \n} \t\r\n");
  REQUIRE(r.ok());
  CHECK(r->type == "x");
  CHECK(*r->id == "y");
  CHECK(refusal("\f{\"type\":\"x\"}") == not_json);            // form feed
  CHECK(refusal("{\"type\":\"x\"}\v") == not_json);            // vertical tab
  CHECK(refusal("\xC2\xA0{\"type\":\"x\"}") == not_json);      // no-break space
  CHECK(refusal("\xEF\xBB\xBF{\"type\":\"x\"}") == not_json);  // BOM
}

TEST_CASE("non-objects are refused as such") {
  for (const char* text : {"[]", R"(["type","x"])", R"("type")", "1", "-0.5e3", "null", "true", "false",
                           " [ {\"type\":\"x\"} ] "}) {
    CAPTURE(text);
    CHECK(refusal(text) == not_object);
  }
  // Invalid JSON that is not an object is still reported as invalid JSON.
  CHECK(refusal("[1,]") == not_json);
  CHECK(refusal("tru") == not_json);
}

TEST_CASE("type must be a top-level string") {
  CHECK(refusal("{}") == no_type);
  CHECK(refusal(R"({"id":"bob"})") == no_type);
  CHECK(refusal(R"({"a":{"type":"x"}})") == no_type);
  CHECK(refusal(R"({"Type":"x"})") == no_type);
  CHECK(refusal(R"({"type ":"x"})") == no_type);
  CHECK(refusal(R"({"ty\/pe":"x"})") == no_type);
  CHECK(refusal(R"({"typ":"x"})") == no_type);
  CHECK(refusal(R"({"types":"x"})") == no_type);
  for (const char* value : {"1", "null", "true", "false", "{}", "[]", R"(["x"])", R"({"type":"x"})"}) {
    CAPTURE(value);
    CHECK(refusal(R"({"type":)" + std::string(value) + "}") == "field 'type' must be a string");
  }
  // The empty string is a string; refusing unknown types is not the scanner's job.
  const auto empty = scan_frame(R"({"type":""})");
  REQUIRE(empty.ok());
  CHECK(empty->type.empty());
}

TEST_CASE("id, when present, must be a string") {
  for (const char* value : {"1", "null", "true", "{}", "[]", R"(["bob"])"}) {
    CAPTURE(value);
    CHECK(refusal(R"({"type":"x","id":)" + std::string(value) + "}") == "field 'id' must be a string");
  }
  const auto empty = scan_frame(R"({"type":"x","id":""})");
  REQUIRE(empty.ok());
  REQUIRE(empty->id.has_value());
  CHECK(empty->id->empty());
  CHECK(raw(empty.value(), empty->id_value) == R"("")");
  // A nested id is payload.
  const auto nested = scan_frame(R"({"type":"x","a":{"id":1}})");
  REQUIRE(nested.ok());
  CHECK_FALSE(nested->id.has_value());
}

TEST_CASE("duplicate type or id is refused, other duplicates pass") {
  CHECK(refusal(R"({"type":"a","type":"b"})") == "duplicate field 'type'");
  CHECK(refusal(R"({"type":"a","type":1})") == "duplicate field 'type'");
  CHECK(refusal(R"({"type":"a","id":"b","id":"c"})") == "duplicate field 'id'");
  CHECK(refusal(R"({"type":"a","id":"b","id":1})") == "duplicate field 'id'");
  // Keys compare after decoding escapes.
  CHECK(refusal(R"({"type":"a","t\u0079pe":"b"})") == "duplicate field 'type'");
  CHECK(refusal(R"({"id":"a","\u0069\u0064":"b","type":"x"})") == "duplicate field 'id'");
  CHECK(accepted(R"({"type":"a","x":1,"x":2})"));
  CHECK(accepted(R"({"type":"a","o":{"type":1,"type":2,"id":3,"id":4}})"));
}

TEST_CASE("keys are compared after decoding escapes") {
  const auto r = scan_frame(R"({"\u0074ype":"x","\u0069d":"bob"})");
  REQUIRE(r.ok());
  CHECK(r->type == "x");
  REQUIRE(r->id.has_value());
  CHECK(*r->id == "bob");
  CHECK(raw(r.value(), r->id_value) == R"("bob")");

  const auto upper = scan_frame(R"({"\u0054\u0059\u0050\u0045":"x","type":"y"})");  // "TYPE"
  REQUIRE(upper.ok());
  CHECK(upper->type == "y");

  // A decoded NUL makes a different key.
  CHECK(refusal(R"({"type\u0000":"x"})") == no_type);
  // Long escaped keys are not mistaken for short ones.
  CHECK(refusal(R"({"\u0074ypeX":"x"})") == no_type);
  CHECK(refusal(R"({"\u00e9":"x"})") == no_type);
}

TEST_CASE("string values are decoded") {
  const auto r = scan_frame(R"({"type":"a\"b\\c\/d\b\f\n\r\t","id":"\u0062\u006F\u0062"})");
  REQUIRE(r.ok());
  CHECK(r->type == "a\"b\\c/d\b\f\n\r\t");
  CHECK(*r->id == "bob");
  CHECK(raw(r.value(), r->id_value) == R"("\u0062\u006F\u0062")");

  const auto u = scan_frame(R"({"type":"\u00e9\u20AC\ud83d\ude00\uDBFF\uDFFF\u0000"})");
  REQUIRE(u.ok());
  CHECK(u->type == "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"s + '\0');

  // Raw UTF-8 passes into the decoded value unchanged.
  const auto utf8 = scan_frame("{\"type\":\"caf\xC3\xA9\",\"id\":\"\xF0\x9F\x98\x80\"}");
  REQUIRE(utf8.ok());
  CHECK(utf8->type == "caf\xC3\xA9");
  CHECK(*utf8->id == "\xF0\x9F\x98\x80");
}

TEST_CASE("escapes follow the grammar") {
  for (const char* body :
       {R"(\")", R"(\\)", R"(\/)", R"(\b)", R"(\f)", R"(\n)", R"(\r)", R"(\t)", R"(\u0041)", R"(\uabcd)",
        R"(\uABCD)", R"(\ud800\udc00)", R"(\uDBFF\uDFFF)", R"(\uD7FF)", R"(\uE000)", R"(\uFFFF)"}) {
    CAPTURE(body);
    CHECK(accepts_string_body(body));
  }
  for (const char* body :
       {R"(\x41)", R"(\')", R"(\U0041)", R"(\a)", R"(\0)", R"(\u12)", R"(\u12G4)", R"(\u-123)", "\\",
        // Unpaired or reversed surrogates.
        R"(\ud800)", R"(\ud800x)", R"(\ud800\u0041)", R"(\ud800\n)", R"(\udbff\ud800)", R"(\udc00)",
        R"(\uDFFF)", R"(\udc00\ud800)", R"(\ud800\u)", R"(\ud800\udc0)"}) {
    CAPTURE(body);
    CHECK_FALSE(accepts_string_body(body));
  }
}

TEST_CASE("raw control characters are not allowed in strings") {
  for (int c = 0; c < 0x20; ++c) {
    CAPTURE(c);
    CHECK_FALSE(accepts_string_body(std::string(1, static_cast<char>(c))));
  }
  CHECK(accepts_string_body("\x7F"));  // DEL is not a control character in JSON
  CHECK(accepts_string_body(" ~"));
}

TEST_CASE("UTF-8 is validated inside strings") {
  // Boundaries of each sequence length.
  for (const char* ok :
       {"\xC2\x80", "\xC3\xA9", "\xDF\xBF", "\xE0\xA0\x80", "\xE2\x82\xAC", "\xED\x9F\xBF", "\xEE\x80\x80",
        "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF0\x9F\x98\x80", "\xF3\xBF\xBF\xBF", "\xF4\x8F\xBF\xBF"}) {
    CAPTURE(ok);
    CHECK(accepts_string_body(ok));
  }
  for (const char* bad : {
           "\x80",              // lone continuation
           "\xBF",              // lone continuation
           "\xC0\x80",          // overlong NUL
           "\xC1\xBF",          // overlong
           "\xE0\x80\x80",      // overlong
           "\xE0\x9F\xBF",      // overlong
           "\xF0\x80\x80\x80",  // overlong
           "\xF0\x8F\xBF\xBF",  // overlong
           "\xED\xA0\x80",      // surrogate U+D800
           "\xED\xBF\xBF",      // surrogate U+DFFF
           "\xF4\x90\x80\x80",  // U+110000
           "\xF5\x80\x80\x80",  // lead above F4
           "\xF8\x88\x80\x80\x80",
           "\xFE",
           "\xFF",
           "\xC3",              // truncated before the closing quote
           "\xE2\x82",          // truncated
           "\xF0\x9F\x98",      // truncated
           "\xE2\x28\xA1",      // bad continuation
           "\xC3\x28",          // bad continuation
           "\xF0\x9F\x98\x28",  // bad last continuation
       }) {
    CAPTURE(bad);
    CHECK(refusal(R"({"type":"x","v":")" + std::string(bad) + "\"}") == not_utf8);
  }
  // In a key and in type itself, too.
  CHECK(refusal("{\"type\":\"x\",\"\xC0\xAF\":1}") == not_utf8);
  CHECK(refusal("{\"type\":\"\xED\xA0\x80\"}") == not_utf8);
  // Truncated at the very end of the frame.
  CHECK(refusal("{\"type\":\"\xE2\x82") == not_utf8);
  // Non-ASCII outside strings is simply not JSON.
  CHECK(refusal("{\"type\":\"x\"}\xC3\xA9") == not_json);
  CHECK(refusal("{\"type\":\"x\",\"v\":\xC3\xA9}") == not_json);
}

TEST_CASE("literals") {
  CHECK(accepts_value("true"));
  CHECK(accepts_value("false"));
  CHECK(accepts_value("null"));
  CHECK(accepts_value("[true,false,null]"));
  for (const char* bad : {"tru", "fals", "nul", "True", "NULL", "nulll", "truefalse", "t", "nil"}) {
    CAPTURE(bad);
    CHECK_FALSE(accepts_value(bad));
  }
  CHECK(refusal(R"({"type":"x","v":tru)") == not_json);  // truncated at the end of input
}

TEST_CASE("numbers follow the RFC 8259 grammar") {
  for (const char* ok : {"0",
                         "-0",
                         "1",
                         "-1",
                         "10",
                         "1234567890",
                         "1.5",
                         "-0.0",
                         "0.5",
                         "1e5",
                         "1E5",
                         "1e+5",
                         "1e-5",
                         "1E-05",
                         "0e0",
                         "-0e-0",
                         "1.25e3",
                         "0.1234567890123456789e-5",
                         "0.30000000000000004",
                         "1e999999",
                         "-1e-999999",
                         "123456789012345678901234567890123456789",
                         "1.7976931348623157e308",
                         "4.9e-324"}) {
    CAPTURE(ok);
    CHECK(accepts_value(ok));
  }
  for (const char* bad : {"01",  "-01",   "00",    "-",    "+1",    "1.",  "-1.",      ".5",        "-.5",
                          "1e",  "1e+",   "1E-",   "1.e5", "0x10",  "NaN", "Infinity", "-Infinity", "1.5.5",
                          "--1", "1_000", "1e5.5", "- 1",  "1 000", "0.",  "1ee5",     "1e++5"}) {
    CAPTURE(bad);
    CHECK_FALSE(accepts_value(bad));
  }
  // Truncated at the very end of the frame.
  CHECK(refusal(R"({"type":"x","v":-)") == not_json);
  CHECK(refusal(R"({"type":"x","v":1.)") == not_json);
  CHECK(refusal(R"({"type":"x","v":1e)") == not_json);
}

TEST_CASE("nesting is limited to max_json_depth levels, the frame itself included") {
  const auto nested = [](int arrays) {
    return R"({"type":"x","v":)" + std::string(arrays, '[') + std::string(arrays, ']') + "}";
  };
  CHECK(accepted(nested(max_json_depth - 1)));
  CHECK(refusal(nested(max_json_depth)) == too_deep);

  const auto nested_objects = [](int objects) {
    std::string s = R"({"type":"x")";
    for (int i = 0; i < objects; ++i) s += R"(,"o":{"a":1)";
    return s + std::string(objects, '}') + "}";
  };
  CHECK(accepted(nested_objects(max_json_depth - 1)));
  CHECK(refusal(nested_objects(max_json_depth)) == too_deep);

  // Depth is nesting, not a count of containers.
  std::string wide = R"({"type":"x","v":[)";
  for (int i = 0; i < 1000; ++i) wide += "[[]],";
  wide += "{}]}";
  CHECK(accepted(wide));

  // Hostile nesting neither overflows the stack nor passes.
  CHECK(refusal(std::string(1'000'000, '[')) == too_deep);
  std::string deep_objects = R"({"type":"x","v":)";
  for (int i = 0; i < 200'000; ++i) deep_objects += R"({"a":)";
  CHECK(refusal(deep_objects) == too_deep);
  CHECK(refusal(R"({"type":"x","v":)" + std::string(1'000, '{')) == not_json);  // '{' is not a key
  CHECK(refusal(std::string(max_json_depth + 1, '[') + std::string(max_json_depth + 1, ']')) == too_deep);
  CHECK(refusal(std::string(max_json_depth, '[') + std::string(max_json_depth, ']')) == not_object);
}

TEST_CASE("is_reserved_type") {
  for (const char* t : {"welcome", "peer-joined", "peer-left", "error", "pong"}) {
    CAPTURE(t);
    CHECK(is_reserved_type(t));
  }
  for (const char* t : {"ping", "offer", "answer", "candidate", "role", "bye", "", "Welcome", "pong ",
                        "peer-join", "errors"}) {
    CAPTURE(t);
    CHECK_FALSE(is_reserved_type(t));
  }
}

TEST_CASE("decide") {
  const auto decide_text = [](std::string_view text, peer_mode mode) {
    const auto r = scan_frame(text);
    REQUIRE(r.ok());
    return decide(r.value(), mode);
  };
  for (const auto mode : {peer_mode::room, peer_mode::lobby}) {
    CAPTURE(static_cast<int>(mode));
    for (const char* t : {"welcome", "peer-joined", "peer-left", "error", "pong"}) {
      CAPTURE(t);
      const auto plain = decide_text(R"({"type":")" + std::string(t) + "\"}", mode);
      CHECK(plain.what == action::refuse);
      CHECK(plain.refusal == error_code::reserved_type);
      // Reserved even with a target.
      const auto targeted = decide_text(R"({"type":")" + std::string(t) + R"(","id":"bob"})", mode);
      CHECK(targeted.what == action::refuse);
      CHECK(targeted.refusal == error_code::reserved_type);
    }
    CHECK(decide_text(R"({"type":"ping"})", mode).what == action::pong);
    CHECK(decide_text(R"({"type":"ping","id":"bob","t":1})", mode).what == action::pong);
    CHECK(decide_text(R"({"type":"offer","id":"bob","description":"v=0"})", mode).what == action::relay);
    CHECK(decide_text(R"({"type":"x","id":""})", mode).what == action::relay);
    // Escaped reserved type is still reserved.
    CHECK(decide_text(R"({"type":"\u0070ong"})", mode).what == action::refuse);
  }
  CHECK(decide_text(R"({"type":"bye"})", peer_mode::room).what == action::broadcast);
  CHECK(decide_text(R"({"type":"bye"})", peer_mode::lobby).what == action::drop);
}

TEST_CASE("rewrite_sender replaces only the id value") {
  CHECK(rewrite(R"({"type":"offer","id":"bob","description":"v=0"})", "alice") ==
        R"({"type":"offer","id":"alice","description":"v=0"})");
  // Whitespace, key order and the escaped key are kept; only the value changes.
  CHECK(rewrite(" {\n  \"description\" : \"v=0\\r\\n\",\n  \"\\u0069d\" :  \"b\\u006fb\" ,\n  "
                "\"type\":\"offer\"\n}\n",
                "alice") ==
        " {\n  \"description\" : \"v=0\\r\\n\",\n  \"\\u0069d\" :  \"alice\" ,\n  \"type\":\"offer\"\n}\n");
  // A sender longer or shorter than the target.
  CHECK(rewrite(R"({"id":"a-very-long-target-name","type":"x"})", "b") == R"({"id":"b","type":"x"})");
  CHECK(rewrite(R"({"id":"","type":"x"})", std::string(64, 'z')) ==
        R"({"id":")" + std::string(64, 'z') + R"(","type":"x"})");
  // A nested "id" is payload and stays.
  CHECK(rewrite(R"({"type":"x","o":{"id":"keep"},"id":"bob"})", "alice") ==
        R"({"type":"x","o":{"id":"keep"},"id":"alice"})");
}

TEST_CASE("rewrite_sender inserts the id first when there is none") {
  CHECK(rewrite(R"({"type":"bye"})", "alice") == R"({"id":"alice","type":"bye"})");
  CHECK(rewrite(" \n{ \"type\" : \"bye\" } ", "alice") == " \n{\"id\":\"alice\", \"type\" : \"bye\" } ");
  CHECK(rewrite(R"({"o":{"id":"keep"},"type":"x"})", "a") == R"({"id":"a","o":{"id":"keep"},"type":"x"})");

  // An empty object cannot be scanned (type is required), but must still
  // rewrite to valid JSON: no trailing comma.
  for (const char* text : {"{}", " { \n } "}) {
    CAPTURE(text);
    scanned_frame f;
    f.text = text;
    std::string out;
    rewrite_sender(f, "alice", out);
    CHECK(out.size() == rewritten_size(f, "alice"));
    CHECK(nlohmann::json::parse(out) == nlohmann::json{{"id", "alice"}});
  }
}

TEST_CASE("rewrite_sender clears and reuses the output buffer") {
  std::string out = "stale contents that must go";
  const auto r = scan_frame(R"({"type":"x","id":"b"})");
  REQUIRE(r.ok());
  rewrite_sender(r.value(), "a", out);
  CHECK(out == R"({"type":"x","id":"a"})");
  rewrite_sender(r.value(), "c", out);
  CHECK(out == R"({"type":"x","id":"c"})");
}

TEST_CASE("relayed numbers round-trip bit for bit") {
  for (const char* seed : {"0.1234567890123456789e-5", "0.30000000000000004", "0.1", "5e-324",
                           "0.99999999999999989", "1e999999", "-0", "0.000000000000000000001"}) {
    CAPTURE(seed);
    const std::string body = R"(,"type":"role","seed":)" + std::string(seed) + "}";
    for (const std::string& text : {R"({"id":"bob")" + body, "{\"x\":1" + body}) {
      const std::string out = rewrite(text, "alice");
      // Byte-exact: the number text is untouched.
      CHECK(out.find(R"("seed":)" + std::string(seed) + "}") != std::string::npos);
      const auto parsed = nlohmann::json::parse(out, nullptr, false);
      if (parsed.is_discarded()) continue;  // nlohmann refuses out-of-range doubles (1e999999)
      const auto original = nlohmann::json::parse(text);
      CHECK(parsed["id"] == "alice");
      const double a = original["seed"].get<double>();
      const double b = parsed["seed"].get<double>();
      CHECK(std::memcmp(&a, &b, sizeof a) == 0);
    }
  }
}

TEST_CASE("rewritten_size is exact") {
  for (const char* text : {R"({"type":"x"})", R"({"type":"x","id":"b"})", R"(  {"id":"\u0062","type":"x"}  )",
                           "{\n\"type\":\"x\"\n}"}) {
    CAPTURE(text);
    const auto r = scan_frame(text);
    REQUIRE(r.ok());
    for (std::string_view sender :
         {"a", "alice", "0123456789012345678901234567890123456789012345678901234567890123"}) {
      std::string out;
      rewrite_sender(r.value(), sender, out);
      CHECK(out.size() == rewritten_size(r.value(), sender));
      const auto parsed = nlohmann::json::parse(out);
      CHECK(parsed["id"] == sender);
      CHECK(parsed["type"] == "x");
    }
  }
}
