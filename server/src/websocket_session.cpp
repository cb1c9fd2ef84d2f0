#include "websocket_session.hpp"

#include "admission.hpp"
#include "listener.hpp"

#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/names.hpp>
#include <rendezvous/protocol/server_messages.hpp>

#include <boost/asio/dispatch.hpp>
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

// What the read buffer may keep between frames (the size of most signaling
// messages); beyond it, it is released once the frame is handled.
constexpr std::size_t kept_read_buffer = 2048;

shared_message make_message(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

const char* mode_name(protocol::peer_mode mode) {
  return mode == protocol::peer_mode::room ? "room" : "lobby";
}

// The client as logs name it: the TCP peer, or via a trusted proxy the
// rightmost untrusted X-Forwarded-For entry.
template <class Stream>
client_address client_of(Stream& stream, std::string_view x_forwarded_for,
                         const std::vector<ip_range>& trusted) {
  client_address out;
  beast::error_code ec;
  auto ep = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  if (ec) return out;
  out.remote = format_endpoint(ep);
  if (auto client = forwarded_client(ep.address(), x_forwarded_for, trusted)) {
    out.proxy = std::move(out.remote);
    out.remote = client->to_string();
  }
  return out;
}
}  // namespace

template <class Stream>
websocket_session<Stream>::websocket_session(Stream&& stream, connection_tickets tickets, server_state& state)
    : ws_(std::move(stream)),
      state_(state),
      tickets_(std::move(tickets)),
      membership_(state),
      timer_(ws_.get_executor()),
      bucket_(state.settings().rate_limit_per_s, state.settings().rate_limit_burst, now_us()) {}

template <class Stream>
websocket_session<Stream>::~websocket_session() {
  membership_.release();  // before untrack: a drain may end when the last session is gone
  state_.untrack(this);
}

// ---- upgrading ----

template <class Stream>
void websocket_session<Stream>::run(beast::http::request<beast::http::string_body> req,
                                    protocol::endpoint target) {
  // Runs on the strand the listener gave the socket.
  state_.track(this->shared_from_this());
  target_ = std::move(target);
  const auto& s = state_.settings();
  client_ = client_of(ws_.next_layer().next_layer(), req["X-Forwarded-For"], s.trusted_proxies);
  beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts below take over
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = s.handshake_timeout;
  // Keepalive is ours (keepalive_tick): Beast's idle timer would be re-armed
  // on every frame read, through a type-erased executor that allocates.
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard_ = true; });
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "rendezvous"); }));
  ws_.read_message_max(s.max_message_bytes);
  ws_.auto_fragment(false);
  ws_.next_layer().set_limits(s.outbound_max_messages, s.outbound_max_bytes);
  request_ = std::move(req);
  admit();
}

template <class Stream>
void websocket_session<Stream>::admit() {
  // Before the 101 goes out, so that a peer that sees its WebSocket open is
  // already reachable (lobby peers get no welcome to wait for). A refusal is
  // only recorded here and sent after the upgrade. The registry may answer
  // later (the cluster asks Redis); the socket waits unread meanwhile.
  // The join rate of the client's address first: the cheapest refusal, and
  // the one a flood of joins meets.
  if (auto joined = state_.limits().try_join(tickets_.key, steady_now_us()); !joined.ok) {
    state_.note_refusal(refusal_reason::join_rate, joined.log);
    quiet_refusal_ = true;
    refuse({error_code::rate_limited, "too many joins from this address: retry later"});
    return accept();
  }
  if (!membership_.take_slot()) {
    refuse({error_code::unavailable, "server is at its connection limit"});
    return accept();
  }
  if (state_.draining()) {
    refuse({error_code::unavailable, "server is shutting down"});
    return accept();
  }
  server::admit_async(
      {target_, std::string(request_[beast::http::field::origin]),
       std::string(request_[beast::http::field::authorization]), this->weak_from_this(), unix_now()},
      state_.settings(), state_.registry(),
      [self = this->shared_from_this()](protocol::result<admission> admitted) {
        net::dispatch(self->ws_.get_executor(), [self, admitted = std::move(admitted)]() mutable {
          self->admitted(std::move(admitted));
        });
      });
}

