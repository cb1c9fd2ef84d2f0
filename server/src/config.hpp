#pragma once

// Server configuration: one table of settings from which the flags, the
// environment variables, the config file keys, --help and the default
// config/rendezvous.jsonc all derive.
//
// Naming rule: key `max_rooms` = flag `--max-rooms` = env `RENDEZVOUS_MAX_ROOMS`.
// Precedence: defaults < config file (--config FILE / RENDEZVOUS_CONFIG)
//             < environment < flags.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::server {

// Every field is named exactly as its setting. The initializers here are the
// defaults; the settings table reads them, so they are written only once.
struct config {
  // Network and process
  std::string listen_host = "0.0.0.0";  // IP literal, IPv6 without brackets
  std::uint16_t listen_port = 8080;     // 0: the OS picks a free port
  unsigned threads = 0;                 // 0: std::thread::hardware_concurrency()

  // Rooms and sessions
  std::uint32_t reconnect_grace_ms = 15000;  // 0: a dropped peer leaves at once
  std::size_t max_peers_per_room = 16;
  std::size_t max_message_bytes = 65536;
  std::size_t max_rooms = 100000;
  std::size_t max_connections = 100000;

  // Token bucket per connection; rate 0 disables it
  double rate_limit_per_s = 50;
  double rate_limit_burst = 200;
  std::size_t rate_limit_strikes = 20;

  // Per client address (the TCP peer, or X-Forwarded-For through
  // trusted_proxies; IPv6 counted per ipv6_prefix_bits); 0 disables each
  std::size_t max_connections_per_ip = 100;
  std::size_t max_handshakes_per_ip = 20;
  double join_rate_per_ip = 10;
  double join_burst_per_ip = 50;
  unsigned ipv6_prefix_bits = 64;

  // File descriptors kept back from RLIMIT_NOFILE for listeners, TLS files and logs
  std::size_t fd_reserve = 32;

  // Timers
  std::uint32_t ping_interval_ms = 20000;
  std::uint32_t handshake_timeout_ms = 10000;
  std::uint32_t drain_timeout_ms = 10000;

  // Memory bounds per connection
  std::size_t outbound_max_messages = 256;
  std::size_t outbound_max_bytes = 1048576;
  std::size_t held_max_messages = 64;
  std::size_t held_max_bytes = 262144;

  // ICE servers advertised in welcome.iceServers
  std::vector<std::string> stun_uris;

  // TLS: both set = https/wss only
  std::string tls_cert;
  std::string tls_key;

  // Auth: JWT HS256, off while no secret is set
  std::string auth_jwt_secret;
  std::string auth_jwt_secret_file;
  std::vector<std::string> allowed_origins;  // empty: every origin

  // Reverse proxies whose X-Forwarded-For names the client (logs, per-address limits)
  std::vector<std::string> trusted_proxies;  // addresses or CIDR ranges; empty: none

  // TURN credentials in coturn's REST form
  std::vector<std::string> turn_uris;
  std::string turn_secret;
  std::uint32_t turn_ttl_s = 86400;

  // Several nodes: one room across server processes over Redis (off while
  // redis_url is empty; then no Redis code runs)
  std::string redis_url;                        // redis://[:password@]host:port[/db] or unix:///path
  std::string redis_key_prefix = "rendezvous";  // several deployments can share one Redis
  std::string node_id;                          // empty: random at each start
  std::uint32_t cluster_heartbeat_ms = 1000;    // how often a node says it is alive
  std::uint32_t cluster_node_ttl_ms = 5000;     // silent this long: the node is dead
  std::uint32_t resume_seal_timeout_ms = 500;   // wait for the old node's held messages

  // Static files (browser module + demo page): builtin, off, or a directory
  std::string web_root = "builtin";

  // Logging: lower-case names, as spdlog::level::from_str expects
  std::string log_level = "info";   // trace|debug|info|warn|error|off
  std::string log_format = "text";  // text|json
};

// How a setting is written in the generated config file (JSON type).
enum class setting_kind { string, integer, number, list };

// One row of the settings table.
struct setting {
  std::string name;        // config key; flag and env var derive from it
  std::string value_name;  // placeholder in --help, e.g. HOST:PORT
  std::string help;        // one line, no trailing period
  setting_kind kind = setting_kind::string;
  bool secret = false;  // value hidden by describe() and in errors
  // Parses and validates `text` into the config; returns "" on success,
  // otherwise what was expected (e.g. "expected an integer >= 1").
  std::function<std::string(config&, std::string_view text)> set{};
  // The current value as text that `set` accepts back.
  std::function<std::string(const config&)> get{};

  std::string flag() const;          // --max-rooms
  std::string env() const;           // RENDEZVOUS_MAX_ROOMS
  std::string default_text() const;  // get(config{})
};

// The table, in the order used by --help, describe() and the config file.
const std::vector<setting>& settings();

enum class load_status { run, exit_ok, exit_error };

struct load_outcome {
  load_status status = load_status::run;
  config cfg;
  // Text to print, ending in a newline: --help or --version output for
  // exit_ok (stdout), one error line for exit_error (stderr), empty for run.
  std::string output;
};

// Parses flags (CLI11), the config file and the environment, in precedence
// order, then finish_config(): one call returns a usable config. `getenv` is injectable so tests need not
// touch the process environment; it returns nullptr for an unset variable.
load_outcome load_config(int argc, const char* const* argv,
                         const std::function<const char*(const char*)>& getenv);

// The parsing half of load_config, each setting on its own (for tests of the
// table); no checks across settings, no secret file read.
load_outcome parse_config(int argc, const char* const* argv,
                          const std::function<const char*(const char*)>& getenv);

// Reads the secret file, if any, into auth_jwt_secret and checks the settings
// that go together (load_config calls it). Returns an error line naming the
// settings, or "" when the config is usable.
std::string finish_config(config& cfg);

// Reads a one-line secret (trailing newlines dropped) from `path` into
// `secret`; returns "" or why not.
std::string read_secret_file(const std::string& path, std::string& secret);

// The defaults, for code that derives its own from the table's.
inline const config default_config{};

// One line "listen=0.0.0.0:8080 threads=0 ..." for the startup log.
std::string describe(const config& cfg);

// The commented default config file (config/rendezvous.jsonc), generated
// from the table; a unit test keeps the checked-in file equal to it.
std::string default_config_file();

}  // namespace rendezvous::server
