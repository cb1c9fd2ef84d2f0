#pragma once
// The WebRTC engine on GStreamer webrtcbin (built only when pkg-config finds
// gstreamer-webrtc-1.0; see ../shared/ENVIRONMENT.md for the pitfalls it
// works around).
//
// Threading: one thread of the engine's own owns a GMainContext and does all
// GStreamer work; calls from the application are queued to it (never
// blocking). webrtcbin signals and promises fire on GStreamer's threads: they
// copy what they carry and queue it to the engine thread, which posts the
// results to the application's executor, where they reach the negotiator.
// The engine and the negotiator must be used from that executor only.
#include <rendezvous/client/negotiation.hpp>
#include <rendezvous/client/webrtc_util.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rendezvous::client {

struct webrtcbin_options {
  gst_ice_servers ice;  // STUN/TURN servers (gst URL form)
  std::vector<std::string>
      local_ips;  // extra local addresses for ICE (e.g. 127.0.0.1 in a namespace with only lo)
};

class webrtcbin_engine final : public engine {
 public:
  // Checks that GStreamer and the elements it needs (webrtcbin, nice, dtls,
  // sctp) are there; nullptr and `why` when not.
  static std::unique_ptr<webrtcbin_engine> create(boost::asio::any_io_executor events, std::string* why);
  ~webrtcbin_engine() override;

  // Where events go (on the events executor). Set before the first connection.
  void set_negotiator(negotiator* n);
  // ICE settings for connections created from now on.
  void set_options(webrtcbin_options o);

  void create_connection(const std::string& peer, std::uint64_t gen, bool create_channel,
                         const std::string& label) override;
  void create_offer(const std::string& peer, std::uint64_t gen, bool ice_restart) override;
  void create_answer(const std::string& peer, std::uint64_t gen) override;
  void set_remote_description(const std::string& peer, std::uint64_t gen, const description& d) override;
  void rollback(const std::string& peer, std::uint64_t gen) override;
  void add_remote_candidate(const std::string& peer, std::uint64_t gen, const candidate& c) override;
  void send_text(const std::string& peer, std::uint64_t gen, const std::string& text) override;
  void close_connection(const std::string& peer, std::uint64_t gen) override;
  bool supports_ice_restart() const override { return false; }  // webrtcbin 1.22 has no ICE restart

  // Lets a peer that is about to exit deliver what it just sent: waits until
  // every channel has handed its buffered data to SCTP, then closes every
  // channel gracefully and waits for the closes (each step `timeout` at
  // most), then calls `done` on the events executor. Channel closes are not
  // reported to the negotiator from then on.
  void drain(std::chrono::milliseconds timeout, std::function<void()> done);

  // Closes every connection and stops the engine thread (joins it). Call
  // from outside the event loop's handlers, e.g. after io_context::run().
  void shutdown();

  struct impl;

 private:
  explicit webrtcbin_engine(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace rendezvous::client
