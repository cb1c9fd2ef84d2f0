#include <rendezvous/client/signaling_client.hpp>
#include <rendezvous/protocol/errors.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <exception>

namespace rendezvous::client {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string_view to_string(connection_state s) noexcept {
  switch (s) {
    case connection_state::connecting: return "connecting";
    case connection_state::open: return "open";
    case connection_state::reconnecting: return "reconnecting";
    case connection_state::closed: return "closed";
  }
  return "?";
}

namespace {
// Refusals after which retrying cannot help. room-full and id-taken are
// final on the first join only: on a reconnect the place may still be held
// for a moment, or the room may have room again.
bool is_final_refusal(std::string_view code, bool ever_welcomed) {
  using protocol::error_code;
  auto known = protocol::error_code_from_string(code);
  if (!known) return false;
  switch (*known) {
    case error_code::bad_request:
    case error_code::unauthorized:
    case error_code::forbidden: return true;
    case error_code::room_full:
    case error_code::id_taken: return !ever_welcomed;
    default: return false;
  }
}

// The server's certificate was refused (untrusted, expired, wrong name).
bool is_certificate_failure(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

// The TLS context of a wss:// client: TLS 1.2+, and unless `insecure`, the
// peer's chain checked against `ca_file` or the system's trust store.
std::shared_ptr<net::ssl::context> make_tls_context(const signaling_options& o, std::string* why) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  if (o.insecure) {
    ctx->set_verify_mode(net::ssl::verify_none);
    return ctx;
  }
  beast::error_code ec;
  if (!o.ca_file.empty()) {
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) {
      if (why) *why = "cannot load CA file '" + o.ca_file + "': " + ec.message();
      return nullptr;
    }
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      if (why) *why = "cannot load the system's trust store: " + ec.message();
      return nullptr;
    }
  }
  ctx->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
  return ctx;
}
}  // namespace

std::shared_ptr<signaling_client> signaling_client::create(net::any_io_executor ex, signaling_options options,
                                                           signaling_handlers handlers, std::string* why) {
  auto set = [&](std::string text) {
    if (why) *why = std::move(text);
    return nullptr;
  };
  auto url = parse_server_url(options.url);
  if (!url) return set("bad server URL '" + options.url + "': expected ws://HOST:PORT or wss://HOST:PORT");
  std::shared_ptr<net::ssl::context> tls;
  if (url->tls) {
    std::string tls_why;
    tls = make_tls_context(options, &tls_why);
    if (!tls) return set(std::move(tls_why));
  }
  // Names are checked by the server, which refuses a bad one with
  // `bad-request` (4400): the client reports that like any refusal.
  if (options.room.empty()) return set("no room name");
  return std::shared_ptr<signaling_client>(new signaling_client(
      std::move(ex), std::move(options), std::move(*url), std::move(tls), std::move(handlers)));
}

signaling_client::signaling_client(net::any_io_executor ex, signaling_options options, server_url url,
                                   std::shared_ptr<net::ssl::context> tls, signaling_handlers handlers)
    : strand_(net::make_strand(ex)),
      options_(std::move(options)),
      url_(std::move(url)),
      handlers_(std::move(handlers)),
      resolver_(strand_),
      retry_timer_(strand_),
      close_timer_(strand_),
      tls_context_(std::move(tls)),
      backoff_(options_.backoff_initial, options_.backoff_max),
      rng_(std::random_device{}()),
      peer_id_(options_.peer_id) {}

signaling_client::~signaling_client() = default;

std::string signaling_client::certificate_problem() {
  if (!tls_) return "no TLS";
  long result = SSL_get_verify_result(tls_->next_layer().native_handle());
  return std::string(X509_verify_cert_error_string(result)) + " (host " + url_.host + ")";
}

template <class F>
decltype(auto) signaling_client::with_ws(F&& f) {
  if (tls_) return f(*tls_);
  return f(*plain_);
}

beast::tcp_stream& signaling_client::tcp() {
  if (tls_) return beast::get_lowest_layer(*tls_);
  return beast::get_lowest_layer(*plain_);
}

template <class F, class... A>
void signaling_client::call(const F& f, const A&... args) {
  if (!f) return;
  try {
    f(args...);
  } catch (const std::exception& e) {
    spdlog::error("signaling handler threw: {}", e.what());
  } catch (...) {
    spdlog::error("signaling handler threw");
  }
}

