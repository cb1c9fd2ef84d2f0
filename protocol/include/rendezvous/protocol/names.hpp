#pragma once
#include <cstddef>
#include <string_view>

namespace rendezvous::protocol {

inline constexpr std::size_t max_name_length = 64;

// One character of a name: [A-Za-z0-9._~-].
constexpr bool is_name_char(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '~' || c == '-';
}

// A room name or peer id: 1 to 64 characters of [A-Za-z0-9._~-].
bool is_valid_name(std::string_view name) noexcept;

}  // namespace rendezvous::protocol
