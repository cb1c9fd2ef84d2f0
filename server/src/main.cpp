// rendezvous-server: the WebRTC signaling room server.
//
// Process shape: load config, start the listener on one io_context run by N
// threads, wait for SIGINT/SIGTERM, then drain (readyz 503, joins refused,
// every WebSocket closed with 1001) and exit 0 within drain_timeout_ms.
#include "auth.hpp"
#include "cluster_room_registry.hpp"
#include "config.hpp"
#include "listener.hpp"
#include "local_room_registry.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "random_token.hpp"
#include "server_state.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

namespace net = boost::asio;
using namespace rendezvous::server;

namespace {

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
    if (auto err = read_secret_file(secret_file, secret); !err.empty()) {
      std::cerr << "rendezvous-server token: secret file: " << err << "\n";
      return 2;
    }
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

// Raises the soft RLIMIT_NOFILE to the hard limit where the process may,
// and returns the socket budget: the soft limit less `reserve` and the
// descriptors open now (logs, TLS files, the io_context's own). One line in
// the start-up log says it.
std::size_t socket_budget_at_start(std::size_t reserve) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    spdlog::warn("getrlimit(RLIMIT_NOFILE) failed: {}; no socket budget", std::strerror(errno));
    return SIZE_MAX;
  }
  const auto before = lim.rlim_cur;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  std::size_t open_now = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++open_now;
  const std::uint64_t soft = lim.rlim_cur == RLIM_INFINITY ? std::uint64_t{1} << 40 : lim.rlim_cur;
  const auto budget = socket_budget_for(soft, reserve, open_now);
  spdlog::info("socket budget {}: RLIMIT_NOFILE soft {} (was {}, hard {}) less fd_reserve {} and {} open",
               budget, soft, before == RLIM_INFINITY ? std::string("unlimited") : std::to_string(before),
               lim.rlim_max == RLIM_INFINITY ? std::string("unlimited") : std::to_string(lim.rlim_max),
               reserve, open_now);
  return budget;
}

// Every 10 s: the refusal lines that came due without a new refusal, and
// forgetting addresses that hold nothing. On its own timer, so that the
// accept path never logs more than the first line of an episode.
void sweep_limits(net::steady_timer& timer, server_state& state) {
  timer.expires_after(std::chrono::seconds(10));
  timer.async_wait([&timer, &state](const boost::system::error_code& ec) {
    if (ec) return;
    for (const auto& line : state.limits().sweep(steady_now_us()))
      log_event(
          spdlog::level::warn, "refuse-address",
          {{"address", line.key.to_string()}, {"reason", to_string(line.reason)}, {"refused", line.count}});
    sweep_limits(timer, state);
  });
}

int run_server(const config& cfg) {
  setup_logging(cfg.log_level, cfg.log_format);
  unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

  auto settings = session_settings_from(cfg);
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
  // One node alone, or one of several over Redis: without redis_url no
  // backplane code runs.
  std::unique_ptr<local_room_registry> local;
  std::unique_ptr<cluster_room_registry> cluster;
  if (cfg.redis_url.empty()) {
    local = std::make_unique<local_room_registry>(ioc.get_executor(), registry_limits::from(cfg), stats);
  } else {
    auto node_id = cfg.node_id.empty() ? "node-" + random_hex(4) : cfg.node_id;
    cluster = std::make_unique<cluster_room_registry>(ioc, cluster_settings::from(cfg, node_id), stats);
  }
  room_registry& registry = local ? static_cast<room_registry&>(*local) : *cluster;
  server_state state{std::move(settings), stats, registry};
  state.sockets().set_budget(socket_budget_at_start(cfg.fd_reserve));
  stats.socket_budget.Set(static_cast<double>(state.sockets().budget()));

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
  net::steady_timer sweep_timer(ioc);
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain_deadline(ioc);
  signals.async_wait([&](const boost::system::error_code& sig_ec, int signo) {
    if (sig_ec) return;
    spdlog::info("signal {}: draining (timeout {} ms)", signo, cfg.drain_timeout_ms);
    sweep_timer.cancel();
    server->stop();  // new connections are refused by the kernel, not upgraded to be refused
    drain_deadline.expires_after(std::chrono::milliseconds(cfg.drain_timeout_ms));
    drain_deadline.async_wait([&](const boost::system::error_code& t_ec) {
      if (t_ec) return;
      spdlog::warn("drain timeout: stopping with connections still open");
      ioc.stop();
    });
    state.begin_drain([&] {
      spdlog::info("all connections closed");
      spdlog::default_logger()->flush();
      if (cluster) return cluster->stop([&] { net::post(ioc, [&] { ioc.stop(); }); });
      net::post(ioc, [&] { ioc.stop(); });
    });
  });

  sweep_limits(sweep_timer, state);
  if (cluster) cluster->start();
  server->run();
  spdlog::info("rendezvous-server {} threads={} {}", RENDEZVOUS_VERSION, threads, describe(cfg));
  log_always(fmt::format("listening on {} ({}{})", format_endpoint(server->local_endpoint()),
                         tls ? "https/wss" : "http/ws", cfg.auth_jwt_secret.empty() ? "" : ", auth on"));

  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
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
  try {
    return run_server(outcome.cfg);
  } catch (const std::exception& e) {
    // Handlers do not throw; this is a last resort that logs and exits on purpose.
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