template <class Stream>
void websocket_session<Stream>::admitted(protocol::result<admission> admitted) {
  if (!admitted) {
    refuse(admitted.error());
    return accept();
  }
  membership_.enter(admitted->self);
  const auto& self = admitted->self;
  log_peer_event(spdlog::level::info, "join",
                 {{"mode", mode_name(self.mode)},
                  {"room", self.room},
                  {"peer", self.id},
                  {"resumed", admitted->resumed}});
  // Queued behind the 101. Deliveries from other threads are posted to this
  // strand, so they can only come after.
  for (auto& msg : admitted->first) send(std::move(msg));
  accept();
}

template <class Stream>
void websocket_session<Stream>::accept() {
  ws_.async_accept(request_,
                   beast::bind_front_handler(&websocket_session::on_accept, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_accept(beast::error_code ec) {
  tickets_.handshake.release();  // upgraded (or failed): no longer a handshake of its address
  request_ = {};                 // not needed past the upgrade
  if (ec) {
    spdlog::debug("websocket handshake failed remote={} error={}", client_.remote, ec.message());
    phase_ = phase::closed;
    leave(leave_kind::closed);
    timer_.cancel();
    return;
  }
  ws_.next_layer().open();
  if (phase_ == phase::closing) {
    start_close_handshake();  // asked for while the 101 was on its way
  } else {
    phase_ = phase::open;
    arm_keepalive();
    if (refusal_) refuse(*std::exchange(refusal_, std::nullopt));
  }
  do_read();  // also needed to complete a closing handshake
}

// ---- open ----

template <class Stream>
void websocket_session<Stream>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&websocket_session::on_read, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_read(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    if (membership_.active()) {
      leave_kind how = leave_kind::dropped;
      if (ec == websocket::error::closed) {
        how = leave_kind::closed;  // the client's close frame
      } else if (ec == websocket::error::message_too_big) {
        how = leave_kind::kicked;  // Beast has already closed with 1009
        state_.stats().error(error_code::message_too_large).Increment();
      } else if (ec == websocket::condition::protocol_violation) {
        how = leave_kind::kicked;  // e.g. 1007 bad UTF-8, closed by Beast
      }
      leave(how, ws_.next_layer().take_unsent());
    }
    phase_ = phase::closed;
    timer_.cancel();
    if (ec != websocket::error::closed && ec != net::error::operation_aborted)
      spdlog::debug("connection ended peer={} remote={} error={}",
                    membership_.self() ? membership_.self()->id : "", client_.remote, ec.message());
    return;
  }
  heard_ = true;
  state_.stats().bytes_in.Increment(static_cast<double>(bytes));
  if (phase_ == phase::open) {
    if (!bucket_.try_take(now_us())) {
      state_.stats().dropped(drop_reason::rate_limited).Increment();
      if (++strikes_ >= state_.settings().rate_limit_strikes) {
        reply_error(error_code::rate_limited, "rate limit exceeded again and again: closing");
        begin_close(leave_kind::kicked, close_code::too_many, /*flush=*/true);
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
  // No read is pending here: a buffer grown by a large message goes back.
  if (buffer_.capacity() > kept_read_buffer) buffer_.shrink_to_fit();
  // Back-pressure on a peer's own traffic: while half the outbound queue is
  // waiting to be written (its replies, or what others send it), read no
  // more from it. A fast sender is slowed down instead of being mistaken for
  // a slow reader.
  auto& out = ws_.next_layer();
  if (phase_ == phase::open && out.queued_frames() * 2 >= out.max_frames()) return pause_reading();
  do_read();
}

template <class Stream>
void websocket_session<Stream>::arm_keepalive() {
  timer_.expires_after(state_.settings().ping_interval);
  timer_.async_wait(beast::bind_front_handler(&websocket_session::keepalive_tick, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::keepalive_tick(beast::error_code ec) {
  // Every ping_interval: nothing heard since the last tick -> ping; nothing
  // heard since that ping either -> the connection is dead (silent peer, or
  // one that stopped reading while back-pressure paused our reads: its pong
  // cannot come). Closing the socket fails what is pending, which ends the
  // session as a drop.
  if (ec || phase_ != phase::open) return;
  if (heard_) {
    heard_ = false;
    pinged_ = false;
  } else if (!pinged_) {
    // Quiet for a whole interval: ask, and hold no write buffers meanwhile.
    // (Not the read buffer: Beast may be reading into it right now.)
    ws_.next_layer().shrink();
    pinged_ = true;
    ws_.async_ping({}, [self = this->shared_from_this()](beast::error_code) {});
  } else {
    spdlog::debug("keepalive: no answer remote={}", client_.remote);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return;
  }
  arm_keepalive();
}

template <class Stream>
void websocket_session<Stream>::pause_reading() {
  // No read is pending now: the keepalive bounds the pause, since no pong can be heard.
  auto& out = ws_.next_layer();
  out.async_wait_below(out.max_frames() / 4 + 1,
                       beast::bind_front_handler(&websocket_session::on_drained, this->shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_drained(beast::error_code) {
  if (phase_ == phase::closed) return;
  do_read();  // a failed socket fails this read, which ends the session as usual
}

template <class Stream>
void websocket_session<Stream>::handle_frame(std::string_view text) {
  auto frame = protocol::scan_frame(text);
  if (!frame) return reply_error(error_code::bad_message, frame.error().message);
  const peer_ref* self = membership_.self();
  if (!membership_.active()) return;  // refused; waiting for the close to complete

  auto decision = protocol::decide(frame.value(), self->mode);
  switch (decision.what) {
    case protocol::action::pong: {
      auto t = frame->t_value;
      return send(make_message(protocol::make_pong(text.substr(t.begin, t.end - t.begin))));
    }
    case protocol::action::refuse:
      return reply_error(decision.refusal, "type '" + frame->type + "' is reserved for the server");
    case protocol::action::drop: state_.stats().dropped(drop_reason::no_target).Increment(); return;
    case protocol::action::relay:
    case protocol::action::broadcast: break;
  }

  auto out = std::make_shared<std::string>();
  out->reserve(protocol::rewritten_size(frame.value(), self->id));
  protocol::rewrite_sender(frame.value(), self->id, *out);
  if (decision.what == protocol::action::broadcast) {
    state_.registry().broadcast(*self, std::move(out));
    return;
  }
  if (state_.registry().deliver(*self, *frame->id, std::move(out)) == deliver_status::not_found) {
    if (self->mode == protocol::peer_mode::lobby) {
      state_.stats().dropped(drop_reason::unknown_target).Increment();
    } else {
      reply_error(error_code::peer_not_found, "no peer with this id in the room", *frame->id);
    }
  }
}

// ---- outbound ----

template <class Stream>
void websocket_session<Stream>::send(shared_message msg) {
  if (phase_ == phase::closed) {
    state_.stats().dropped(drop_reason::closed).Increment();
    return;
  }
  const std::size_t size = msg->size();
  switch (ws_.next_layer().send_text(msg)) {
    case send_status::queued: state_.stats().bytes_out.Increment(static_cast<double>(size)); return;
    case send_status::closed: state_.stats().dropped(drop_reason::closed).Increment(); return;
    case send_status::overflow: break;
  }
  // A peer that does not read: disconnect it (it may resume) rather than
  // hold unbounded memory. What it had not been sent is held for it.
  auto& out = ws_.next_layer();
  log_peer_event(spdlog::level::warn, "slow-consumer",
                 {{"room", membership_.self() ? std::string_view(membership_.self()->room) : ""},
                  {"peer", membership_.self() ? std::string_view(membership_.self()->id) : ""},
                  {"queued", out.queued_frames()},
                  {"bytes", out.queued_bytes()}});
  begin_close(leave_kind::dropped, close_code::policy, /*flush=*/false, std::move(msg));
}

template <class Stream>
void websocket_session<Stream>::reply_error(error_code code, std::string_view message, std::string_view id) {
  state_.stats().error(code).Increment();
  send(make_message(protocol::make_error(code, message, id)));
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
  if (auto exit = membership_.exit()) {
    // The connection is over; a dropped peer may still resume and get it.
    if (membership_.self() && *exit == leave_kind::dropped)
      state_.registry().hold_late(*membership_.self(), std::move(msg));
    else
      state_.stats().dropped(drop_reason::closed).Increment();
    return;
  }
  send(std::move(msg));
}

// ---- closing ----

template <class Stream>
void websocket_session<Stream>::refuse(const protocol::failure& refusal) {
  if (phase_ == phase::upgrading) {
    if (!refusal_) refusal_ = refusal;  // sent by on_accept
    return;
  }
  const bool room_mode = target_.kind == protocol::endpoint_kind::room;
  if (!quiet_refusal_)
    log_peer_event(spdlog::level::info, "refuse",
                   {{"mode", room_mode ? "room" : "lobby"},
                    {"room", loggable(room_mode ? target_.name : "")},
                    {"peer", loggable(room_mode ? target_.param("peer").value_or("") : target_.name)},
                    {"code", protocol::to_string(refusal.code)},
                    {"reason", refusal.message}});
  reply_error(refusal.code, refusal.message);
  begin_close(leave_kind::closed, protocol::close_code_for(refusal.code), /*flush=*/true);
}

template <class Stream>
void websocket_session<Stream>::begin_close(leave_kind how, close_code code, bool flush,
                                            shared_message overflowed) {
  if (phase_ == phase::closing || phase_ == phase::closed) return;
  const bool upgrading = phase_ == phase::upgrading;
  phase_ = phase::closing;
  close_code_ = code;
  std::deque<shared_message> unsent;
  if (!flush) {
    unsent = ws_.next_layer().take_unsent();  // all but the socket write in flight
    if (overflowed) unsent.push_back(std::move(overflowed));
  }
  const peer_ref* self = membership_.self();
  if (!unsent.empty() && (!self || self->mode == protocol::peer_mode::lobby)) {
    // Nothing to resume into: lobby peers have no held place.
    state_.stats().dropped(drop_reason::queue_overflow).Increment(static_cast<double>(unsent.size()));
    unsent.clear();
  }
  leave(how, std::move(unsent));
  // Bound the whole closing handshake, including a write stuck on a peer
  // that does not read: after the handshake timeout the socket is closed.
  timer_.expires_after(state_.settings().handshake_timeout);
  timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (!ec) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    }
  });
  if (!upgrading) start_close_handshake();  // else on_accept starts it
}

template <class Stream>
void websocket_session<Stream>::start_close_handshake() {
  // The close frame queues behind what is already queued, so it flushes that
  // first. The pending read sees the peer's answer and releases the session.
  ws_.async_close(websocket::close_reason(static_cast<std::uint16_t>(*close_code_)),
                  [self = this->shared_from_this()](beast::error_code) { self->timer_.cancel(); });
}

template <class Stream>
void websocket_session<Stream>::leave(leave_kind how, std::deque<shared_message> unsent) {
  if (!membership_.leave(how, std::move(unsent))) return;
  const peer_ref& self = *membership_.self();
  log_peer_event(
      spdlog::level::info, "leave",
      {{"mode", mode_name(self.mode)}, {"room", self.room}, {"peer", self.id}, {"how", to_string(how)}});
}

template <class Stream>
void websocket_session<Stream>::log_peer_event(spdlog::level::level_enum level, std::string_view event,
                                               std::initializer_list<log_field> fields) const {
  std::vector<log_field> all(fields);
  all.emplace_back("remote", client_.remote);
  if (!client_.proxy.empty()) all.emplace_back("proxy", client_.proxy);
  log_event(level, event, all);
}

// ---- from other threads ----

template <class Stream>
void websocket_session<Stream>::replaced() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    // The registry already gave the place to the new connection; leaving with
    // this (old) epoch hands it what this one had not written.
    if (self->membership_.active())
      self->begin_close(leave_kind::dropped, close_code::id_taken, /*flush=*/false);
  });
}

template <class Stream>
void websocket_session<Stream>::shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    // A pending refusal is sent by on_accept; otherwise close after what is queued.
    if (!self->refusal_) self->begin_close(leave_kind::silent, close_code::going_away, /*flush=*/true);
  });
}

template class websocket_session<plain_stream>;
template class websocket_session<tls_stream>;

}  // namespace rendezvous::server
