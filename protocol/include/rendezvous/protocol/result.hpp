#pragma once
// A small expected-like value: either a T or a protocol error. Bad input is a
// value, never an exception (protocol/ is used on the server's hot path).
#include <rendezvous/protocol/errors.hpp>

#include <string>
#include <utility>
#include <variant>

namespace rendezvous::protocol {

struct failure {
  error_code code;
  std::string message;  // human-readable, safe to send to the client
};

template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(failure f) : v_(std::move(f)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const failure& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, failure> v_;
};

}  // namespace rendezvous::protocol
