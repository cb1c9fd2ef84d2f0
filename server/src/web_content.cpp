#include "web_content.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace rendezvous::server {

namespace fs = std::filesystem;

std::string web_content::content_type_for(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html") || ends(".htm")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json") || ends(".webmanifest")) return "application/json";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".txt") || ends(".md")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

void web_content::add(std::string path, std::string body) {
  auto type = content_type_for(path);
  files_[std::move(path)] = file{std::move(type), std::move(body)};
}

web_content web_content::builtin() {
  web_content w;
  for (auto [path, body] : builtin_web_files()) w.add(std::string(path), std::string(body));
  return w;
}

web_content web_content::from_directory(const std::string& dir, std::size_t max_total_bytes) {
  web_content w;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("web_root " + dir + " is not a directory");
  std::size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto rel = fs::relative(it->path(), dir, ec).generic_string();
    if (ec || rel.empty() || rel.front() == '.') continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    total += body.str().size();
    if (total > max_total_bytes)
      throw std::runtime_error("web_root " + dir + " holds more than " + std::to_string(max_total_bytes) +
                               " bytes");
    w.add("/" + rel, body.str());
  }
  if (ec) throw std::runtime_error("cannot read web_root " + dir + ": " + ec.message());
  return w;
}

const web_content::file* web_content::find(std::string_view path) const {
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace rendezvous::server
