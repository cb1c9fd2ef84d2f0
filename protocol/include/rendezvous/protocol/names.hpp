#pragma once
#include <cstddef>
#include <string_view>

namespace rendezvous::protocol {

inline constexpr std::size_t max_name_length = 64;

// A room name or peer id: 1 to 64 characters of [A-Za-z0-9._~-].
bool is_valid_name(std::string_view name) noexcept;

}  // namespace rendezvous::protocol
