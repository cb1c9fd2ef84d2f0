// rendezvous-bench: a WebSocket load generator for signaling servers
// (rendezvous room and lobby mode, the PeerJS server, the bench's floor).
//
//   rendezvous-bench --mode connect --port P --proto room -n 20000 -c 200 --procs 2 --server-pid PID
//   rendezvous-bench --mode relay --port P --proto lobby --peers 32 --window 16 --payload 200 --server-pid
//   PID rendezvous-bench --mode relay --port P --proto peerjs --peers 32 --rate 10000 --server-pid PID
//
// The last stdout line is one JSON object with every figure; progress and
// errors go to stderr. One io_context per thread.
#include "options.hpp"
#include "proc_stats.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>

#include <sys/prctl.h>

#include <iostream>

using namespace rendezvous::bench;

namespace rendezvous::bench {

target options::make_target() const {
  target t;
  t.endpoint = {boost::asio::ip::make_address(host), port};
  t.proto = proto == "lobby"    ? protocol_kind::lobby
            : proto == "peerjs" ? protocol_kind::peerjs
                                : protocol_kind::room;
  t.peerjs_key = peerjs_key;
  return t;
}

target options::make_target2() const {
  target t = make_target();
  if (port2 != 0) t.endpoint.port(port2);
  return t;
}

}  // namespace rendezvous::bench

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"rendezvous-bench: load generator for WebRTC signaling servers", "rendezvous-bench"};
  app.add_option("--mode", opt.mode, "connect or relay")->check(CLI::IsMember({"connect", "relay"}));
  app.add_option("--host", opt.host, "server address (an IP address)");
  app.add_option("--port", opt.port, "server port")->required();
  app.add_option("--proto", opt.proto, "room, lobby or peerjs (the floor speaks room and lobby)")
      ->check(CLI::IsMember({"room", "lobby", "peerjs"}));
  app.add_option("--peerjs-key", opt.peerjs_key, "PeerJS key query parameter");
  app.add_option("--id-prefix", opt.id_prefix, "prefix of peer ids and room names");
  app.add_option("--server-pid", opt.server_pid, "server process: CPU time and RSS are read from /proc/PID");
  app.add_option("--port2", opt.port2, "relay: the second peer of each pair joins this port (another node)");
  app.add_option("--extra-pid", opt.extra_pids,
                 "relay: processes whose CPU adds to the server's (repeatable)");
  app.add_option("--threads", opt.threads, "bench threads, one io_context each");
  app.add_option("--label", opt.label, "copied into the JSON result");
  app.add_option("-n,--connections", opt.connections, "connect: connections to open");
  app.add_option("-c,--concurrency", opt.concurrency, "connections being opened at once (both modes)");
  app.add_option("--procs", opt.procs, "connect: worker processes (each has its own open-file limit)");
  app.add_option("--settle-ms", opt.settle_ms, "connect: wait before reading the server's RSS");
  app.add_option("--source-port-base", opt.source_port_base,
                 "connect: connection i binds source port BASE+i (e.g. 10000: below the ephemeral range) and "
                 "closes with RST; 0 = kernel-chosen ports");
  app.add_option("--peers", opt.peers, "relay: peers, in pairs");
  auto* window =
      app.add_option("-w,--window", opt.window, "relay: messages in flight per peer (0 = unlimited)");
  app.add_option("-b,--payload", opt.payload, "relay: bytes per frame sent (padded)");
  app.add_option("-r,--rate", opt.rate,
                 "relay: fixed offered rate, msgs/s over all peers (0 = window-limited)");
  app.add_option("--warmup", opt.warmup_s, "relay: seconds before the measured window");
  app.add_option("--duration", opt.duration_s, "relay: seconds measured");
  app.add_option("--drain", opt.drain_s, "relay: seconds allowed for in-flight messages after sending stops");
  app.add_option("--start-delay-ms", opt.start_delay_ms,
                 "relay: pause between the last connect and the first send");
  CLI11_PARSE(app, argc, argv);
  opt.window_given = window->count() > 0;

  // Punctual timers for the fixed-rate schedule (default slack is 50 us).
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  try {
    auto result = opt.mode == "connect" ? run_connect(opt) : run_relay(opt);
    std::cout << result.dump() << std::endl;
    return result.contains("error") ? 1 : 0;
  } catch (const std::exception& e) {
    nlohmann::json err{{"mode", opt.mode}, {"proto", opt.proto}, {"label", opt.label}, {"error", e.what()}};
    std::cout << err.dump() << std::endl;
    return 1;
  }
}
