#include "websocket_session.hpp"

#include "listener.hpp"
#include "upgrade_request.hpp"

#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/names.hpp>
#include <rendezvous/protocol/server_messages.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

namespace rendezvous::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using protocol::close_code;
using protocol::error_code;

namespace {
std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A client-supplied name as it may appear in a log line: refused names can
// hold anything, so keep only name characters and cut it short.
std::string loggable(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, protocol::max_name_length))
    out.push_back(protocol::is_name_char(static_cast<unsigned char>(c)) ? c : '?');
  if (name.size() > protocol::max_name_length) out += "...";
  return out;
}

shared_message make_message(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

const char* mode_name(protocol::peer_mode mode) {
  return mode == protocol::peer_mode::room ? "room" : "lobby";
}

const char* kind_name(leave_kind kind) {
  switch (kind) {
    case leave_kind::closed: return "closed";
    case leave_kind::dropped: return "dropped";
    case leave_kind::kicked: return "kicked";
    case leave_kind::silent: return "shutdown";
  }
  return "?";
}
}  // namespace

template <class Stream>
websocket_session<Stream>::websocket_session(Stream&& stream, server_state& state)
    : ws_(std::move(stream)),
      state_(state),
      close_timer_(ws_.get_executor()),
      bucket_(state.settings().rate_limit_per_s, state.settings().rate_limit_burst, now_us()) {}

template <class Stream>
websocket_session<Stream>::~websocket_session() {
  if (self_ && !left_) state_.registry().leave(*self_, leave_kind::dropped);
  if (counted_) state_.remove_connection();
  state_.untrack(this);
}