void signaling_client::set_state(connection_state s) {
  if (state_ == s) return;
  state_ = s;
  call(handlers_.on_state, s);
}

void signaling_client::emit_error(error_event e) { call(handlers_.on_error, e); }

void signaling_client::start() {
  net::post(strand_, [self = shared_from_this()] {
    if (self->started_ || self->closing_) return;
    self->started_ = true;
    self->call(self->handlers_.on_state, self->state_);
    self->do_connect();
  });
}

// ---- connecting (strand) ----

void signaling_client::do_connect() {
  ++epoch_;
  ++attempts_;
  connected_ = welcomed_ = false;
  writing_ = false;
  refusal_.reset();
  buffer_.clear();
  plain_.reset();
  tls_.reset();
  if (tls_context_) {
    tls_.emplace(strand_, *tls_context_);
  } else {
    plain_.emplace(strand_);
  }
  spdlog::debug("signaling: connecting to {}:{} (attempt {})", url_.host, url_.port, attempts_);
  resolver_.async_resolve(
      url_.host, url_.port,
      beast::bind_front_handler(&signaling_client::on_resolve, shared_from_this(), epoch_));
}

void signaling_client::on_resolve(std::uint64_t epoch, beast::error_code ec,
                                  tcp::resolver::results_type results) {
  if (epoch != epoch_ || closing_) return;
  if (ec) return on_connection_lost(epoch, ec, "resolve");
  tcp().expires_after(options_.connect_timeout);
  tcp().async_connect(
      results, beast::bind_front_handler(&signaling_client::on_tcp_connect, shared_from_this(), epoch));
}

void signaling_client::on_tcp_connect(std::uint64_t epoch, beast::error_code ec,
                                      tcp::resolver::results_type::endpoint_type) {
  if (epoch != epoch_ || closing_) return;
  if (ec) return on_connection_lost(epoch, ec, "connect");
  tcp().socket().set_option(tcp::no_delay(true), ec);
  if (!tls_) return do_ws_handshake(epoch);

  // TLS: SNI and the name check use the URL's host; the connect deadline
  // still runs and covers the TLS handshake.
  auto* ssl = tls_->next_layer().native_handle();
  beast::error_code addr_ec;
  net::ip::make_address(url_.host, addr_ec);
  const bool host_is_name = static_cast<bool>(addr_ec);
  // OpenSSL checks the name during the handshake, with a precise reason
  // ("hostname mismatch", "IP address mismatch") when it fails.
  bool ok = !host_is_name || SSL_set_tlsext_host_name(ssl, url_.host.c_str()) == 1;
  if (ok && !options_.insecure)
    ok = host_is_name ? SSL_set1_host(ssl, url_.host.c_str()) == 1
                      : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str()) == 1;
  if (!ok)
    return on_connection_lost(
        epoch, beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()),
        "tls-setup");
  tls_->next_layer().async_handshake(
      net::ssl::stream_base::client,
      beast::bind_front_handler(&signaling_client::on_tls_handshake, shared_from_this(), epoch));
}

void signaling_client::on_tls_handshake(std::uint64_t epoch, beast::error_code ec) {
  if (epoch != epoch_ || closing_) return;
  if (ec) return on_connection_lost(epoch, ec, "tls-handshake");
  do_ws_handshake(epoch);
}

void signaling_client::do_ws_handshake(std::uint64_t epoch) {
  tcp().expires_never();  // the websocket timeouts take over
  auto target = room_target(url_, options_.room, peer_id_, options_.token, resume_token_);
  with_ws([&](auto& ws) {
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options_.connect_timeout;
    timeouts.idle_timeout = options_.idle_timeout;  // Beast pings after half of it
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "rendezvous-client"); }));
    ws.async_handshake(host_header(url_), target,
                       beast::bind_front_handler(&signaling_client::on_handshake, shared_from_this(), epoch));
  });
}

void signaling_client::on_handshake(std::uint64_t epoch, beast::error_code ec) {
  if (epoch != epoch_ || closing_) return;
  if (ec) return on_connection_lost(epoch, ec, "handshake");
  connected_ = true;
  with_ws([](auto& ws) { ws.text(true); });
  do_read();
}

