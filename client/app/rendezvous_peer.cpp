// rendezvous-peer: joins a room of a Rendezvous server, takes a role with each
// other peer, opens a WebRTC data channel to it, sends each stdin line and
// prints each received message. See docs/client.md.
//
// Threading: one thread runs the io_context. The signaling client, the
// negotiator and every event run on the signaling client's strand; the
// WebRTC engine has its own GLib thread and posts its events to that strand;
// a helper thread blocks on stdin and posts each line to it.
#include <rendezvous/client/negotiation.hpp>
#include <rendezvous/client/signaling_client.hpp>
#include <rendezvous/client/webrtc_util.hpp>
#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
#include <rendezvous/client/webrtcbin_engine.hpp>
#endif

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
using namespace rendezvous::client;

namespace {

// Exit codes (documented in --help and docs/client.md).
enum exit_code : int {
  exit_done = 0,
  exit_internal = 1,
  exit_usage = 2,
  exit_unreachable = 3,  // could not connect to the server
  exit_refused = 4,      // the server refused the join, with a code
  exit_webrtc = 5,       // no data channel (or not the messages asked for) in time; WebRTC unavailable
};

struct cli_options {
  std::string server;
  std::string room;
  std::string id;
  std::string token;
  std::string ca_file;
  bool insecure = false;
  bool json = false;
  std::vector<std::string> sends;
  std::string send_file;
  int exit_after = 0;
  double timeout_s = 0;
  std::vector<std::string> ice_servers;
  std::vector<std::string> local_ips;
  int connect_attempts = 8;
  bool signaling_only = false;
  bool force_glare = false;
  bool no_stdin = false;
  int verbose = 0;
  std::string label = "rendezvous";
};

[[maybe_unused]] std::string random_hex(std::mt19937_64& rng, int n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(hex[rng() % 16]);
  return s;
}

// Wraps a completion handler so that no exception escapes into the
// io_context: it is logged and the peer ends with exit code 1.
template <class F>
auto guarded(F f) {
  return [f = std::move(f)](auto&&... args) mutable {
    try {
      f(std::forward<decltype(args)>(args)...);
    } catch (const std::exception& e) {
      spdlog::error("internal error in a handler: {}", e.what());
      std::_Exit(exit_internal);
    } catch (...) {
      spdlog::error("internal error in a handler");
      std::_Exit(exit_internal);
    }
  };
}

class peer_app : public negotiation_observer {
 public:
  peer_app(net::io_context& ioc, cli_options opt)
      : ioc_(ioc), opt_(std::move(opt)), rng_(std::random_device{}()) {
    greetings_ = opt_.sends;
  }