template <class Stream>
void websocket_session<Stream>::run(beast::http::request<beast::http::string_body> req,
                                    protocol::endpoint target) {
  // Runs on the strand the listener gave the socket.
  state_.track(this->shared_from_this());
  target_ = std::move(target);
  origin_ = std::string(req[beast::http::field::origin]);
  note_remote(req["X-Forwarded-For"]);
  authorization_ = std::string(req[beast::http::field::authorization]);
  const auto& s = state_.settings();
  beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts below take over
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = s.handshake_timeout;
  timeouts.idle_timeout = 2 * s.ping_interval;  // Beast pings after half of it
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "rendezvous"); }));
  ws_.read_message_max(s.max_message_bytes);
  ws_.auto_fragment(false);
  admit();
  ws_.async_accept(req, beast::bind_front_handler(&websocket_session::on_accept, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::note_remote(std::string_view x_forwarded_for) {
  beast::error_code ec;
  auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
  if (ec) return;
  remote_ = format_endpoint(ep);
  if (auto client = forwarded_client(ep.address(), x_forwarded_for, state_.settings().trusted_proxies)) {
    proxy_ = std::move(remote_);
    remote_ = client->to_string();
  }
}

template <class Stream>
void websocket_session<Stream>::log_peer_event(spdlog::level::level_enum level, std::string_view event,
                                               std::initializer_list<log_field> fields) const {
  std::vector<log_field> all(fields);
  all.emplace_back("remote", remote_);
  if (!proxy_.empty()) all.emplace_back("proxy", proxy_);
  log_event(level, event, all);
}

template <class Stream>
void websocket_session<Stream>::admit() {
  // Runs before the 101 response goes out, so that a peer that sees its
  // WebSocket open is already reachable (lobby peers get no welcome to wait
  // for). Refusals are only recorded here and sent after the upgrade.
  if (!state_.try_add_connection())
    return refuse(error_code::unavailable, "server is at its connection limit");
  counted_ = true;
  if (state_.draining()) return refuse(error_code::unavailable, "server is shutting down");
  join();
}

template <class Stream>
void websocket_session<Stream>::on_accept(beast::error_code ec) {
  if (ec) {
    spdlog::debug("websocket handshake failed remote={} error={}", remote_, ec.message());
    if (self_ && !left_) leave_registry(leave_kind::closed);
    queue_.clear();
    queued_bytes_ = 0;
    close_timer_.cancel();
    return;
  }
  accepted_ = true;
  if (refusal_) {
    auto refusal = std::move(*refusal_);
    refusal_.reset();
    refuse(refusal.code, std::move(refusal.message));
  } else if (!queue_.empty()) {
    do_write();  // the welcome and anything delivered meanwhile
  } else if (closing_ && !close_started_) {
    do_close();
  }
  do_read();  // also needed to complete a refusal's closing handshake
}

template <class Stream>
void websocket_session<Stream>::join() {
  const auto& s = state_.settings();
  auto decided =
      decide_join(target_, origin_, authorization_, {s.auth_secret, s.allowed_origins}, unix_now());
  if (!decided) return refuse(decided.error().code, decided.error().message);
  join_request request = std::move(decided.value());
  request.link = this->weak_from_this();

  auto granted = state_.registry().join(std::move(request));
  if (!granted) return refuse(granted.error().code, granted.error().message);

  self_ = granted->self;
  auto& stats = state_.stats();
  (self_->mode == protocol::peer_mode::room ? stats.connections_room : stats.connections_lobby).Increment();
  log_peer_event(spdlog::level::info, "join",
                 {{"mode", mode_name(self_->mode)},
                  {"room", self_->room},
                  {"peer", self_->id},
                  {"resumed", granted->resumed}});
  if (self_->mode == protocol::peer_mode::lobby) return;  // libdatachannel mode: no welcome

  protocol::welcome_info welcome;
  welcome.id = self_->id;
  welcome.room = self_->room;
  welcome.peers = std::move(granted->peers);
  welcome.resume_token = std::move(granted->resume_token);
  welcome.ice_servers = make_ice_servers(state_.settings().ice, self_->id, unix_now());
  welcome.resumed = granted->resumed;
  // The welcome goes first, then what was held, in order. Deliveries from
  // other threads are posted to this strand, so they can only come after.
  enqueue(make_message(protocol::make_welcome(welcome)));
  for (auto& msg : granted->held) enqueue(std::move(msg));
}

template <class Stream>
void websocket_session<Stream>::refuse(error_code code, std::string message) {
  if (!accepted_) {
    if (!refusal_) refusal_ = protocol::failure{code, std::move(message)};
    return;
  }
  const bool room_mode = target_.kind == protocol::endpoint_kind::room;
  log_peer_event(spdlog::level::info, "refuse",
                 {{"mode", room_mode ? "room" : "lobby"},
                  {"room", loggable(room_mode ? target_.name : "")},
                  {"peer", loggable(room_mode ? target_.param("peer").value_or("") : target_.name)},
                  {"code", protocol::to_string(code)},
                  {"reason", message}});
  reply_error(code, message);
  end(leave_kind::closed, protocol::close_code_for(code), /*flush=*/true);
}

template <class Stream>
void websocket_session<Stream>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&websocket_session::on_read, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_read(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    if (!left_) {
      leave_kind kind = leave_kind::dropped;
      if (ec == websocket::error::closed) {
        kind = leave_kind::closed;  // the client's close frame
      } else if (ec == websocket::error::message_too_big) {
        kind = leave_kind::kicked;  // Beast has already closed with 1009
        state_.stats().error(error_code::message_too_large).Increment();
      } else if (ec.category() == websocket::make_error_code(websocket::error::closed).category()) {
        kind = leave_kind::kicked;  // a WebSocket protocol violation (e.g. 1007 bad UTF-8), closed by Beast
      }
      closing_ = close_code::normal;
      leave_registry(kind, queue_.take());
      queued_bytes_ = 0;
    }
    close_timer_.cancel();
    if (ec != websocket::error::closed && ec != net::error::operation_aborted)
      spdlog::debug("connection ended peer={} remote={} error={}", self_ ? self_->id : "", remote_,
                    ec.message());
    return;
  }
  state_.stats().bytes_in.Increment(static_cast<double>(bytes));
  if (!closing_) {
    if (!bucket_.try_take(now_us())) {
      state_.stats().dropped(drop_reason::rate_limited).Increment();
      if (++strikes_ >= state_.settings().rate_limit_strikes) {
        reply_error(error_code::rate_limited, "rate limit exceeded again and again: closing");
        end(leave_kind::kicked, close_code::too_many, /*flush=*/true);
      } else {
        reply_error(error_code::rate_limited, "rate limit exceeded: message discarded");
      }
    } else {
      strikes_ = 0;
      if (!ws_.got_text()) {
        reply_error(error_code::bad_message, "binary frames are not accepted: send JSON text");
      } else {
        auto data = buffer_.data();
        handle_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
      }
    }
  }
  buffer_.consume(buffer_.size());
  // Back-pressure on a peer's own traffic: while half the outbound queue is
  // waiting to be written (its replies, or what others send it), read no
  // more from it. A fast sender is slowed down instead of being mistaken for
  // a slow reader; on_write resumes reading once the queue has drained.
  if (!closing_ && queue_.size() * 2 >= state_.settings().outbound_max_messages) {
    read_paused_ = true;
    // No read is pending, so Beast's keepalive cannot notice a peer that has
    // stopped reading: bound the pause like a silent connection.
    close_timer_.expires_after(2 * state_.settings().ping_interval);
    close_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec && self->read_paused_ && !self->closing_)
        self->end(leave_kind::dropped, close_code::policy, /*flush=*/false);
    });
    return;
  }
  do_read();
}

