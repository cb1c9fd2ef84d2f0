#pragma once
#include <string>

namespace rendezvous::server {

// Sets up spdlog: `format` "text" (human) or "json" (one object per line);
// `level` as spdlog names it. Logs go to stdout.
void setup_logging(const std::string& level, const std::string& format);

}  // namespace rendezvous::server