  int run() {
    if (!opt_.send_file.empty()) {
      std::ifstream in(opt_.send_file, std::ios::binary);
      if (!in) {
        std::cerr << "rendezvous-peer: cannot read --send-file " << opt_.send_file << "\n";
        return exit_usage;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      greetings_.push_back(ss.str());
    }

    signaling_options so;
    so.url = opt_.server;
    so.room = opt_.room;
    so.peer_id = opt_.id;
    so.token = opt_.token;
    so.ca_file = opt_.ca_file;
    so.insecure = opt_.insecure;
    so.first_connect_attempts = opt_.connect_attempts;
    signaling_handlers h;
    h.on_state = [this](connection_state s) { on_signaling_state(s); };
    h.on_welcome = [this](const welcome_event& w) { on_welcome(w); };
    h.on_peer_joined = [this](const peer_joined_event& e) { on_peer_joined(e); };
    h.on_peer_left = [this](const peer_left_event& e) { on_peer_left(e); };
    h.on_message = [this](const relayed_message& m) { on_signal(m); };
    h.on_error = [this](const error_event& e) { on_signaling_error(e); };
    std::string why;
    client_ = signaling_client::create(ioc_.get_executor(), so, std::move(h), &why);
    if (!client_) {
      std::cerr << "rendezvous-peer: " << why << "\n";
      return exit_usage;
    }
    strand_.emplace(client_->get_executor());

    if (!opt_.signaling_only) {
#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
      engine_ = webrtcbin_engine::create(*strand_, &why);
      if (!engine_) {
        report_error("webrtc-unavailable", why, "");
        return exit_webrtc;
      }
      negotiation_options no;
      no.session = random_hex(rng_, 16);
      no.label = opt_.label;
      no.force_glare = opt_.force_glare;
      negotiator_ = std::make_unique<negotiator>(
          *engine_,
          [c = client_](nlohmann::json m) {
            spdlog::debug("signal out: {} to {}", m.value("type", ""), m.value("id", ""));
            c->send(std::move(m));
          },
          [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }, no, this);
      engine_->set_negotiator(negotiator_.get());
#else
      report_error(
          "webrtc-unavailable",
          "rendezvous-peer was built without GStreamer webrtcbin (scripts/install-deps-client.sh, then "
          "rebuild); use --signaling-only to just join and print events",
          "");
      return exit_webrtc;
#endif
    }

    started_ = std::chrono::steady_clock::now();
    signals_.emplace(*strand_, SIGINT, SIGTERM);
    signals_->async_wait(guarded([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      progress(std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ": leaving");
      finish(exit_done);
    }));
    if (opt_.timeout_s > 0) {
      timeout_.emplace(*strand_);
      timeout_->expires_after(std::chrono::milliseconds(static_cast<long long>(opt_.timeout_s * 1000)));
      timeout_->async_wait(guarded([this](const boost::system::error_code& ec) {
        if (ec || finishing_) return;
        if (!welcomed_) {
          report_error("timeout", "could not join within --timeout", "");
          finish(exit_unreachable);
        } else {
          report_error(
              "timeout",
              any_channel_ ? "not enough messages within --timeout" : "no data channel within --timeout", "");
          finish(exit_webrtc);
        }
      }));
    }
    if (!opt_.no_stdin) start_stdin();
    client_->start();
    ioc_.run();

#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
    if (engine_) engine_->shutdown();  // joins the engine thread: outside every handler
#endif
    return exit_code_;
  }

 private:
  // ---- output ----
  long long ms_since_start() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_)
        .count();
  }

  void event(nlohmann::json j, const std::string& human) {
    if (opt_.json) {
      j["t_ms"] = ms_since_start();
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    } else if (!human.empty()) {
      std::cerr << "* " << human << std::endl;
    }
  }

  void progress(const std::string& text) {
    if (!opt_.json) std::cerr << "* " << text << std::endl;
  }

  void report_error(const std::string& code, const std::string& message, const std::string& peer,
                    int close_code = 0) {
    nlohmann::json j = {{"event", "error"}, {"code", code}, {"message", message}};
    if (!peer.empty()) j["peer"] = peer;
    if (close_code) j["close"] = close_code;
    std::string human = "error " + code + (close_code ? " (" + std::to_string(close_code) + ")" : "") + ": " +
                        message + (peer.empty() ? "" : " [" + peer + "]");
    if (opt_.json)
      event(std::move(j), "");
    else
      std::cerr << "! " << human << std::endl;
  }