template <class Stream>
void websocket_session<Stream>::handle_frame(std::string_view text) {
  auto frame = protocol::scan_frame(text);
  if (!frame) return reply_error(error_code::bad_message, frame.error().message);
  if (!self_) return;  // refused; waiting for the close to complete

  auto decision = protocol::decide(frame.value(), self_->mode);
  switch (decision.what) {
    case protocol::action::pong: {
      auto t = frame->t_value;
      return enqueue(make_message(protocol::make_pong(text.substr(t.begin, t.end - t.begin))));
    }
    case protocol::action::refuse:
      return reply_error(decision.refusal, "type '" + frame->type + "' is reserved for the server");
    case protocol::action::drop: state_.stats().dropped(drop_reason::no_target).Increment(); return;
    case protocol::action::relay:
    case protocol::action::broadcast: break;
  }

  auto out = std::make_shared<std::string>();
  out->reserve(protocol::rewritten_size(frame.value(), self_->id));
  protocol::rewrite_sender(frame.value(), self_->id, *out);
  if (decision.what == protocol::action::broadcast) {
    state_.registry().broadcast(*self_, std::move(out));
    return;
  }
  if (state_.registry().deliver(*self_, *frame->id, std::move(out)) == deliver_status::not_found) {
    if (self_->mode == protocol::peer_mode::lobby) {
      state_.stats().dropped(drop_reason::unknown_target).Increment();
    } else {
      reply_error(error_code::peer_not_found, "no peer with this id in the room", *frame->id);
    }
  }
}

template <class Stream>
void websocket_session<Stream>::reply_error(error_code code, std::string_view message, std::string_view id) {
  state_.stats().error(code).Increment();
  enqueue(make_message(protocol::make_error(code, message, id)));
}

template <class Stream>
void websocket_session<Stream>::deliver(shared_message msg) {
  // Any thread. The handler keeps the session alive until it runs on the strand.
  net::post(ws_.get_executor(), [self = this->shared_from_this(), msg = std::move(msg)]() mutable {
    self->on_deliver(std::move(msg));
  });
}

template <class Stream>
void websocket_session<Stream>::on_deliver(shared_message msg) {
  if (left_) {
    // The connection is over; a dropped peer may still resume and get it.
    if (self_ && leave_kind_ == leave_kind::dropped)
      state_.registry().hold_late(*self_, std::move(msg));
    else
      state_.stats().dropped(drop_reason::closed).Increment();
    return;
  }
  enqueue(std::move(msg));
}

template <class Stream>
void websocket_session<Stream>::enqueue(shared_message msg) {
  if (closing_ && !flush_before_close_) {
    state_.stats().dropped(drop_reason::closed).Increment();
    return;
  }
  const auto& s = state_.settings();
  queued_bytes_ += msg->size();
  queue_.push_back(std::move(msg));
  if (queue_.size() > s.outbound_max_messages || queued_bytes_ > s.outbound_max_bytes) {
    // A peer that does not read: disconnect it (it may resume) rather than
    // hold unbounded memory. What it had not been sent is held for it.
    log_peer_event(spdlog::level::warn, "slow-consumer",
                   {{"room", self_ ? std::string_view(self_->room) : ""},
                    {"peer", self_ ? std::string_view(self_->id) : ""},
                    {"queued", queue_.size()},
                    {"bytes", queued_bytes_}});
    return end(leave_kind::dropped, close_code::policy, /*flush=*/false);
  }
  if (!writing_ && accepted_) do_write();
}

