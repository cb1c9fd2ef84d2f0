// outbound_stream over a real loopback TCP connection: what is queued while a
// socket write is in flight leaves in one further write, in order; data
// frames wait behind the handshake response until open(); the one bound
// refuses a data frame and delays Beast's writes; take_unsent() gives back
// what the socket has not taken; a WebSocket over it reads the frames, in
// order, then the close, after which data frames are refused.
#include "outbound_stream.hpp"

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
using rendezvous::server::outbound_stream;
using rendezvous::server::send_status;
using rendezvous::server::shared_message;

namespace {
// A connected pair on 127.0.0.1: `server` (wrapped) and `client` (plain).
struct tcp_pair {
  net::io_context ioc;
  tcp::socket client{ioc};
  std::optional<outbound_stream<beast::tcp_stream>> server;

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

shared_message text(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

// Reads exactly `n` bytes from the client side.
std::string read_exactly(tcp_pair& p, std::size_t n) {
  std::string received(n, '\0');
  bool done = false;
  net::async_read(p.client, net::buffer(received), [&](beast::error_code ec, std::size_t) {
    CHECK_FALSE(ec);
    done = true;
  });
  REQUIRE(p.run_until([&] { return done; }));
  return received;
}

std::string frame(const std::string& payload) {
  REQUIRE(payload.size() < 126);
  return std::string("\x81") + static_cast<char>(payload.size()) + payload;
}

std::string chunk(int i, std::size_t size) {
  std::string s = "<" + std::to_string(i) + ">";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}
}  // namespace

TEST_CASE("Beast's writes issued while one is in flight leave together, in order") {
  tcp_pair p;
  p.server->open();
  std::vector<std::string> parts;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    parts.push_back(chunk(i, 100));
    expected += parts.back();
  }
  int completed = 0;
  // The first starts a socket write, the other 99 are gathered meanwhile.
  for (auto& part : parts)
    p.server->async_write_some(net::buffer(part), [&](beast::error_code ec, std::size_t n) {
      CHECK_FALSE(ec);
      CHECK(n == 100);
      ++completed;
    });
  CHECK(read_exactly(p, expected.size()) == expected);
  REQUIRE(p.run_until([&] { return completed == 100; }));
  CHECK(p.server->socket_writes() == 2);
}

TEST_CASE("data frames: a header, the shared message itself, gathered while a write is in flight") {
  tcp_pair p;
  p.server->open();
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    auto m = text("{\"n\":" + std::to_string(i) + "}");
    expected += frame(*m);
    CHECK(p.server->send_text(m) == send_status::queued);
  }
  CHECK(read_exactly(p, expected.size()) == expected);
  CHECK(p.server->socket_writes() == 2);
  // Larger payloads use the 16- and 64-bit length forms.
  const std::string mid(300, 'm'), big(70000, 'b');
  CHECK(p.server->send_text(text(mid)) == send_status::queued);
  CHECK(p.server->send_text(text(big)) == send_status::queued);
  auto got = read_exactly(p, 4 + mid.size() + 10 + big.size());
  CHECK(got.substr(0, 4) == std::string("\x81\x7e\x01\x2c", 4));
  CHECK(got.substr(4, mid.size()) == mid);
  CHECK(got.substr(4 + mid.size(), 10) == std::string("\x81\x7f\0\0\0\0\0\x01\x11\x70", 10));
  CHECK(got.substr(14 + mid.size()) == big);
}

TEST_CASE("before open(), data frames wait behind the handshake response") {
  tcp_pair p;
  CHECK(p.server->send_text(text("early")) == send_status::queued);
  const std::string response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  bool written = false;
  p.server->async_write_some(net::buffer(response), [&](beast::error_code ec, std::size_t) {
    CHECK_FALSE(ec);
    written = true;
  });
  CHECK(read_exactly(p, response.size()) == response);
  REQUIRE(p.run_until([&] { return written; }));
  CHECK(p.server->queued_frames() == 1);  // still waiting
  p.server->open();
  CHECK(read_exactly(p, frame("early").size()) == frame("early"));
}

