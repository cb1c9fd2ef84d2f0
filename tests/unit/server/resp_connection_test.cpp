// resp_connection against a canned RESP peer on 127.0.0.1 (in the same
// io_context, so no thread and no sleeps): the connect handshake (AUTH,
// PING), pipelined commands answered in order, published messages told
// apart from replies, a reply that never comes, a peer that hangs up, and
// the output bound. Real Redis is exercised by the cluster tests.
#include "resp_connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace net = boost::asio;
using tcp = net::ip::tcp;
using rendezvous::server::redis_endpoint;
using rendezvous::server::redis_strand;
using rendezvous::server::reply_text;
using rendezvous::server::resp_connection;

namespace {
// Reads what the client writes; each time `received` contains the next
// step's `until` (counted from where the last step matched), writes that
// step's bytes (and closes when `close` is set).
struct canned_peer {
  struct step {
    std::string until;
    std::string reply;
    bool close = false;
  };
  net::io_context& ioc;
  tcp::acceptor acceptor;
  tcp::socket socket;
  std::vector<step> steps;
  std::size_t next = 0, matched_at = 0;
  std::string received;
  char buf[4096];

  canned_peer(net::io_context& io, std::vector<step> s)
      : ioc(io),
        acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        socket(io),
        steps(std::move(s)) {
    acceptor.async_accept(socket, [this](boost::system::error_code ec) {
      if (!ec) read();
    });
  }
  unsigned short port() const { return acceptor.local_endpoint().port(); }
  void read() {
    socket.async_read_some(net::buffer(buf), [this](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      received.append(buf, n);
      while (next < steps.size()) {
        auto at = received.find(steps[next].until, matched_at);
        if (at == std::string::npos) break;
        matched_at = at + steps[next].until.size();
        auto& st = steps[next++];
        net::write(socket, net::buffer(st.reply));
        if (st.close) {
          socket.close();
          return;
        }
      }
      read();
    });
  }
};

redis_endpoint local(unsigned short port, std::string password = {}) {
  redis_endpoint e;
  e.host = "127.0.0.1";
  e.port = port;
  e.password = std::move(password);
  return e;
}

// Runs the io_context until `done` or 5 s.
void run_until(net::io_context& ioc, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(10));
  }
  REQUIRE(done());
}
}  // namespace

