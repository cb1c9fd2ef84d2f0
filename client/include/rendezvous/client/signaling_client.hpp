#pragma once
// A room client of the Rendezvous server (docs/protocol.md: "Room mode",
// "Leaving, reconnect and resume"), on
// Boost.Beast/Asio.
//
// - Joins /rooms/{room} and surfaces welcome / peer-joined / peer-left /
//   relayed messages / errors (with their protocol codes) as events.
// - send() queues a message (bounded by count and bytes) while disconnected and
//   writes one frame at a time while connected.
// - Reconnects by itself with exponential backoff and jitter, using the same
//   peer id and the `resume` token of the last welcome, so the other peers see
//   no churn (the server replays what it held meanwhile).
// - close() sends `bye` and a close frame, then reports connection_state::closed.
//
// Threading: everything runs on the client's own strand (get_executor());
// every handler is called on it, one at a time. send() and close() may be
// called from any thread. The client is owned by shared_ptrs: the
// application's and the ones its pending operations hold. Exceptions thrown
// by handlers are caught and logged, never propagated into the io_context.
//
// Transport: ws:// or wss://. With wss:// the server's certificate is
// verified against the system's trust store (OpenSSL's default paths, which
// honour SSL_CERT_FILE) or `ca_file`, and its name against the URL's host;
// `insecure` skips both (testing only). A certificate that fails
// verification before the first welcome is final: retrying cannot fix it.
#include <rendezvous/client/backoff.hpp>
#include <rendezvous/client/messages.hpp>
#include <rendezvous/client/server_url.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

namespace rendezvous::client {

enum class connection_state {
  connecting,    // first connection attempt(s), no welcome yet
  open,          // welcomed; messages flow
  reconnecting,  // lost the connection; retrying with backoff (messages are queued)
  closed,        // closed on purpose, refused by the server, or gave up
};
std::string_view to_string(connection_state s) noexcept;

struct signaling_options {
  std::string url;        // ws://HOST:PORT[/BASE] or wss://HOST:PORT[/BASE]
  std::string room;       // 1-64 of [A-Za-z0-9._~-] (else the server refuses: bad-request)
  std::string peer_id;    // empty: the server picks one (kept for reconnects)
  std::string token;      // auth token (query `token`), optional
  std::string ca_file;    // wss://: PEM file of trusted CAs instead of the system's
  bool insecure = false;  // wss://: do not verify the server's certificate or name

  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect + WebSocket handshake
  std::chrono::milliseconds idle_timeout{30000};    // nothing from the server for that long: reconnect
  std::chrono::milliseconds close_timeout{2000};    // close(): bye + close handshake at most this long
  // Connection attempts before the first welcome; 0 = keep trying. When they
  // are used up, an error `connect-failed` (fatal) is reported.
  int first_connect_attempts = 0;

  std::size_t queue_max_messages = 256;  // outgoing messages kept while disconnected
  std::size_t queue_max_bytes = 1 << 20;
};

struct signaling_handlers {
  std::function<void(const welcome_event&)> on_welcome;
  std::function<void(const peer_joined_event&)> on_peer_joined;
  std::function<void(const peer_left_event&)> on_peer_left;
  std::function<void(const relayed_message&)> on_message;
  // Errors from the server (code = protocol wire name) and from the client:
  // `connect-failed` (gave up before any welcome, or the server's TLS
  // certificate failed verification), `queue-overflow` (oldest
  // queued message dropped), `bad-frame` (unparsable frame from the server).
  // A refused join (close code 4xxx) is reported once, with fatal = true when
  // the client stops because of it.
  std::function<void(const error_event&)> on_error;
  std::function<void(connection_state)> on_state;
};

class signaling_client : public std::enable_shared_from_this<signaling_client> {
 public:
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;

  // Checks the URL and, for wss://, loads the trust store; on a failure
  // returns nullptr and sets `why`. Room and peer names are the server's to check (bad-request).
  static std::shared_ptr<signaling_client> create(boost::asio::any_io_executor ex, signaling_options options,
                                                  signaling_handlers handlers, std::string* why = nullptr);
  ~signaling_client();

  signaling_client(const signaling_client&) = delete;
  signaling_client& operator=(const signaling_client&) = delete;

  void start();                   // any thread
  void send(nlohmann::json msg);  // any thread; a JSON object with a `type`
  void close();                   // any thread; idempotent

  executor_type get_executor() const { return strand_; }

  // Strand only (e.g. from a handler).
  connection_state state() const noexcept { return state_; }
  const std::string& peer_id() const noexcept { return peer_id_; }
  std::size_t queued() const noexcept { return queue_.size(); }
  std::uint64_t dropped_messages() const noexcept { return dropped_; }

 private:
  using plain_ws = boost::beast::websocket::stream<boost::beast::tcp_stream>;
  using tls_ws = boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;

  signaling_client(boost::asio::any_io_executor ex, signaling_options options, server_url url,
                   std::shared_ptr<boost::asio::ssl::context> tls, signaling_handlers handlers);

  // Calls f with the WebSocket stream of this connection (plain or TLS).
  template <class F>
  decltype(auto) with_ws(F&& f);
  bool has_ws() const noexcept { return plain_.has_value() || tls_.has_value(); }
  boost::beast::tcp_stream& tcp();
  std::string certificate_problem();  // why the last TLS handshake refused the certificate

  void do_connect();
  void on_resolve(std::uint64_t epoch, boost::beast::error_code ec,
                  boost::asio::ip::tcp::resolver::results_type results);
  void on_tcp_connect(std::uint64_t epoch, boost::beast::error_code ec,
                      boost::asio::ip::tcp::resolver::results_type::endpoint_type);
  void on_tls_handshake(std::uint64_t epoch, boost::beast::error_code ec);
  void do_ws_handshake(std::uint64_t epoch);
  void on_handshake(std::uint64_t epoch, boost::beast::error_code ec);
  void do_read();
  void on_read(std::uint64_t epoch, boost::beast::error_code ec, std::size_t bytes);
  void handle_frame(std::string_view text);
  void on_connection_lost(std::uint64_t epoch, boost::beast::error_code ec, const char* what);
  void schedule_reconnect();

  void enqueue(std::string text, bool bypass_bound);
  void do_write();
  void on_write(std::uint64_t epoch, boost::beast::error_code ec, std::size_t bytes);
  void do_close();
  void on_close(std::uint64_t epoch, boost::beast::error_code ec);
  void finish();

  void set_state(connection_state s);
  void emit_error(error_event e);
  template <class F, class... A>
  void call(const F& f, const A&... args);

  executor_type strand_;
  signaling_options options_;
  server_url url_;
  signaling_handlers handlers_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer close_timer_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // wss:// only; outlives the streams
  std::optional<plain_ws> plain_;                           // one of the two per connection
  std::optional<tls_ws> tls_;
  boost::beast::flat_buffer buffer_;
  backoff backoff_;
  std::mt19937_64 rng_;

  std::uint64_t epoch_ = 0;  // connection attempt; stale completions are ignored
  connection_state state_ = connection_state::connecting;
  bool started_ = false;
  bool connected_ = false;  // WebSocket handshake done on this epoch
  bool welcomed_ = false;   // welcome received on this epoch
  bool ever_welcomed_ = false;
  bool closing_ = false;  // close() called
  bool close_sent_ = false;
  int attempts_ = 0;                    // attempts since the last welcome
  std::optional<error_event> refusal_;  // error received before the welcome
  std::string peer_id_;
  std::string resume_token_;

  std::deque<std::string> queue_;  // front() is being written while writing_
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace rendezvous::client
