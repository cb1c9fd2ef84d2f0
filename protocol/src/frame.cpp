#include <rendezvous/protocol/frame.hpp>

#include <array>
#include <cstdint>

namespace rendezvous::protocol {

namespace {

enum class scan_error { none, syntax, utf8, depth };

// Byte classes inside a JSON string, so the common case (printable ASCII) is
// one table lookup per byte.
enum : unsigned char { c_plain, c_quote, c_backslash, c_control, c_non_ascii };

constexpr std::array<unsigned char, 256> make_string_classes() {
  std::array<unsigned char, 256> t{};
  for (std::size_t c = 0; c < t.size(); ++c) {
    if (c < 0x20) {
      t[c] = c_control;
    } else if (c == '"') {
      t[c] = c_quote;
    } else if (c == '\\') {
      t[c] = c_backslash;
    } else if (c >= 0x80) {
      t[c] = c_non_ascii;
    } else {
      t[c] = c_plain;
    }
  }
  return t;
}
constexpr auto string_class = make_string_classes();

constexpr unsigned char byte(char c) noexcept { return static_cast<unsigned char>(c); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Four hex digits at p (caller checked they exist); -1 if any is not hex.
constexpr long hex4(const char* p) noexcept {
  long v = 0;
  for (int i = 0; i < 4; ++i) {
    const int h = hex_value(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

constexpr bool is_high_surrogate(long cp) noexcept { return cp >= 0xD800 && cp <= 0xDBFF; }
constexpr bool is_low_surrogate(long cp) noexcept { return cp >= 0xDC00 && cp <= 0xDFFF; }

// Decodes the contents of a string that the scanner already validated (the
// bytes between the quotes), handing each output byte to `put`.
template <class Put>
void decode_string(const char* p, const char* end, Put&& put) {
  while (p < end) {
    if (*p != '\\') {
      put(*p++);
      continue;
    }
    const char k = p[1];
    p += 2;
    switch (k) {
      case 'b': put('\b'); break;
      case 'f': put('\f'); break;
      case 'n': put('\n'); break;
      case 'r': put('\r'); break;
      case 't': put('\t'); break;
      case 'u': {
        long cp = hex4(p);
        p += 4;
        if (is_high_surrogate(cp)) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
          p += 6;
        }
        if (cp < 0x80) {
          put(static_cast<char>(cp));
        } else if (cp < 0x800) {
          put(static_cast<char>(0xC0 | (cp >> 6)));
          put(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
          put(static_cast<char>(0xE0 | (cp >> 12)));
          put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          put(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
          put(static_cast<char>(0xF0 | (cp >> 18)));
          put(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
          put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          put(static_cast<char>(0x80 | (cp & 0x3F)));
        }
        break;
      }
      default: put(k); break;  // '"', '\\', '/'
    }
  }
}

// A raw (still escaped) string, without its quotes.
struct raw_string {
  const char* begin = nullptr;
  const char* end = nullptr;
  bool escaped = false;
};

void assign_decoded(std::string& out, const raw_string& s) {
  if (!s.escaped) {
    out.assign(s.begin, s.end);
    return;
  }
  out.clear();
  out.reserve(static_cast<std::size_t>(s.end - s.begin));  // decoding never grows
  decode_string(s.begin, s.end, [&out](char c) { out.push_back(c); });
}

enum class member { other, type, id, t };

member classify_decoded(std::string_view key) noexcept {
  if (key == "type") return member::type;
  if (key == "id") return member::id;
  if (key == "t") return member::t;
  return member::other;
}

// Which top-level member a key names, compared after decoding escapes
// ("\u0069d" is "id") without allocating.
member classify(const raw_string& key) noexcept {
  if (!key.escaped) {
    return classify_decoded(std::string_view(key.begin, static_cast<std::size_t>(key.end - key.begin)));
  }
  // One more byte than the longest interesting key: a longer key keeps five
  // bytes here, which match none of them.
  std::array<char, 5> buf{};
  std::size_t n = 0;
  decode_string(key.begin, key.end, [&](char c) {
    if (n < buf.size()) buf[n++] = c;
  });
  return classify_decoded(std::string_view(buf.data(), n));
}

// Strict RFC 8259 validator over one frame. Recursion is bounded by
// max_json_depth, so hostile nesting cannot exhaust the stack.
class scanner {
 public:
  explicit scanner(std::string_view text) noexcept
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  scan_error error() const noexcept { return error_; }
  bool at_end() const noexcept { return p_ == end_; }
  bool peek(char c) const noexcept { return p_ != end_ && *p_ == c; }
  std::size_t offset(const char* p) const noexcept { return static_cast<std::size_t>(p - begin_); }

  void skip_ws() noexcept {
    while (p_ != end_ && is_ws(*p_)) ++p_;
  }

  bool fail(scan_error e) noexcept {
    error_ = e;
    return false;
  }

  bool value() noexcept {
    if (p_ == end_) return fail(scan_error::syntax);
    switch (*p_) {
      case '{': return object();
      case '[': return array();
      case '"': {
        raw_string ignored;
        return string(ignored);
      }
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  // At '"'; on success p_ is past the closing quote.
  bool string(raw_string& out) noexcept {
    ++p_;
    out.begin = p_;
    out.escaped = false;
    for (;;) {
      while (p_ != end_ && string_class[byte(*p_)] == c_plain) ++p_;
      if (p_ == end_) return fail(scan_error::syntax);
      switch (string_class[byte(*p_)]) {
        case c_quote: out.end = p_++; return true;
        case c_backslash:
          out.escaped = true;
          if (!escape()) return false;
          break;
        case c_non_ascii:
          if (!utf8_sequence()) return false;
          break;
        default: return fail(scan_error::syntax);  // raw control character
      }
    }
  }

  // The top-level object, remembering the members the server cares about.
  struct members {
    int type_count = 0;
    int id_count = 0;
    bool type_is_string = false;
    bool id_is_string = false;
    raw_string type;
    raw_string id;
    const char* id_begin = nullptr;
    const char* id_end = nullptr;
    const char* t_begin = nullptr;  // last "t" wins, as in JSON.parse
    const char* t_end = nullptr;
  };

  bool top_object(members& m) noexcept {
    return object_body([&](const raw_string& key) {
      const member which = classify(key);
      const char* const value_begin = p_;
      raw_string str;
      const bool is_string = peek('"');
      if (!(is_string ? string(str) : value())) return false;
      switch (which) {
        case member::type:
          ++m.type_count;
          m.type_is_string = is_string;
          m.type = str;
          break;
        case member::id:
          ++m.id_count;
          m.id_is_string = is_string;
          m.id = str;
          m.id_begin = value_begin;
          m.id_end = p_;
          break;
        case member::t:
          m.t_begin = value_begin;
          m.t_end = p_;
          break;
        case member::other: break;
      }
      return true;
    });
  }

 private:
  // At '{'. `on_member` is called with p_ at the member's value and must
  // consume it.
  template <class OnMember>
  bool object_body(OnMember&& on_member) noexcept {
    if (++depth_ > max_json_depth) return fail(scan_error::depth);
    ++p_;
    skip_ws();
    if (peek('}')) {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      raw_string key;
      if (!peek('"') || !string(key)) return fail_syntax_unless_set();
      skip_ws();
      if (!peek(':')) return fail(scan_error::syntax);
      ++p_;
      skip_ws();
      if (!on_member(key)) return false;
      skip_ws();
      if (p_ == end_) return fail(scan_error::syntax);
      if (*p_ == ',') {
        ++p_;
        skip_ws();
        continue;
      }
      if (*p_ != '}') return fail(scan_error::syntax);
      ++p_;
      --depth_;
      return true;
    }
  }

  bool object() noexcept {
    return object_body([this](const raw_string&) { return value(); });
  }

  bool array() noexcept {
    if (++depth_ > max_json_depth) return fail(scan_error::depth);
    ++p_;
    skip_ws();
    if (peek(']')) {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      if (!value()) return false;
      skip_ws();
      if (p_ == end_) return fail(scan_error::syntax);
      if (*p_ == ',') {
        ++p_;
        skip_ws();
        continue;
      }
      if (*p_ != ']') return fail(scan_error::syntax);
      ++p_;
      --depth_;
      return true;
    }
  }

  // A failed string() already set its own error; a missing key did not.
  bool fail_syntax_unless_set() noexcept {
    if (error_ == scan_error::none) error_ = scan_error::syntax;
    return false;
  }

  template <std::size_t N>
  bool literal(const char (&word)[N]) noexcept {
    constexpr std::size_t len = N - 1;
    if (static_cast<std::size_t>(end_ - p_) < len) return fail(scan_error::syntax);
    for (std::size_t i = 0; i < len; ++i) {
      if (p_[i] != word[i]) return fail(scan_error::syntax);
    }
    p_ += len;
    return true;
  }

  // -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?  Any magnitude is
  // fine: numbers are never converted, only relayed as written.
  bool number() noexcept {
    if (peek('-')) ++p_;
    if (p_ == end_ || !is_digit(*p_)) return fail(scan_error::syntax);
    if (*p_++ != '0') {
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (peek('.')) {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail(scan_error::syntax);
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (peek('e') || peek('E')) {
      ++p_;
      if (peek('+') || peek('-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail(scan_error::syntax);
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    return true;
  }

  // At '\\'. Lone or reversed UTF-16 surrogates are refused: they have no
  // UTF-8 form, so the decoded type/id could not be valid UTF-8.
  bool escape() noexcept {
    if (end_ - p_ < 2) return fail(scan_error::syntax);
    switch (p_[1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't': p_ += 2; return true;
      case 'u': break;
      default: return fail(scan_error::syntax);
    }
    if (end_ - p_ < 6) return fail(scan_error::syntax);
    const long cp = hex4(p_ + 2);
    if (cp < 0 || is_low_surrogate(cp)) return fail(scan_error::syntax);
    p_ += 6;
    if (!is_high_surrogate(cp)) return true;
    if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') return fail(scan_error::syntax);
    if (!is_low_surrogate(hex4(p_ + 2))) return fail(scan_error::syntax);
    p_ += 6;
    return true;
  }

  // At a byte >= 0x80: one well-formed UTF-8 sequence (Unicode table 3-7), so
  // no overlongs, no encoded surrogates, nothing above U+10FFFF.
  bool utf8_sequence() noexcept {
    const unsigned char b0 = byte(*p_);
    std::ptrdiff_t tail = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      tail = 1;
    } else if (b0 == 0xE0) {
      tail = 2;
      lo = 0xA0;
    } else if (b0 == 0xED) {
      tail = 2;
      hi = 0x9F;
    } else if (b0 >= 0xE1 && b0 <= 0xEF) {
      tail = 2;
    } else if (b0 == 0xF0) {
      tail = 3;
      lo = 0x90;
    } else if (b0 == 0xF4) {
      tail = 3;
      hi = 0x8F;
    } else if (b0 >= 0xF1 && b0 <= 0xF3) {
      tail = 3;
    } else {
      return fail(scan_error::utf8);
    }
    if (end_ - p_ <= tail) return fail(scan_error::utf8);
    const unsigned char b1 = byte(p_[1]);
    if (b1 < lo || b1 > hi) return fail(scan_error::utf8);
    for (std::ptrdiff_t i = 2; i <= tail; ++i) {
      if ((byte(p_[i]) & 0xC0) != 0x80) return fail(scan_error::utf8);
    }
    p_ += tail + 1;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  int depth_ = 0;
  scan_error error_ = scan_error::none;
};

failure bad_message(const char* message) { return failure{error_code::bad_message, message}; }

// Where the top-level '{' is, or npos for text that is not a scanned object.
std::size_t open_brace(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size() && is_ws(text[i])) ++i;
  return i < text.size() && text[i] == '{' ? i : std::string_view::npos;
}

bool has_id_span(const scanned_frame& frame) noexcept {
  return frame.id_value.begin < frame.id_value.end && frame.id_value.end <= frame.text.size();
}

constexpr std::string_view id_prefix = "\"id\":\"";

}  // namespace

result<scanned_frame> scan_frame(std::string_view text) {
  scanner s(text);
  scanner::members m;
  s.skip_ws();
  const bool is_object = s.peek('{');
  bool ok = is_object ? s.top_object(m) : s.value();
  if (ok) {
    s.skip_ws();
    ok = s.at_end() || s.fail(scan_error::syntax);
  }
  if (!ok) {
    switch (s.error()) {
      case scan_error::utf8: return bad_message("frame is not valid UTF-8");
      case scan_error::depth: return bad_message("frame nests deeper than 64 levels");
      default: return bad_message("frame is not valid JSON");
    }
  }
  if (!is_object) return bad_message("frame must be a JSON object");
  if (m.type_count > 1) return bad_message("duplicate field 'type'");
  if (m.id_count > 1) return bad_message("duplicate field 'id'");
  if (m.type_count == 0) return bad_message("missing string field 'type'");
  if (!m.type_is_string) return bad_message("field 'type' must be a string");
  if (m.id_count == 1 && !m.id_is_string) return bad_message("field 'id' must be a string");

  scanned_frame frame;
  frame.text = text;
  assign_decoded(frame.type, m.type);
  if (m.id_count == 1) {
    assign_decoded(frame.id.emplace(), m.id);
    frame.id_value = span{s.offset(m.id_begin), s.offset(m.id_end)};
  }
  if (m.t_begin != nullptr) frame.t_value = span{s.offset(m.t_begin), s.offset(m.t_end)};
  return frame;
}

bool is_reserved_type(std::string_view type) noexcept {
  return type == "welcome" || type == "peer-joined" || type == "peer-left" || type == "error" ||
         type == "pong";
}

decision decide(const scanned_frame& frame, peer_mode mode) noexcept {
  if (is_reserved_type(frame.type)) return {action::refuse, error_code::reserved_type};
  if (frame.type == "ping") return {action::pong};
  if (frame.id) return {action::relay};
  return {mode == peer_mode::room ? action::broadcast : action::drop};
}

std::size_t rewritten_size(const scanned_frame& frame, std::string_view sender) noexcept {
  const std::string_view text = frame.text;
  if (has_id_span(frame)) {
    return text.size() - (frame.id_value.end - frame.id_value.begin) + sender.size() + 2;
  }
  const std::size_t brace = open_brace(text);
  if (brace == std::string_view::npos) return text.size();
  std::size_t after = brace + 1;
  while (after < text.size() && is_ws(text[after])) ++after;
  const bool empty_object = after < text.size() && text[after] == '}';
  return text.size() + id_prefix.size() + sender.size() + 1 + (empty_object ? 0 : 1);
}

void rewrite_sender(const scanned_frame& frame, std::string_view sender, std::string& out) {
  const std::string_view text = frame.text;
  out.clear();
  out.reserve(rewritten_size(frame, sender));
  if (has_id_span(frame)) {
    // Only the id value changes; every other byte is relayed as written.
    out.append(text.substr(0, frame.id_value.begin));
    out.push_back('"');
    out.append(sender);
    out.push_back('"');
    out.append(text.substr(frame.id_value.end));
    return;
  }
  const std::size_t brace = open_brace(text);
  if (brace == std::string_view::npos) {
    out.append(text);  // not a scanned object; nothing sensible to add
    return;
  }
  std::size_t after = brace + 1;
  while (after < text.size() && is_ws(text[after])) ++after;
  const bool empty_object = after < text.size() && text[after] == '}';
  // The sender goes first, so a reader sees who sent it before the payload.
  out.append(text.substr(0, brace + 1));
  out.append(id_prefix);
  out.append(sender);
  out.push_back('"');
  if (!empty_object) out.push_back(',');
  out.append(text.substr(brace + 1));
}

}  // namespace rendezvous::protocol
