// rendezvous-server: the WebRTC signaling room server.
//
// Process shape: load config, start the listener on one io_context run by N
// threads, wait for SIGINT/SIGTERM, then drain (readyz 503, joins refused,
// every WebSocket closed with 1001) and exit 0 within drain_timeout_ms.
#include "config.hpp"
#include "listener.hpp"
#include "local_room_registry.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "server_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <vector>

namespace net = boost::asio;
using namespace rendezvous::server;

namespace {

session_settings settings_from(const config& cfg) {
  session_settings s;
  s.max_message_bytes = cfg.max_message_bytes;
  s.max_connections = cfg.max_connections;
  s.rate_limit_per_s = cfg.rate_limit_per_s;
  s.rate_limit_burst = cfg.rate_limit_burst;
  s.rate_limit_strikes = cfg.rate_limit_strikes;
  s.ping_interval = std::chrono::milliseconds(cfg.ping_interval_ms);
  s.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  s.outbound_max_messages = cfg.outbound_max_messages;
  s.outbound_max_bytes = cfg.outbound_max_bytes;
  s.ice_servers = nlohmann::json::array();
  if (!cfg.stun_uris.empty()) s.ice_servers.push_back({{"urls", cfg.stun_uris}});
  return s;
}

registry_limits limits_from(const config& cfg) {
  registry_limits l;
  l.max_peers_per_room = cfg.max_peers_per_room;
  l.max_rooms = cfg.max_rooms;
  l.reconnect_grace = std::chrono::milliseconds(cfg.reconnect_grace_ms);
  l.held_max_messages = cfg.held_max_messages;
  l.held_max_bytes = cfg.held_max_bytes;
  return l;
}

std::string format_endpoint(const net::ip::tcp::endpoint& ep) {
  auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" + std::to_string(ep.port());
}

int run_server(const config& cfg) {
  setup_logging(cfg.log_level, cfg.log_format);
  unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

  net::io_context ioc{static_cast<int>(threads)};
  metrics stats;
  local_room_registry registry{ioc.get_executor(), limits_from(cfg), stats};
  server_state state{settings_from(cfg), stats, registry};

  boost::system::error_code ec;
  auto address = net::ip::make_address(cfg.listen_host, ec);
  if (ec) {
    spdlog::error("invalid listen address {}: {}", cfg.listen_host, ec.message());
    return 1;
  }
  std::shared_ptr<listener> server;
  try {
    server = std::make_shared<listener>(ioc, net::ip::tcp::endpoint{address, cfg.listen_port}, state);
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen on {}:{}: {}", cfg.listen_host, cfg.listen_port, e.code().message());
    return 1;
  }
  server->run();
  spdlog::info("rendezvous-server {} threads={} {}", RENDEZVOUS_VERSION, threads, describe(cfg));
  spdlog::info("listening on {}", format_endpoint(server->local_endpoint()));

  // Drain on the first signal; the process exits when every WebSocket has
  // closed or the drain timeout passes, whichever comes first.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain_deadline(ioc);
  signals.async_wait([&](const boost::system::error_code& sig_ec, int signo) {
    if (sig_ec) return;
    spdlog::info("signal {}: draining (timeout {} ms)", signo, cfg.drain_timeout_ms);
    drain_deadline.expires_after(std::chrono::milliseconds(cfg.drain_timeout_ms));
    drain_deadline.async_wait([&](const boost::system::error_code& t_ec) {
      if (t_ec) return;
      spdlog::warn("drain timeout: stopping with connections still open");
      ioc.stop();
    });
    state.begin_drain([&] {
      spdlog::info("all connections closed");
      net::post(ioc, [&] { ioc.stop(); });
    });
  });

  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto outcome = load_config(argc, argv, [](const char* name) { return std::getenv(name); });
  switch (outcome.status) {
    case load_status::exit_ok:
      std::cout << outcome.output;
      return 0;
    case load_status::exit_error:
      std::cerr << outcome.output;
      return 2;
    case load_status::run:
      break;
  }
  try {
    return run_server(outcome.cfg);
  } catch (const std::exception& e) {
    // Handlers do not throw; this is a last resort that logs and exits on purpose.
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