template <class Stream>
void websocket_session<Stream>::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(*queue_.front()),
                  beast::bind_front_handler(&websocket_session::on_write, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_write(beast::error_code ec, std::size_t bytes) {
  writing_ = false;
  if (ec || queue_.empty()) {
    // The read side sees the failure too and ends the membership.
    return;
  }
  state_.stats().bytes_out.Increment(static_cast<double>(bytes));
  queued_bytes_ -= queue_.front()->size();
  queue_.pop_front();
  if (read_paused_ && (closing_ || queue_.size() * 4 < state_.settings().outbound_max_messages)) {
    read_paused_ = false;
    if (!closing_) close_timer_.cancel();
    do_read();
  }
  if (!queue_.empty()) return do_write();
  if (closing_ && !close_started_) do_close();
}

template <class Stream>
void websocket_session<Stream>::end(leave_kind kind, close_code code, bool flush) {
  if (closing_) return;
  closing_ = code;
  flush_before_close_ = flush;
  std::deque<shared_message> unsent;
  if (!flush) {
    // Keep only the frame being written; the rest goes back to the registry.
    auto keep = writing_ ? 1 : 0;
    while (queue_.size() > static_cast<std::size_t>(keep)) {
      queued_bytes_ -= queue_.back()->size();
      unsent.push_front(std::move(queue_.back()));
      queue_.pop_back();
    }
  }
  if (!left_) {
    if (!self_ || self_->mode == protocol::peer_mode::lobby) {
      if (!unsent.empty()) state_.stats().dropped(drop_reason::queue_overflow).Increment(unsent.size());
      unsent.clear();
    }
    leave_registry(kind, std::move(unsent));
  }
  // Bound the whole closing handshake, including a write stuck on a peer
  // that does not read: after the handshake timeout the socket is closed.
  close_timer_.expires_after(state_.settings().handshake_timeout);
  close_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (!ec) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    }
  });
  if (!writing_ && accepted_) do_close();  // else on_accept or on_write closes
}

template <class Stream>
void websocket_session<Stream>::do_close() {
  close_started_ = true;
  ws_.async_close(websocket::close_reason(static_cast<std::uint16_t>(*closing_)),
                  beast::bind_front_handler(&websocket_session::on_close, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_close(beast::error_code) {
  // The pending read completes too and releases the session.
  close_timer_.cancel();
}

template <class Stream>
void websocket_session<Stream>::leave_registry(leave_kind kind, std::deque<shared_message> unsent) {
  left_ = true;
  leave_kind_ = kind;
  if (!self_) return;
  state_.registry().leave(*self_, kind, std::move(unsent));
  auto& stats = state_.stats();
  (self_->mode == protocol::peer_mode::room ? stats.connections_room : stats.connections_lobby).Decrement();
  log_peer_event(spdlog::level::info, "leave",
                 {{"mode", mode_name(self_->mode)},
                  {"room", self_->room},
                  {"peer", self_->id},
                  {"how", kind_name(kind)}});
}

template <class Stream>
void websocket_session<Stream>::replaced() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    // The registry already gave the place to the new connection; leaving with
    // this (old) epoch hands it what this one had not written.
    if (!self->left_) self->end(leave_kind::dropped, close_code::id_taken, /*flush=*/false);
  });
}

template <class Stream>
void websocket_session<Stream>::shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    // A pending refusal is sent by on_accept; otherwise close after what is queued.
    if (!self->refusal_ && !self->closing_)
      self->end(leave_kind::silent, close_code::going_away, /*flush=*/true);
  });
}

template class websocket_session<plain_stream>;
template class websocket_session<tls_stream>;

}  // namespace rendezvous::server
