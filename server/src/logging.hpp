#pragma once
// Logging setup and event lines.
//
// Operators read two kinds of lines: free text ("listening on ...") and
// events (join, leave, refuse, slow-consumer) with fields. An event is one
// line either way: in text, "EVENT key=value ..."; in JSON, the same text as
// `msg` plus `event` and every field as keys of their own, so a log pipeline
// can filter on `room` or `code` without parsing `msg`.
#include <spdlog/common.h>

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace rendezvous::server {

// Sets up spdlog: `format` "text" (human) or "json" (one object per line);
// `level` as spdlog names it. Logs go to stdout.
void setup_logging(const std::string& level, const std::string& format);

// Logs `line` at info whatever the log level, and flushes: the start-up
// lines that scripts and operators wait for ("listening on ..."). Call it
// before the I/O threads start (it changes the level for a moment).
void log_always(const std::string& line);

// One field of an event line. Strings are borrowed for the call only.
struct log_field {
  log_field(std::string_view k, std::string_view v) : key(k), value(v) {}
  log_field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  log_field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  log_field(std::string_view k, bool v) : key(k), value(v) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) log_field(std::string_view k, T v)
      : key(k), value(static_cast<std::int64_t>(v)) {}

  std::string_view key;
  std::variant<std::string_view, std::int64_t, bool> value;
};

// Logs an event line at `level` (nothing is formatted below the log level).
void log_event(spdlog::level::level_enum level, std::string_view event, std::span<const log_field> fields);
inline void log_event(spdlog::level::level_enum level, std::string_view event,
                      std::initializer_list<log_field> fields) {
  log_event(level, event, std::span<const log_field>(fields.begin(), fields.size()));
}

// The pieces, pure (unit-tested):
// "join room=r peer=p resumed=false reason=\"no token\"": a value is quoted
// when it is empty or holds a space, quote, backslash or control character.
std::string event_text(std::string_view event, std::span<const log_field> fields);
// ,"event":"join","room":"r","resumed":false (JSON object members).
std::string event_json_members(std::string_view event, std::span<const log_field> fields);
// Appends `s` escaped as the inside of a JSON string.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace rendezvous::server