  // ---- stdin: a helper thread blocks on it and posts lines to the strand ----
  void start_stdin() {
    std::thread([this, strand = *strand_] {
      std::string line;
      while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        net::post(strand, guarded([this, line] { on_stdin_line(line); }));
      }
      net::post(strand, guarded([this] { on_stdin_eof(); }));
    }).detach();  // blocked in read() until EOF; the process may end before that
  }

  void on_stdin_line(const std::string& line) {
    if (finishing_) return;
    if (opt_.signaling_only || !negotiator_) return;
    if (negotiator_->broadcast_text(line) == 0) pending_lines_.push_back(line);
    ++sent_;
  }

  void on_stdin_eof() {
    stdin_done_ = true;
    maybe_done();
  }

  // ---- exit ----
  void maybe_done() {
    if (finishing_) return;
    if (opt_.exit_after > 0) {
      if (received_ >= opt_.exit_after) finish(exit_done);
      return;
    }
    // End of stdin ends the peer once what it had to send is out. A peer with
    // nothing to send (stdin was empty, e.g. /dev/null) keeps listening until
    // SIGINT/SIGTERM or --timeout.
    bool had_input = sent_ > 0 || !greetings_.empty();
    if (stdin_done_ && had_input && pending_lines_.empty() && (greetings_.empty() || greeted_any_))
      finish(exit_done);
  }

  void finish(int code) {
    if (finishing_) return;
    finishing_ = true;
    exit_code_ = code;
    if (timeout_) timeout_->cancel();
    // Let what we just sent leave the data channels, then say bye and close.
    auto close_all = [this] {
      if (negotiator_) negotiator_->close_all();
      if (client_->state() == connection_state::closed) return stop();
      client_->close();
      stop_timer_.emplace(*strand_);
      stop_timer_->expires_after(std::chrono::seconds(3));
      stop_timer_->async_wait(guarded([this](const boost::system::error_code& ec) {
        if (!ec) stop();
      }));
    };
#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
    if (engine_ && negotiator_ && !negotiator_->open_channels().empty()) {
      engine_->drain(std::chrono::milliseconds(1000), guarded(close_all));
      return;
    }
#endif
    close_all();
  }

  void stop() {
    if (signals_) signals_->cancel();
    if (stop_timer_) stop_timer_->cancel();
    ioc_.stop();
  }

  // ---- signaling events (strand) ----
  void on_signaling_state(connection_state s) {
    event({{"event", "signaling"}, {"state", std::string(to_string(s))}},
          s == connection_state::reconnecting ? "signaling connection lost: reconnecting" : "");
    if (s == connection_state::closed && finishing_) stop();
  }

  void on_welcome(const welcome_event& w) {
    bool first = !welcomed_;
    welcomed_ = true;
    nlohmann::json j = {
        {"event", "joined"}, {"id", w.id}, {"room", w.room}, {"peers", w.peers}, {"resumed", w.resumed}};
    std::string human = (first ? "joined room " : "rejoined room ") + w.room + " as " + w.id +
                        (w.resumed ? " (resumed)" : "") + "; " + std::to_string(w.peers.size()) +
                        " other peer(s)";
    for (auto& p : w.peers) human += " " + p;
    event(std::move(j), human);
#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
    if (engine_) {
      std::vector<std::string> skipped;
      webrtcbin_options wo;
      wo.ice = to_gst_ice_servers(w.ice_servers, opt_.ice_servers, &skipped);
      wo.local_ips = opt_.local_ips;
      for (auto& s : skipped) progress("ICE server not usable by webrtcbin, skipped: " + s);
      engine_->set_options(std::move(wo));
    }
#endif
    if (negotiator_) negotiator_->on_welcome(w);
  }

  void on_peer_joined(const peer_joined_event& e) {
    event({{"event", "peer-joined"}, {"peer", e.id}}, e.id + " joined");
    if (negotiator_) negotiator_->on_peer_joined(e.id);
  }

  void on_peer_left(const peer_left_event& e) {
    event({{"event", "peer-left"}, {"peer", e.id}, {"reason", e.reason}}, e.id + " left (" + e.reason + ")");
    if (negotiator_) negotiator_->on_peer_left(e.id);
  }

  void on_signal(const relayed_message& m) {
    spdlog::debug("signal in: {} from {}", m.type, m.from);
    if (negotiator_ && negotiator_->on_signal(m)) return;
    event({{"event", "signal"}, {"peer", m.from}, {"type", m.type}, {"body", m.body}},
          "message from " + m.from + ": " + m.body.dump());
  }

  void on_signaling_error(const error_event& e) {
    report_error(e.code, e.message, e.id, e.close_code);
    if (negotiator_) negotiator_->on_signal_error(e);
    if (e.fatal && !finishing_) finish(e.code == "connect-failed" ? exit_unreachable : exit_refused);
  }

  // ---- negotiation events (strand) ----
  void on_role(const std::string& peer, peer_role role) override {
    event({{"event", "role"}, {"peer", peer}, {"role", std::string(to_string(role))}},
          peer + ": we are " + std::string(to_string(role)));
  }

  void on_channel_open(const std::string& peer) override {
    any_channel_ = true;
    auto ms = ms_since_start();
    event({{"event", "connected"}, {"peer", peer}, {"ms", ms}},
          peer + ": data channel open after " + std::to_string(ms) + " ms");
    for (const auto& g : greetings_) negotiator_->send_text(peer, g);
    if (!greetings_.empty()) greeted_any_ = true;
    for (const auto& l : pending_lines_) negotiator_->broadcast_text(l);
    pending_lines_.clear();
    maybe_done();
  }

  void on_channel_message(const std::string& peer, const std::string& text) override {
    ++received_;
    if (opt_.json)
      event({{"event", "message"}, {"peer", peer}, {"text", text}}, "");
    else
      std::cout << peer << ": " << text << std::endl;
    maybe_done();
  }

  void on_channel_closed(const std::string& peer) override {
    event({{"event", "channel-closed"}, {"peer", peer}}, peer + ": data channel closed");
    if (finishing_) return;
    // A peer that leaves closes its channel and says bye (or its place times
    // out). If it is still there after a moment, renegotiate.
    auto timer = std::make_shared<net::steady_timer>(*strand_, recover_after_);
    timer->async_wait(guarded([this, timer, peer](const boost::system::error_code& ec) {
      if (ec || finishing_ || !negotiator_) return;
      negotiator_->recover_peer(peer);
    }));
  }

  void on_connection_state(const std::string& peer, pc_state s) override {
    event({{"event", "connection-state"}, {"peer", peer}, {"state", std::string(to_string(s))}},
          opt_.verbose > 0 ? peer + ": connection " + std::string(to_string(s)) : "");
  }

  void on_rollback(const std::string& peer) override {
    event({{"event", "rollback"}, {"peer", peer}},
          peer + ": offers collided; rolling ours back (we are polite)");
  }

  void on_offer_ignored(const std::string& peer) override {
    event({{"event", "offer-ignored"}, {"peer", peer}},
          peer + ": offers collided; ignoring theirs (we are impolite)");
  }

  void on_recovery(const std::string& peer, const std::string& how) override {
    event({{"event", "recovery"}, {"peer", peer}, {"how", how}},
          peer + ": recovering the connection (" + how + ")");
  }

  void on_error(const std::string& peer, const std::string& what) override {
    report_error("webrtc", what, peer);
    if (what.find("giving up") != std::string::npos && negotiator_ && negotiator_->open_channels().empty() &&
        !finishing_ && opt_.exit_after > 0)
      finish(exit_webrtc);
  }

  net::io_context& ioc_;
  cli_options opt_;
  std::mt19937_64 rng_;
  std::shared_ptr<signaling_client> client_;
  std::optional<signaling_client::executor_type> strand_;
