// coalescing_stream over a real loopback TCP connection: what is written
// while a socket write is in flight leaves in one further write, in order;
// a write over the bound completes only after the batch before it; a
// WebSocket over it closes after everything queued was sent.
#include "coalescing_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using rendezvous::server::coalescing_stream;

namespace {
// A connected pair on 127.0.0.1: `server` (wrapped) and `client` (plain).
struct tcp_pair {
  net::io_context ioc;
  tcp::socket client{ioc};
  std::optional<coalescing_stream<beast::tcp_stream>> server;

  tcp_pair() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    server.emplace(beast::tcp_stream(acceptor.accept()));
  }
  // Runs the io_context until `done` or a deadline; false on the deadline.
  template <class Pred>
  bool run_until(Pred done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      ioc.restart();
      ioc.run_for(std::chrono::milliseconds(50));
    }
    return done();
  }
};

std::string chunk(int i, std::size_t size) {
  std::string s = "<" + std::to_string(i) + ">";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}
}  // namespace

TEST_CASE("writes issued while one is in flight leave together, in order") {
  tcp_pair p;
  std::vector<std::string> parts;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    parts.push_back(chunk(i, 100));
    expected += parts.back();
  }
  int completed = 0;
  // One handler issues all 100: the first starts a socket write, the other
  // 99 are gathered while it is in flight.
  for (auto& part : parts)
    p.server->async_write_some(net::buffer(part), [&](beast::error_code ec, std::size_t n) {
      CHECK_FALSE(ec);
      CHECK(n == 100);
      ++completed;
    });
  std::string received(expected.size(), '\0');
  bool read_done = false;
  net::async_read(p.client, net::buffer(received), [&](beast::error_code ec, std::size_t) {
    CHECK_FALSE(ec);
    read_done = true;
  });
  REQUIRE(p.run_until([&] { return read_done && completed == 100; }));
  CHECK(received == expected);
  CHECK(p.server->socket_writes() == 2);
}

TEST_CASE("a write over the bound completes only once the batch in flight is written") {
  tcp_pair p;
  using stream_t = coalescing_stream<beast::tcp_stream>;
  const std::string big(stream_t::max_pending + 1, 'x');
  const std::string first(10, 'f');
  std::vector<std::string> order;
  p.server->async_write_some(net::buffer(first),
                             [&](beast::error_code, std::size_t) { order.push_back("first"); });
  // Pending now exceeds the bound while `first` is in flight.
  p.server->async_write_some(net::buffer(big), [&](beast::error_code ec, std::size_t n) {
    CHECK_FALSE(ec);
    CHECK(n == big.size());
    order.push_back("big");
  });
  bool flushed = false;
  p.server->async_flush([&](beast::error_code ec) {
    CHECK_FALSE(ec);
    flushed = true;
  });
  std::string received(first.size() + big.size(), '\0');
  bool read_done = false;
  net::async_read(p.client, net::buffer(received), [&](beast::error_code, std::size_t) { read_done = true; });
  REQUIRE(p.run_until([&] { return read_done && flushed && order.size() == 2; }));
  CHECK(order == std::vector<std::string>{"first", "big"});
  CHECK(received == first + big);
  CHECK(p.server->socket_writes() == 2);
}

TEST_CASE("after a failed socket write, the flush and every later write report the error") {
  tcp_pair p;
  beast::error_code ignored;
  beast::get_lowest_layer(*p.server).socket().close(ignored);
  std::string part = "x";
  p.server->async_write_some(net::buffer(part), [](beast::error_code, std::size_t) {});
  std::optional<beast::error_code> flush_ec, later_ec;
  p.server->async_flush([&](beast::error_code ec) { flush_ec = ec; });
  REQUIRE(p.run_until([&] { return flush_ec.has_value(); }));
  CHECK(*flush_ec);
  p.server->async_write_some(net::buffer(part), [&](beast::error_code ec, std::size_t) { later_ec = ec; });
  REQUIRE(p.run_until([&] { return later_ec.has_value(); }));
  CHECK(*later_ec == *flush_ec);
}

TEST_CASE("a WebSocket over it: frames written back to back arrive in order, then the close") {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  beast::websocket::stream<beast::tcp_stream> client(ioc);
  beast::get_lowest_layer(client).connect(acceptor.local_endpoint());
  // As in the server: the connection's socket runs on a strand of its own.
  beast::websocket::stream<coalescing_stream<beast::tcp_stream>> server(
      beast::tcp_stream(acceptor.accept(net::make_strand(ioc))));

  const int n = 200;
  int written = 0;
  std::function<void()> write_next = [&] {
    if (written == n) {
      server.async_close(beast::websocket::close_code::normal, [](beast::error_code) {});
      return;
    }
    auto text = std::make_shared<std::string>("{\"type\":\"m\",\"n\":" + std::to_string(written) + "}");
    server.async_write(net::buffer(*text), [&, text](beast::error_code ec, std::size_t) {
      REQUIRE_FALSE(ec);
      ++written;
      write_next();
    });
  };
  server.async_accept([&](beast::error_code ec) {
    REQUIRE_FALSE(ec);
    write_next();
  });

  std::vector<std::string> got;
  beast::flat_buffer buffer;
  beast::error_code end;
  bool closed = false;
  std::function<void()> read_next = [&] {
    client.async_read(buffer, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        end = ec;
        closed = true;
        return;
      }
      got.push_back(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      read_next();
    });
  };
  client.async_handshake("127.0.0.1", "/", [&](beast::error_code ec) {
    REQUIRE_FALSE(ec);
    read_next();
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!closed && std::chrono::steady_clock::now() < until) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(50));
  }
  REQUIRE(closed);
  CHECK(end == beast::websocket::error::closed);
  REQUIRE(got.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) CHECK(got[i] == "{\"type\":\"m\",\"n\":" + std::to_string(i) + "}");
  // Fewer socket writes than frames: frames queued during a write were gathered.
  CHECK(server.next_layer().socket_writes() < static_cast<std::uint64_t>(n));
}
