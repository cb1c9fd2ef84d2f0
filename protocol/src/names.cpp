#include <rendezvous/protocol/names.hpp>

namespace rendezvous::protocol {

bool is_valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_name_length) return false;
  for (const char c : name) {
    if (!is_name_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace rendezvous::protocol