#ifdef RENDEZVOUS_HAVE_WEBRTCBIN
  std::unique_ptr<webrtcbin_engine> engine_;
#endif
  std::unique_ptr<negotiator> negotiator_;
  std::optional<net::signal_set> signals_;
  std::optional<net::steady_timer> timeout_;
  std::optional<net::steady_timer> stop_timer_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::chrono::milliseconds recover_after_{2000};
  std::vector<std::string> greetings_;  // --send / --send-file: sent on every channel as it opens
  std::vector<std::string> pending_lines_;
  bool greeted_any_ = false;
  bool stdin_done_ = false;
  bool welcomed_ = false;
  bool any_channel_ = false;
  bool finishing_ = false;
  int received_ = 0;
  int sent_ = 0;
  int exit_code_ = exit_done;
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  cli_options opt;
  CLI::App app{
      "rendezvous-peer " RENDEZVOUS_VERSION
      ": join a room of a Rendezvous server and chat with every other peer over a WebRTC data channel.\n"
      "Sends each stdin line to every open channel and prints each message received on stdout\n"
      "(\"PEER: TEXT\"); progress and events go to stderr, or, with --json, one JSON object per line to "
      "stdout.\n\n"
      "Exit codes: 0 done (--exit-after reached, stdin closed, or SIGINT/SIGTERM), 1 internal error,\n"
      "2 usage, 3 could not connect to the server, 4 refused by the server (the code is printed),\n"
      "5 WebRTC failed (no data channel, or not enough messages, within --timeout; or no WebRTC engine)."};
  app.add_option("--server", opt.server, "server URL, ws://HOST:PORT[/BASE] or wss://HOST:PORT[/BASE]")
      ->required();
  app.add_option("--room", opt.room, "room to join")->required();
  app.add_option("--id", opt.id, "peer id to ask for (default: the server picks one)");
  app.add_option("--token", opt.token, "auth token (JWT), sent as the `token` query parameter");
  app.add_option("--ca-file", opt.ca_file,
                 "wss://: trust the CA certificate(s) in this PEM file instead of the system's trust store")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", opt.insecure,
               "wss://: do not verify the server's certificate or host name (testing only)");
  app.add_flag(
      "--json", opt.json,
      "print one JSON event per line on stdout: joined, role, connected, message, peer-left, error, ...");
  app.add_option("--send", opt.sends, "send TEXT on every data channel as it opens (repeatable)");
  app.add_option("--send-file", opt.send_file,
                 "send the content of PATH as one message on every channel as it opens");
  app.add_option("--exit-after", opt.exit_after, "exit 0 once N messages have been received")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", opt.timeout_s, "give up after S seconds: exit 3 if never joined, else 5")
      ->check(CLI::NonNegativeNumber);
  app.add_option(
      "--ice-server", opt.ice_servers,
      "extra ICE server, stun:HOST:PORT or turn:USER:PASS@HOST:PORT (repeatable; added to the welcome's)");
  app.add_option("--local-ip", opt.local_ips, "extra local address for ICE, e.g. 127.0.0.1 (repeatable)");
  app.add_option("--connect-attempts", opt.connect_attempts,
                 "connection attempts before the first join succeeds, then exit 3 (0: keep trying)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--label", opt.label, "data channel label");
  app.add_flag("--signaling-only", opt.signaling_only, "join and print signaling events only; no WebRTC");
  app.add_flag("--no-stdin", opt.no_stdin, "do not read stdin");
  app.add_flag("--force-glare", opt.force_glare,
               "test only: both sides create a channel and offer at once, so the offers collide");
  app.add_flag("-v,--verbose", opt.verbose, "more logs on stderr (-vv: debug)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? exit_done : exit_usage;
  }

  auto logger = spdlog::stderr_color_mt("rendezvous-peer");
  spdlog::set_default_logger(logger);
  spdlog::set_level(opt.verbose >= 2   ? spdlog::level::debug
                    : opt.verbose == 1 ? spdlog::level::info
                                       : spdlog::level::warn);
  try {
    net::io_context ioc{1};
    peer_app peer(ioc, std::move(opt));
    int rc = peer.run();
    std::cout.flush();
    std::cerr.flush();
    std::fflush(stdout);  // not fflush(nullptr): it would wait for stdin's lock, held by the reader thread
    // The stdin thread may still be blocked in read(): end without waiting for it.
    std::_Exit(rc);
  } catch (const std::exception& e) {
    std::cerr << "rendezvous-peer: internal error: " << e.what() << "\n";
    return exit_internal;
  }
}
