#pragma once
// Command-line settings of rendezvous-bench (see main.cpp for the flags).
#include "ws_peer.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rendezvous::bench {

struct options {
  std::string mode = "relay";  // connect | relay
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string proto = "room";  // room | lobby | peerjs
  std::string peerjs_key = "peerjs";
  std::string id_prefix = "b";
  pid_t server_pid = 0;
  // Several nodes: the second peer of each pair joins the node at port2, and
  // the CPU of extra_pids (the other node, redis-server) adds to the server's.
  unsigned short port2 = 0;
  std::vector<pid_t> extra_pids;
  unsigned threads = 1;
  std::string label;

  // connect
  std::uint64_t connections = 1000;
  unsigned concurrency = 100;
  unsigned procs = 1;
  unsigned settle_ms = 1000;      // wait after the last connection before reading RSS
  unsigned source_port_base = 0;  // 0: the kernel picks source ports (see target)

  // relay
  std::uint64_t peers = 2;
  std::uint64_t window = 1;  // messages in flight per peer (0: unlimited; default with --rate)
  bool window_given = false;
  std::size_t payload = 200;  // bytes of each frame the client sends
  double rate = 0;            // offered msgs/s over all peers; 0 = as fast as the window allows
  double warmup_s = 1;
  double duration_s = 5;
  double drain_s = 3;
  unsigned start_delay_ms = 200;  // after every peer is connected, before the first message

  target make_target() const;
  target make_target2() const;  // port2, or the same as make_target()
};

// Each mode returns the JSON object printed as the final stdout line.
nlohmann::json run_connect(const options& opt);
nlohmann::json run_relay(const options& opt);

}  // namespace rendezvous::bench