TEST_SUITE("resp_connection") {
  TEST_CASE("connects with AUTH, then pipelined replies come back in order, pushes apart") {
    net::io_context ioc;
    canned_peer peer(
        ioc, {{"PING", "+OK\r\n+PONG\r\n"},
              {"third", "$3\r\none\r\n:2\r\n*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$4\r\npush\r\n+three\r\n"}});
    auto conn =
        std::make_shared<resp_connection>(redis_strand(ioc.get_executor()), local(peer.port(), "s3cret"),
                                          std::chrono::milliseconds(2000), 1 << 20);
    std::optional<bool> connected;
    conn->connect([&](bool ok) { connected = ok; });
    run_until(ioc, [&] { return connected.has_value(); });
    CHECK(*connected);
    CHECK(peer.received.find("AUTH") < peer.received.find("PING"));
    CHECK(peer.received.find("s3cret") != std::string::npos);

    std::vector<std::string> order, pushes;
    conn->set_push_handler(
        [&](const redisReply& r) { pushes.emplace_back(r.element[2]->str, r.element[2]->len); });
    // Each handler tags what it got, so a reply given to the wrong caller shows.
    CHECK(conn->command({"GET", "first"},
                        [&](const redisReply* r) { order.push_back("GET:" + std::string(reply_text(r))); }));
    CHECK(conn->command({"INCR", "second"}, [&](const redisReply* r) {
      REQUIRE(r);
      order.push_back("INCR:" + (r->type == REDIS_REPLY_INTEGER ? std::to_string(r->integer) : "?"));
    }));
    CHECK(conn->command({"ECHO", "third"},
                        [&](const redisReply* r) { order.push_back("ECHO:" + std::string(reply_text(r))); }));
    run_until(ioc, [&] { return order.size() == 3; });
    CHECK(order == std::vector<std::string>{"GET:one", "INCR:2", "ECHO:three"});
    CHECK(pushes == std::vector<std::string>{"push"});
    CHECK(conn->up());
    conn->close();
  }

  TEST_CASE(
      "a reply slower than the timeout fails the connection: handlers get nullptr in order, on_lost once") {
    net::io_context ioc;
    canned_peer peer(ioc, {{"PING", "+PONG\r\n"}});  // then silence
    auto conn = std::make_shared<resp_connection>(redis_strand(ioc.get_executor()), local(peer.port()),
                                                  std::chrono::milliseconds(200), 1 << 20);
    std::optional<bool> connected;
    conn->connect([&](bool ok) { connected = ok; });
    run_until(ioc, [&] { return connected.has_value(); });
    REQUIRE(*connected);
    std::vector<int> failed;
    int lost = 0;
    std::string why;
    conn->set_on_lost([&](std::string_view w) {
      ++lost;
      why = w;
    });
    conn->command({"GET", "a"}, [&](const redisReply* r) { failed.push_back(r ? -1 : 1); });
    conn->command({"GET", "b"}, [&](const redisReply* r) { failed.push_back(r ? -1 : 2); });
    run_until(ioc, [&] { return lost == 1; });
    CHECK(failed == std::vector<int>{1, 2});
    CHECK(why.find("no reply") != std::string::npos);
    CHECK(!conn->up());
    CHECK(!conn->command({"GET", "c"}));  // refused once down
  }

  TEST_CASE("the peer hangs up: pending handlers get nullptr and on_lost runs") {
    net::io_context ioc;
    canned_peer peer(ioc, {{"PING", "+PONG\r\n"}, {"bye", "", true}});
    auto conn = std::make_shared<resp_connection>(redis_strand(ioc.get_executor()), local(peer.port()),
                                                  std::chrono::milliseconds(2000), 1 << 20);
    std::optional<bool> connected;
    conn->connect([&](bool ok) { connected = ok; });
    run_until(ioc, [&] { return connected.has_value(); });
    bool got_null = false;
    int lost = 0;
    conn->set_on_lost([&](std::string_view) { ++lost; });
    conn->command({"ECHO", "bye"}, [&](const redisReply* r) { got_null = r == nullptr; });
    run_until(ioc, [&] { return lost == 1; });
    CHECK(got_null);
  }

  TEST_CASE("nothing listening: connect reports failure") {
    net::io_context ioc;
    unsigned short port;
    {
      tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
      port = a.local_endpoint().port();
    }  // closed: connections to it are refused
    auto conn = std::make_shared<resp_connection>(redis_strand(ioc.get_executor()), local(port),
                                                  std::chrono::milliseconds(500), 1 << 20);
    std::optional<bool> connected;
    conn->connect([&](bool ok) { connected = ok; });
    run_until(ioc, [&] { return connected.has_value(); });
    CHECK(!*connected);
  }

  TEST_CASE("the output bound: commands beyond it are refused, not buffered") {
    net::io_context ioc;
    canned_peer peer(ioc, {{"PING", "+PONG\r\n"}});
    auto conn = std::make_shared<resp_connection>(redis_strand(ioc.get_executor()), local(peer.port()),
                                                  std::chrono::milliseconds(2000), 64);
    std::optional<bool> connected;
    conn->connect([&](bool ok) { connected = ok; });
    run_until(ioc, [&] { return connected.has_value(); });
    REQUIRE(*connected);
    std::string big(100, 'x');
    CHECK(conn->command({"SPUBLISH", "ch", big}));   // the buffer was empty: taken, now in flight
    CHECK(!conn->command({"SPUBLISH", "ch", big}));  // over the bound while that write is out
    conn->close();
  }
}