void signaling_client::do_read() {
  with_ws([&](auto& ws) {
    ws.async_read(buffer_, beast::bind_front_handler(&signaling_client::on_read, shared_from_this(), epoch_));
  });
}

void signaling_client::on_read(std::uint64_t epoch, beast::error_code ec, std::size_t) {
  if (epoch != epoch_) return;
  if (ec) {
    if (closing_) return finish();
    return on_connection_lost(epoch, ec, "read");
  }
  auto data = buffer_.data();
  std::string text(static_cast<const char*>(data.data()), data.size());
  buffer_.consume(buffer_.size());
  handle_frame(text);
  if (epoch == epoch_ && has_ws() && connected_) do_read();
}

void signaling_client::handle_frame(std::string_view text) {
  std::string why;
  auto event = parse_server_frame(text, &why);
  if (!event) {
    spdlog::warn("signaling: unparsable frame from the server ({}): {:.200}", why, text);
    return emit_error({"bad-frame", "unparsable frame from the server: " + why, {}, 0, false});
  }
  if (auto* w = std::get_if<welcome_event>(&*event)) {
    welcomed_ = ever_welcomed_ = true;
    attempts_ = 0;
    backoff_.reset();
    peer_id_ = w->id;
    resume_token_ = w->resume_token;
    spdlog::info("signaling: welcome id={} room={} peers={} resumed={}", w->id, w->room, w->peers.size(),
                 w->resumed);
    set_state(connection_state::open);
    call(handlers_.on_welcome, *w);
    if (!closing_ && !queue_.empty() && !writing_) do_write();
    return;
  }
  if (auto* e = std::get_if<error_event>(&*event)) {
    if (!welcomed_) {
      // A refused join: the close frame follows; report once, with its code.
      refusal_ = std::move(*e);
      return;
    }
    return emit_error(std::move(*e));
  }
  if (auto* j = std::get_if<peer_joined_event>(&*event)) return call(handlers_.on_peer_joined, *j);
  if (auto* l = std::get_if<peer_left_event>(&*event)) return call(handlers_.on_peer_left, *l);
  if (auto* m = std::get_if<relayed_message>(&*event)) return call(handlers_.on_message, *m);
  // pong: nothing to do
}

void signaling_client::on_connection_lost(std::uint64_t epoch, beast::error_code ec, const char* what) {
  if (epoch != epoch_ || closing_) return;
  int close_code = 0;
  if (ec == websocket::error::closed && has_ws())
    close_code = with_ws([](auto& ws) { return ws.reason().code; });
  bool was_connected = connected_;
  connected_ = welcomed_ = false;
  writing_ = false;
  if (has_ws()) {
    beast::error_code ignored;
    tcp().socket().close(ignored);
  }

  if (refusal_ || (close_code >= 4000 && close_code < 5000)) {
    bool had_error_frame = refusal_.has_value();
    error_event e = had_error_frame ? std::move(*refusal_)
                                    : error_event{"internal", "closed by the server", {}, 0, false};
    refusal_.reset();
    e.close_code = close_code;
    // 4409 without an error frame while joined: another connection took our
    // place with our resume token. There is nothing to win by fighting it.
    bool replaced = !had_error_frame && close_code == static_cast<int>(protocol::close_code::id_taken);
    if (is_final_refusal(e.code, ever_welcomed_) || replaced) {
      e.fatal = true;
      if (replaced) e.code = "id-taken";
      spdlog::warn("signaling: refused by the server: {} ({}) close={}", e.code, e.message, close_code);
      emit_error(e);
      set_state(connection_state::closed);
      return;
    }
    spdlog::info("signaling: server said {} ({}) close={}; will retry", e.code, e.message, close_code);
    emit_error(e);
  } else {
    spdlog::info("signaling: connection {} ({}: {}){}", was_connected ? "lost" : "failed", what, ec.message(),
                 close_code ? " close=" + std::to_string(close_code) : std::string{});
  }

  if (!ever_welcomed_ && is_certificate_failure(ec)) {
    // Retrying cannot make an untrusted or misnamed certificate trusted.
    emit_error({"connect-failed",
                "the server's TLS certificate failed verification: " + certificate_problem(),
                {},
                0,
                true});
    set_state(connection_state::closed);
    return;
  }
  if (!ever_welcomed_ && options_.first_connect_attempts > 0 &&
      attempts_ >= options_.first_connect_attempts) {
    emit_error({"connect-failed",
                "could not join after " + std::to_string(attempts_) +
                    " attempts (last: " + std::string(what) + ": " + ec.message() + ")",
                {},
                close_code,
                true});
    set_state(connection_state::closed);
    return;
  }
  schedule_reconnect();
}

