// rendezvous-floor: the relay job written as plainly as possible on Beast,
// the "naive floor" of issue 6. It shows what relaying costs by itself: no
// validation, no limits, no metrics, no logging.
//
//   rendezvous-floor --listen 127.0.0.1:0 --threads 1   prints "listening on 127.0.0.1:PORT"
//
// Room mode:  ws://HOST:PORT/rooms/ROOM?peer=ID -> one {"type":"welcome","id":ID} (so that a
//             client knows it is registered), then relaying.
// Lobby mode: ws://HOST:PORT/ID -> relaying only.
// A text frame {"id":TARGET,...} is parsed with nlohmann::json, "id" is set to
// the sender, and the re-serialized frame is posted to the target in the same
// room (or lobby); one async_write per message. Anything else is dropped.
// Shape: one io_context on --threads threads, a strand per connection, a
// mutex-guarded map of weak_ptrs (Beast's chat-multi example).
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class session;

struct registry {
  std::mutex mutex;
  std::unordered_map<std::string, std::weak_ptr<session>> peers;  // key: room + '\n' + id
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, registry& reg) : ws_(std::move(socket)), registry_(reg) {}

  ~session() {
    if (key_.empty()) return;
    std::lock_guard lock(registry_.mutex);
    auto it = registry_.peers.find(key_);
    if (it != registry_.peers.end() && it->second.expired()) registry_.peers.erase(it);
  }

  // On this session's strand (the socket's executor).
  void run(http::request<http::string_body> req) {
    std::string_view path = req.target();
    if (path.starts_with("/rooms/")) {
      auto rest = path.substr(7);
      auto query = rest.find('?');
      room_ = "r:" + std::string(rest.substr(0, query));
      auto peer = query == std::string_view::npos ? std::string_view::npos : rest.find("peer=", query);
      if (peer != std::string_view::npos) {
        auto value = rest.substr(peer + 5);
        id_ = std::string(value.substr(0, value.find('&')));
      }
      room_mode_ = true;
    } else {
      room_ = "l:";
      id_ = std::string(path.substr(1));
    }
    ws_.async_accept(req, beast::bind_front_handler(&session::on_accept, shared_from_this()));
  }

  // Any thread.
  void send(std::shared_ptr<const std::string> msg) {
    net::post(ws_.get_executor(),
              [self = shared_from_this(), msg = std::move(msg)]() mutable { self->on_send(std::move(msg)); });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec || id_.empty()) return;
    key_ = room_ + '\n' + id_;
    {
      std::lock_guard lock(registry_.mutex);
      registry_.peers[key_] = weak_from_this();
    }
    if (room_mode_)
      on_send(std::make_shared<const std::string>(nlohmann::json{{"type", "welcome"}, {"id", id_}}.dump()));
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return;
    auto message = nlohmann::json::parse(beast::buffers_to_string(buffer_.data()), nullptr, false);
    buffer_.consume(buffer_.size());
    if (message.is_object()) {
      auto id = message.find("id");
      if (id != message.end() && id->is_string()) {
        auto target_key = room_ + '\n' + id->get<std::string>();
        *id = id_;
        auto out = std::make_shared<const std::string>(message.dump());
        std::shared_ptr<session> target;
        {
          std::lock_guard lock(registry_.mutex);
          auto it = registry_.peers.find(target_key);
          if (it != registry_.peers.end()) target = it->second.lock();
        }
        if (target) target->send(std::move(out));
      }
    }
    do_read();
  }

  void on_send(std::shared_ptr<const std::string> msg) {
    queue_.push_back(std::move(msg));
    if (queue_.size() > 1) return;  // a write is in flight
    do_write();
  }

  void do_write() {
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    queue_.pop_front();
    if (!queue_.empty()) do_write();
  }

  websocket::stream<beast::tcp_stream> ws_;
  registry& registry_;
  beast::flat_buffer buffer_;
  std::string room_;
  std::string id_;
  std::string key_;
  bool room_mode_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;
};

// Reads the upgrade request, then hands the socket to a session.
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket&& socket, registry& reg) : stream_(std::move(socket)), registry_(reg) {}

  void run() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, req_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

 private:
  void on_read(beast::error_code ec, std::size_t) {
    if (ec || !websocket::is_upgrade(req_)) return;  // not a WebSocket: close
    stream_.expires_never();
    std::make_shared<session>(stream_.release_socket(), registry_)->run(std::move(req_));
  }

  beast::tcp_stream stream_;
  registry& registry_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
};

class listener : public std::enable_shared_from_this<listener> {
 public:
  listener(net::io_context& ioc, tcp::endpoint endpoint, registry& reg)
      : ioc_(ioc), acceptor_(ioc), registry_(reg) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<http_session>(std::move(socket), registry_)->run();
    } else if (ec == net::error::no_descriptors) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of fds: do not spin
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  registry& registry_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  unsigned threads = 1;
  CLI::App app{"rendezvous-floor: the plainest WebSocket relay on Beast (benchmark floor)",
               "rendezvous-floor"};
  app.add_option("--listen", listen, "HOST:PORT (IPv4); port 0 picks a free port");
  app.add_option("--threads", threads, "threads running the io_context")->check(CLI::Range(1u, 256u));
  CLI11_PARSE(app, argc, argv);

  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--listen wants HOST:PORT\n";
    return 2;
  }
  beast::error_code ec;
  auto address = net::ip::make_address(listen.substr(0, colon), ec);
  if (ec) {
    std::cerr << "bad address: " << listen << "\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::stoul(listen.substr(colon + 1)));

  net::io_context ioc{static_cast<int>(threads)};
  registry reg;
  auto server = std::make_shared<listener>(ioc, tcp::endpoint{address, port}, reg);
  server->do_accept();
  auto ep = server->local_endpoint();
  std::cout << "listening on " << ep.address().to_string() << ":" << ep.port() << std::endl;

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
