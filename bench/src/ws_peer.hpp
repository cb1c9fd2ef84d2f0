#pragma once
// One WebSocket client connection of the bench, and the protocol adapters:
// which URL a peer opens, whether it waits for a first server message, and
// how a relayed message is framed and recognised for each server.
//
// Threading: a peer lives on one io_context run by one thread, so its members
// need no strand; every handler holds shared_from_this().
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace rendezvous::bench {

enum class protocol_kind {
  room,    // rendezvous room mode (and the floor): /rooms/R?peer=ID, waits for the welcome
  lobby,   // rendezvous lobby mode (libdatachannel's): /ID, no first message
  peerjs,  // PeerJS server: /peerjs?key=peerjs&id=ID&token=T, waits for OPEN
};

struct target {
  boost::asio::ip::tcp::endpoint endpoint;
  protocol_kind proto = protocol_kind::room;
  std::string peerjs_key = "peerjs";
  std::chrono::milliseconds connect_timeout{10000};
  // Nonzero: peer number i binds source port source_port_base + i (below the
  // ephemeral range), falling back to a kernel-chosen port. With ~20,000
  // connections to one address, the kernel's own ephemeral port search in
  // connect() grows slow enough to be what a connect benchmark measures.
  unsigned source_port_base = 0;
  // Close with an RST (SO_LINGER 0): no TIME_WAIT left on those ports.
  bool linger_zero = false;
};

// The names of bench peer number `index`: pairs (2k, 2k+1) share room "r<k>".
struct peer_names {
  std::string id;
  std::string room;
};
peer_names names_for(const std::string& prefix, std::uint64_t index);

// The relayed test message and its parser, per protocol. The frame the client
// sends is `payload_bytes` long (padded), unless its fixed part is longer.
class message_format {
 public:
  message_format(protocol_kind proto, std::string target_id, std::string sender_id,
                 std::size_t payload_bytes);
  // Writes the frame for (seq, t) into out (cleared first).
  void build(std::string& out, std::uint64_t seq, std::int64_t t) const;
  struct parsed {
    bool ok = false;           // a test message
    bool from_sender = false;  // the sender field names the expected sender
    std::uint64_t seq = 0;
    std::int64_t t = 0;
  };
  parsed parse(std::string_view text) const;

 private:
  std::string head_;  // up to and including `"seq":`
  std::string mid_;   // between seq and t
  std::string pad_open_;
  std::string tail_;
  std::string sender_needle_;
  std::size_t payload_bytes_;
};

class ws_peer : public std::enable_shared_from_this<ws_peer> {
 public:
  using done_handler = std::function<void(std::string_view error)>;  // empty error: ready

  ws_peer(boost::asio::io_context& ioc, const target& t, peer_names names, std::uint64_t index = 0);
  virtual ~ws_peer() = default;

  // Connects, upgrades and, where the protocol has one, reads the first server
  // message. Calls done once. After success the peer keeps a read pending
  // (answering pings) and hands each message to on_message.
  void start(done_handler done);
  void close();
  const peer_names& names() const { return names_; }

 protected:
  virtual void on_message(std::string_view /*text*/) {}
  virtual void on_failure(std::string_view /*what*/) {}
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  const target& target_;
  peer_names names_;

 private:
  void on_connect(boost::beast::error_code ec);
  void on_handshake(boost::beast::error_code ec);
  void on_hello(boost::beast::error_code ec, std::size_t bytes);
  void ready();
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void finish(std::string_view error);

  boost::beast::flat_buffer buffer_;
  std::uint64_t index_;
  done_handler done_;
  bool closed_ = false;
};

}  // namespace rendezvous::bench