void signaling_client::schedule_reconnect() {
  set_state(ever_welcomed_ ? connection_state::reconnecting : connection_state::connecting);
  auto delay = backoff_.next(std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
  spdlog::debug("signaling: next attempt in {} ms", delay.count());
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([self = shared_from_this(), epoch = epoch_](beast::error_code ec) {
    if (ec || epoch != self->epoch_ || self->closing_) return;
    self->do_connect();
  });
}

// ---- sending (strand) ----

void signaling_client::send(nlohmann::json msg) {
  std::string text;
  try {
    text = msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception& e) {
    spdlog::error("signaling: cannot serialize message: {}", e.what());
    return;
  }
  net::post(strand_, [self = shared_from_this(), text = std::move(text)]() mutable {
    if (self->closing_) return;
    self->enqueue(std::move(text), false);
  });
}

void signaling_client::enqueue(std::string text, bool bypass_bound) {
  queued_bytes_ += text.size();
  queue_.push_back(std::move(text));
  // Bounded: the oldest message not being written goes first.
  std::size_t keep_front = writing_ ? 1 : 0;
  while (!bypass_bound && queue_.size() > keep_front + 1 &&
         (queue_.size() > options_.queue_max_messages || queued_bytes_ > options_.queue_max_bytes)) {
    auto it = queue_.begin() + static_cast<std::ptrdiff_t>(keep_front);
    queued_bytes_ -= it->size();
    queue_.erase(it);
    ++dropped_;
    if (dropped_ == 1 || dropped_ % 100 == 0)
      emit_error({"queue-overflow",
                  "outgoing queue full while disconnected: dropped the oldest message",
                  {},
                  0,
                  false});
  }
  if (welcomed_ && !writing_) do_write();
}

void signaling_client::do_write() {
  if (queue_.empty() || !welcomed_) return;
  writing_ = true;
  with_ws([&](auto& ws) {
    ws.async_write(net::buffer(queue_.front()),
                   beast::bind_front_handler(&signaling_client::on_write, shared_from_this(), epoch_));
  });
}

void signaling_client::on_write(std::uint64_t epoch, beast::error_code ec, std::size_t) {
  if (epoch != epoch_) return;
  writing_ = false;
  if (ec) return;  // the read side sees the failure and reconnects; the message stays queued
  if (!queue_.empty()) {
    queued_bytes_ -= queue_.front().size();
    queue_.pop_front();
  }
  if (!queue_.empty()) return do_write();
  if (closing_ && !close_sent_) do_close();
}

// ---- closing (strand) ----

void signaling_client::close() {
  net::post(strand_, [self = shared_from_this()] {
    if (self->closing_) return;
    self->closing_ = true;
    self->retry_timer_.cancel();
    if (!self->welcomed_) {
      self->resolver_.cancel();
      return self->finish();
    }
    // Whatever is queued goes first, then `bye`, then the close frame.
    self->enqueue(make_bye_message().dump(), true);
    self->close_timer_.expires_after(self->options_.close_timeout);
    self->close_timer_.async_wait([self](beast::error_code ec) {
      if (!ec) self->finish();
    });
    if (!self->writing_) self->do_write();
  });
}

void signaling_client::do_close() {
  close_sent_ = true;
  with_ws([&](auto& ws) {
    ws.async_close(websocket::close_code::normal,
                   beast::bind_front_handler(&signaling_client::on_close, shared_from_this(), epoch_));
  });
}

void signaling_client::on_close(std::uint64_t epoch, beast::error_code) {
  if (epoch != epoch_) return;
  finish();
}

void signaling_client::finish() {
  if (state_ == connection_state::closed) return;
  ++epoch_;  // everything still pending is stale now
  close_timer_.cancel();
  retry_timer_.cancel();
  if (has_ws()) {
    beast::error_code ignored;
    tcp().socket().close(ignored);
  }
  connected_ = welcomed_ = false;
  set_state(connection_state::closed);
}

}  // namespace rendezvous::client
