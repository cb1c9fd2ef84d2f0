#pragma once
// Unguessable identifiers (OpenSSL's CSPRNG): resume tokens and server-made ids.
#include <cstddef>
#include <string>
#include <string_view>

namespace rendezvous::server {

// `bytes` random bytes as lowercase hex.
std::string random_hex(std::size_t bytes);

// Compares secrets without leaking where they differ through timing.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace rendezvous::server
