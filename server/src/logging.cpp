#include "logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace rendezvous::server {

namespace {
// %* in a pattern: the log message as the inside of a JSON string.
class json_escaped_message final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"': append(dest, "\\\""); break;
        case '\\': append(dest, "\\\\"); break;
        case '\n': append(dest, "\\n"); break;
        case '\r': append(dest, "\\r"); break;
        case '\t': append(dest, "\\t"); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            append(dest, buf);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_escaped_message>();
  }

 private:
  static void append(spdlog::memory_buf_t& dest, std::string_view s) {
    dest.append(s.data(), s.data() + s.size());
  }
};
}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
  // Plain stdout sink (no colours): logs are read by containers and tests.
  auto logger = spdlog::stdout_logger_mt("rendezvous");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_escaped_message>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  // Tests and operators wait on lines such as "listening on": never buffer.
  logger->flush_on(spdlog::level::trace);
}

}  // namespace rendezvous::server
