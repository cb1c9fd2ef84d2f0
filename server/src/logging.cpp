#include "logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace rendezvous::server {

namespace {

// The JSON members of the event being logged by this thread, if any. The
// logger is synchronous (formatting happens inside the spdlog call), so the
// formatter sees exactly the members of its own line; passing them beside
// the message, not inside it, means no message text can inject JSON keys.
thread_local const std::string* current_members = nullptr;

// %* in a pattern: "msg":"<escaped message>" and the event's members.
class json_message final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string out = R"("msg":")";
    append_json_escaped(out, std::string_view(msg.payload.data(), msg.payload.size()));
    out += '"';
    if (current_members) out += *current_members;
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<json_message>(); }
};

bool json_logs = false;  // set once by setup_logging, before any thread starts

bool needs_quotes(std::string_view v) {
  return v.empty() || std::any_of(v.begin(), v.end(), [](char c) {
           return c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
         });
}

void append_text_value(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

std::string event_text(std::string_view event, std::span<const log_field> fields) {
  std::string out(event);
  for (const auto& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    if (auto* s = std::get_if<std::string_view>(&f.value)) {
      append_text_value(out, *s);
    } else if (auto* n = std::get_if<std::int64_t>(&f.value)) {
      out += std::to_string(*n);
    } else {
      out += std::get<bool>(f.value) ? "true" : "false";
    }
  }
  return out;
}

std::string event_json_members(std::string_view event, std::span<const log_field> fields) {
  std::string out = R"(,"event":")";
  append_json_escaped(out, event);
  out += '"';
  for (const auto& f : fields) {
    out += ",\"";
    append_json_escaped(out, f.key);
    out += "\":";
    if (auto* s = std::get_if<std::string_view>(&f.value)) {
      out += '"';
      append_json_escaped(out, *s);
      out += '"';
    } else if (auto* n = std::get_if<std::int64_t>(&f.value)) {
      out += std::to_string(*n);
    } else {
      out += std::get<bool>(f.value) ? "true" : "false";
    }
  }
  return out;
}

void log_event(spdlog::level::level_enum level, std::string_view event, std::span<const log_field> fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  const std::string text = event_text(event, fields);
  if (!json_logs) return logger->log(level, "{}", text);
  const std::string members = event_json_members(event, fields);
  current_members = &members;
  logger->log(level, "{}", text);
  current_members = nullptr;
}

void setup_logging(const std::string& level, const std::string& format) {
  // Plain stdout sink (no colours): logs are read by containers and tests.
  auto logger = spdlog::stdout_logger_mt("rendezvous");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  json_logs = format == "json";
  if (json_logs) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_message>('*').set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%*})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  // Flushing every line would cost a write(2) per event on the I/O threads:
  // warnings and worse go out at once, the rest within a second.
  logger->flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
}

void log_always(const std::string& line) {
  auto logger = spdlog::default_logger();
  const auto level = logger->level();
  logger->set_level(spdlog::level::info);
  logger->info("{}", line);
  logger->set_level(level);
  logger->flush();
}

}  // namespace rendezvous::server
