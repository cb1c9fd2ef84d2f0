#include "logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace rendezvous::server {

void setup_logging(const std::string& level, const std::string& format) {
  // Plain stdout sink (no colours): logs are read by containers and tests.
  auto logger = spdlog::stdout_logger_mt("rendezvous");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == "json") {
    // Messages are key=value text built from validated names and numbers, so
    // they need no JSON escaping beyond the quotes they never contain.
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  // Tests and operators wait on lines such as "listening on": never buffer.
  logger->flush_on(spdlog::level::trace);
}

}  // namespace rendezvous::server
