#pragma once
// The static files the server answers plain GETs with: the browser module and
// the demo page. Loaded into memory once at startup (built-in copies, or a
// directory), so no handler ever touches the filesystem.
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rendezvous::server {

// Generated at build time (cmake/embed_web.cmake): URL path -> bytes.
std::vector<std::pair<std::string_view, std::string_view>> builtin_web_files();

class web_content {
 public:
  struct file {
    std::string content_type;
    std::string body;
  };

  // No files: every lookup misses.
  web_content() = default;
  static web_content builtin();
  // Loads every regular file under `dir` (up to max_total_bytes); throws
  // std::runtime_error naming the problem.
  static web_content from_directory(const std::string& dir, std::size_t max_total_bytes = 64u << 20);

  // `path` is the decoded URL path; "/" means "/index.html".
  const file* find(std::string_view path) const;
  std::size_t size() const noexcept { return files_.size(); }

  static std::string content_type_for(std::string_view path);

 private:
  void add(std::string path, std::string body);
  std::map<std::string, file, std::less<>> files_;
};

}  // namespace rendezvous::server
