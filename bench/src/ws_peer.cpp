#include "ws_peer.hpp"

#include <boost/beast/core/bind_handler.hpp>

#include <charconv>

namespace rendezvous::bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

peer_names names_for(const std::string& prefix, std::uint64_t index) {
  return {prefix + "p" + std::to_string(index), prefix + "r" + std::to_string(index / 2)};
}

namespace {

std::string upgrade_target(const target& t, const peer_names& names) {
  switch (t.proto) {
    case protocol_kind::room: return "/rooms/" + names.room + "?peer=" + names.id;
    case protocol_kind::lobby: return "/" + names.id;
    case protocol_kind::peerjs:
      return "/peerjs?key=" + t.peerjs_key + "&id=" + names.id + "&token=tk" + names.id;
  }
  return "/";
}

std::size_t digits(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

bool read_number(std::string_view text, std::size_t pos, std::uint64_t& out) {
  if (pos >= text.size()) return false;
  auto res = std::from_chars(text.data() + pos, text.data() + text.size(), out);
  return res.ec == std::errc{};
}

}  // namespace

message_format::message_format(protocol_kind proto, std::string target_id, std::string sender_id,
                               std::size_t payload_bytes)
    : payload_bytes_(payload_bytes) {
  if (proto == protocol_kind::peerjs) {
    // PeerJS relays {type, dst, payload}; the receiver gets {type, src, dst, payload}.
    head_ = R"({"type":"CANDIDATE","dst":")" + target_id + R"(","payload":{"type":"data","seq":)";
    mid_ = R"(,"t":)";
    pad_open_ = R"(,"candidate":{"sdpMid":"0","sdpMLineIndex":0,"candidate":")";
    tail_ = R"("}}})";
    sender_needle_ = R"("src":")" + sender_id + "\"";
  } else {
    // Rendezvous (and the floor) relay {type, id, ...} with id rewritten to the sender.
    head_ = R"({"type":"candidate","id":")" + target_id + R"(","mid":"0","seq":)";
    mid_ = R"(,"t":)";
    pad_open_ = R"(,"candidate":")";
    tail_ = R"("})";
    sender_needle_ = R"("id":")" + sender_id + "\"";
  }
}

void message_format::build(std::string& out, std::uint64_t seq, std::int64_t t) const {
  auto tv = static_cast<std::uint64_t>(std::max<std::int64_t>(t, 0));
  std::size_t fixed = head_.size() + digits(seq) + mid_.size() + digits(tv) + pad_open_.size() + tail_.size();
  std::size_t pad = payload_bytes_ > fixed ? payload_bytes_ - fixed : 0;
  out.clear();
  out.reserve(fixed + pad);
  out += head_;
  append_number(out, seq);
  out += mid_;
  append_number(out, tv);
  out += pad_open_;
  // Candidate-like text; letters only, so no JSON escaping anywhere.
  static constexpr std::string_view filler = "candidateabcdefghijklmnopqrstuvwxyzUDPtyphost";
  while (pad > 0) {
    auto n = std::min(pad, filler.size());
    out.append(filler.data(), n);
    pad -= n;
  }
  out += tail_;
}

message_format::parsed message_format::parse(std::string_view text) const {
  parsed p;
  static constexpr std::string_view seq_key = R"("seq":)";
  static constexpr std::string_view t_key = R"("t":)";
  auto s = text.find(seq_key);
  if (s == std::string_view::npos) return p;
  std::uint64_t seq = 0, t = 0;
  if (!read_number(text, s + seq_key.size(), seq)) return p;
  auto tp = text.find(t_key, s);
  if (tp == std::string_view::npos || !read_number(text, tp + t_key.size(), t)) return p;
  p.ok = true;
  p.seq = seq;
  p.t = static_cast<std::int64_t>(t);
  // The sender field sits before the payload in every protocol's frame.
  p.from_sender = text.substr(0, s).find(sender_needle_) != std::string_view::npos;
  return p;
}

ws_peer::ws_peer(net::io_context& ioc, const target& t, peer_names names, std::uint64_t index)
    : ws_(ioc), target_(t), names_(std::move(names)), index_(index) {}

void ws_peer::start(done_handler done) {
  done_ = std::move(done);
  auto& stream = beast::get_lowest_layer(ws_);
  stream.expires_after(target_.connect_timeout);  // covers connect, upgrade and the first message
  if (target_.source_port_base != 0 && target_.source_port_base + index_ < 65536) {
    auto& socket = stream.socket();
    beast::error_code ec;
    socket.open(target_.endpoint.protocol(), ec);
    if (!ec) {
      socket.bind(
          {target_.endpoint.address(), static_cast<unsigned short>(target_.source_port_base + index_)}, ec);
      if (ec) {
        // Taken (by anyone): let connect() pick one.
        beast::error_code ignored;
        socket.close(ignored);
      }
    }
  }
  stream.async_connect(target_.endpoint, beast::bind_front_handler(&ws_peer::on_connect, shared_from_this()));
}

void ws_peer::on_connect(beast::error_code ec) {
  if (ec) return finish("connect: " + ec.message());
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().set_option(net::ip::tcp::no_delay(true), ignored);
  if (target_.linger_zero)
    beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::linger(true, 0), ignored);
  ws_.auto_fragment(false);
  ws_.read_message_max(16 * 1024 * 1024);
  auto host = target_.endpoint.address().to_string() + ":" + std::to_string(target_.endpoint.port());
  ws_.async_handshake(host, upgrade_target(target_, names_),
                      beast::bind_front_handler(&ws_peer::on_handshake, shared_from_this()));
}

void ws_peer::on_handshake(beast::error_code ec) {
  if (ec) return finish("handshake: " + ec.message());
  if (target_.proto == protocol_kind::lobby) return ready();
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_peer::on_hello, shared_from_this()));
}

void ws_peer::on_hello(beast::error_code ec, std::size_t) {
  if (ec) return finish("first message: " + ec.message());
  auto data = buffer_.data();
  std::string_view text(static_cast<const char*>(data.data()), data.size());
  std::string_view want = target_.proto == protocol_kind::peerjs ? R"("type":"OPEN")" : R"("type":"welcome")";
  if (text.find(want) == std::string_view::npos) {
    std::string what = "unexpected first message: ";
    what += text.substr(0, 160);
    return finish(what);
  }
  buffer_.consume(buffer_.size());
  ready();
}

void ws_peer::ready() {
  beast::get_lowest_layer(ws_).expires_never();
  do_read();
  finish({});
}

void ws_peer::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_peer::on_read, shared_from_this()));
}

void ws_peer::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (!closed_ && ec != net::error::operation_aborted) on_failure("read: " + ec.message());
    return;
  }
  auto data = buffer_.data();
  on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
  buffer_.consume(buffer_.size());
  do_read();
}

void ws_peer::finish(std::string_view error) {
  if (!done_) return;
  auto done = std::move(done_);
  done_ = nullptr;
  done(error);
}

void ws_peer::close() {
  closed_ = true;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

}  // namespace rendezvous::bench
