// rendezvous-server: the WebRTC signaling room server.
//
// Process shape: load config, start the listener on one io_context run by N
// threads, wait for SIGINT/SIGTERM, then drain (readyz 503, joins refused,
// every WebSocket closed with 1001) and exit 0 within drain_timeout_ms.
#include "auth.hpp"
#include "config.hpp"
#include "listener.hpp"
#include "local_room_registry.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "server_state.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
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
  s.ice.stun_uris = cfg.stun_uris;
  s.ice.turn_uris = cfg.turn_uris;
  s.ice.turn_secret = cfg.turn_secret;
  s.ice.turn_ttl_s = cfg.turn_ttl_s;
  s.auth_secret = cfg.auth_jwt_secret;
  s.allowed_origins = cfg.allowed_origins;
  for (const auto& text : cfg.trusted_proxies)
    if (auto r = parse_ip_range(text)) s.trusted_proxies.push_back(*r);  // checked when loaded
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

// Reads the secret file, if any, into auth_jwt_secret and checks settings
// that go together. Returns an error line, or "" when the config is usable.
std::string finish_config(config& cfg) {
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) return "tls_cert and tls_key must be set together";
  if (!cfg.auth_jwt_secret_file.empty()) {
    if (!cfg.auth_jwt_secret.empty()) return "set auth_jwt_secret or auth_jwt_secret_file, not both";
    std::ifstream in(cfg.auth_jwt_secret_file);
    if (!in) return "cannot read auth_jwt_secret_file " + cfg.auth_jwt_secret_file;
    std::stringstream text;
    text << in.rdbuf();
    cfg.auth_jwt_secret = text.str();
    while (!cfg.auth_jwt_secret.empty() &&
           (cfg.auth_jwt_secret.back() == '\n' || cfg.auth_jwt_secret.back() == '\r'))
      cfg.auth_jwt_secret.pop_back();
    if (cfg.auth_jwt_secret.empty()) return "auth_jwt_secret_file " + cfg.auth_jwt_secret_file + " is empty";
  }
  if (!cfg.turn_uris.empty() && cfg.turn_secret.empty()) return "turn_uris needs turn_secret";
  return {};
}

// `rendezvous-server token --room R [--sub ID] [--ttl S]`: prints a JWT signed
// with the configured secret, so auth can be tried without writing code.
int token_command(int argc, char** argv) {
  CLI::App app{"Print a join token (JWT HS256) for rendezvous-server", "rendezvous-server token"};
  std::string room, sub, secret, secret_file;
  std::int64_t ttl = 3600;
  app.add_option("--room", room, "room name the token admits, or * for any")->required();
  app.add_option("--sub", sub, "the only peer id the token admits (optional)");
  app.add_option("--ttl", ttl, "seconds until the token expires")->check(CLI::PositiveNumber);
  app.add_option("--secret", secret, "HS256 secret (default: env RENDEZVOUS_AUTH_JWT_SECRET)");
  app.add_option("--secret-file", secret_file,
                 "file holding the secret (default: env RENDEZVOUS_AUTH_JWT_SECRET_FILE)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (secret.empty() && secret_file.empty()) {
    if (const char* env = std::getenv("RENDEZVOUS_AUTH_JWT_SECRET")) secret = env;
    if (const char* env = std::getenv("RENDEZVOUS_AUTH_JWT_SECRET_FILE")) secret_file = env;
  }
  if (secret.empty() && !secret_file.empty()) {
    config cfg;
    cfg.auth_jwt_secret_file = secret_file;
    if (auto err = finish_config(cfg); !err.empty()) {
      std::cerr << "rendezvous-server token: " << err << "\n";
      return 2;
    }
    secret = cfg.auth_jwt_secret;
  }
  if (secret.empty()) {
    std::cerr
        << "rendezvous-server token: no secret (--secret, --secret-file or RENDEZVOUS_AUTH_JWT_SECRET)\n";
    return 2;
  }
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  std::cout << make_token(secret, room, sub, now.count(), ttl) << "\n";
  return 0;
}

int run_server(const config& cfg) {
  setup_logging(cfg.log_level, cfg.log_format);
  unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

  auto settings = settings_from(cfg);
  try {
    if (cfg.web_root == "builtin")
      settings.web = std::make_shared<web_content>(web_content::builtin());
    else if (cfg.web_root != "off")
      settings.web = std::make_shared<web_content>(web_content::from_directory(cfg.web_root));
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }

  net::io_context ioc{static_cast<int>(threads)};
  metrics stats;
  local_room_registry registry{ioc.get_executor(), limits_from(cfg), stats};
  server_state state{std::move(settings), stats, registry};

  boost::system::error_code ec;
  auto address = net::ip::make_address(cfg.listen_host, ec);
  if (ec) {
    spdlog::error("invalid listen address {}: {}", cfg.listen_host, ec.message());
    return 1;
  }
  std::unique_ptr<net::ssl::context> tls;
  if (!cfg.tls_cert.empty()) {
    tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(cfg.tls_cert, ec);
    if (!ec) tls->use_private_key_file(cfg.tls_key, net::ssl::context::pem, ec);
    if (ec) {
      spdlog::error("cannot load tls_cert {} / tls_key {}: {}", cfg.tls_cert, cfg.tls_key, ec.message());
      return 1;
    }
  }
  std::shared_ptr<listener> server;
  try {
    server =
        std::make_shared<listener>(ioc, net::ip::tcp::endpoint{address, cfg.listen_port}, state, tls.get());
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen on {}:{}: {}", cfg.listen_host, cfg.listen_port, e.code().message());
    return 1;
  }
  // Signals are caught before "listening on" is printed: whoever reads that
  // line may send SIGTERM at once. Drain on the first signal; the process exits when every WebSocket has
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

  server->run();
  spdlog::info("rendezvous-server {} threads={} {}", RENDEZVOUS_VERSION, threads, describe(cfg));
  spdlog::info("listening on {} ({}{})", format_endpoint(server->local_endpoint()),
               tls ? "https/wss" : "http/ws", cfg.auth_jwt_secret.empty() ? "" : ", auth on");

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
  if (argc > 1 && std::string_view(argv[1]) == "token") return token_command(argc - 1, argv + 1);
  auto outcome = load_config(argc, argv, [](const char* name) { return std::getenv(name); });
  switch (outcome.status) {
    case load_status::exit_ok: std::cout << outcome.output; return 0;
    case load_status::exit_error: std::cerr << outcome.output; return 2;
    case load_status::run: break;
  }
  if (auto err = finish_config(outcome.cfg); !err.empty()) {
    std::cerr << "rendezvous-server: " << err << "\n";
    return 2;
  }
  try {
    return run_server(outcome.cfg);
  } catch (const std::exception& e) {
    // Handlers do not throw; this is a last resort that logs and exits on purpose.
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