TEST_CASE("the bound: a data frame past it is refused; take_unsent gives back what waits") {
  tcp_pair p;
  p.server->set_limits(4, 1000);
  p.server->open();
  CHECK(p.server->send_text(text("in-flight")) == send_status::queued);  // starts the socket write
  CHECK(p.server->send_text(text("a")) == send_status::queued);
  CHECK(p.server->send_text(text("b")) == send_status::queued);
  CHECK(p.server->send_text(text("c")) == send_status::queued);
  CHECK(p.server->queued_frames() == 4);
  CHECK(p.server->send_text(text("d")) == send_status::overflow);
  auto unsent = p.server->take_unsent();
  REQUIRE(unsent.size() == 3);
  CHECK(*unsent[0] == "a");
  CHECK(*unsent[2] == "c");
  CHECK(read_exactly(p, frame("in-flight").size()) == frame("in-flight"));
  bool flushed = false;
  p.server->async_flush([&](beast::error_code ec) {
    CHECK_FALSE(ec);
    flushed = true;
  });
  REQUIRE(p.run_until([&] { return flushed; }));
  CHECK(p.server->queued_frames() == 0);
  CHECK(p.server->queued_bytes() == 0);
  // Byte bound: 2-byte header + payload.
  p.server->set_limits(10, 10);
  CHECK(p.server->send_text(text("12345678")) == send_status::queued);
  CHECK(p.server->send_text(text("")) == send_status::overflow);
}

TEST_CASE("a Beast write past the bound completes only once the batch in flight is written") {
  tcp_pair p;
  p.server->set_limits(100, 1000);
  p.server->open();
  const std::string big(2000, 'x');
  const std::string first(10, 'f');
  std::vector<std::string> order;
  p.server->async_write_some(net::buffer(first),
                             [&](beast::error_code, std::size_t) { order.push_back("first"); });
  // The queue is past its bound while `first` is in flight.
  p.server->async_write_some(net::buffer(big), [&](beast::error_code ec, std::size_t n) {
    CHECK_FALSE(ec);
    CHECK(n == big.size());
    order.push_back("big");
  });
  CHECK(p.server->send_text(text("refused")) == send_status::overflow);
  bool flushed = false;
  p.server->async_flush([&](beast::error_code ec) {
    CHECK_FALSE(ec);
    flushed = true;
  });
  CHECK(read_exactly(p, first.size() + big.size()) == first + big);
  REQUIRE(p.run_until([&] { return flushed && order.size() == 2; }));
  CHECK(order == std::vector<std::string>{"first", "big"});
  CHECK(p.server->socket_writes() == 2);
}

TEST_CASE("async_wait_below completes once the queue has drained under the mark") {
  tcp_pair p;
  p.server->open();
  for (int i = 0; i < 8; ++i) p.server->send_text(text("m" + std::to_string(i)));
  bool drained = false;
  p.server->async_wait_below(2, [&](beast::error_code ec) {
    CHECK_FALSE(ec);
    drained = true;
  });
  read_exactly(p, 8 * frame("m0").size());
  REQUIRE(p.run_until([&] { return drained; }));
  CHECK(p.server->queued_frames() < 2);
}

TEST_CASE("after a failed socket write, the flush and every later write report the error") {
  tcp_pair p;
  p.server->open();
  beast::error_code ignored;
  beast::get_lowest_layer(*p.server).socket().close(ignored);
  CHECK(p.server->send_text(text("lost")) == send_status::queued);
  std::optional<beast::error_code> flush_ec, later_ec;
  p.server->async_flush([&](beast::error_code ec) { flush_ec = ec; });
  REQUIRE(p.run_until([&] { return flush_ec.has_value(); }));
  CHECK(*flush_ec);
  std::string part = "x";
  p.server->async_write_some(net::buffer(part), [&](beast::error_code ec, std::size_t) { later_ec = ec; });
  REQUIRE(p.run_until([&] { return later_ec.has_value(); }));
  CHECK(*later_ec == *flush_ec);
  CHECK(p.server->send_text(text("later")) == send_status::closed);
}

TEST_CASE("a WebSocket over it: frames arrive in order, then the close; then data is refused") {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  beast::websocket::stream<beast::tcp_stream> client(ioc);
  beast::get_lowest_layer(client).connect(acceptor.local_endpoint());
  // As in the server: the connection's socket runs on a strand of its own.
  beast::websocket::stream<outbound_stream<beast::tcp_stream>> server(
      beast::tcp_stream(acceptor.accept(net::make_strand(ioc))));

  const int n = 200;
  std::optional<send_status> after_close;
  server.async_accept([&](beast::error_code ec) {
    REQUIRE_FALSE(ec);
    server.next_layer().open();
    for (int i = 0; i < n; ++i)
      REQUIRE(server.next_layer().send_text(text("{\"type\":\"m\",\"n\":" + std::to_string(i) + "}")) ==
              send_status::queued);
    server.async_close(beast::websocket::close_code::normal, [](beast::error_code) {});
    net::post(server.get_executor(), [&] { after_close = server.next_layer().send_text(text("{}")); });
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
  REQUIRE(after_close.has_value());
  CHECK(*after_close == send_status::closed);
  CHECK(server.next_layer().socket_writes() < static_cast<std::uint64_t>(n));
}
