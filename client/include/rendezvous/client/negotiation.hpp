#pragma once
// Negotiation of one WebRTC peer connection per remote peer, as pure logic:
// no I/O, no clocks, no threads. It consumes signaling events and engine
// events and drives an abstract `engine`; the application wires both sides.
//
// Roles (as RTCEngine's assignRole, docs/protocol.md, "Canonical payloads and role assignment"): each side of
// a pair draws a seed in [0,1) and sends it as `role`; the higher seed is impolite, the lower polite; equal
// seeds are drawn again. The polite side creates the data channel and so offers first. A new instance of a
// partner (a peer-joined for a peer we are not connected to, or a `role` from another `session`) makes us
// draw again.
//
// Perfect Negotiation (W3C webrtc-pc, section 10.7): makingOffer,
// ignoreOffer, isSettingRemoteAnswerPending; the impolite side ignores a
// colliding offer (and the candidates that belong to it), the polite side
// rolls back its own offer and answers. Engine operations are chained, one at
// a time per peer connection, as RTCPeerConnection's operations chain does.
// Remote candidates are buffered until the remote description is applied;
// local ones until our description is sent.
//
// Recovery: when a connection fails (or, through recover_peer(), its channel
// closed and the partner is still in the room), both sides agree on a fresh peer connection through
// the same role messages: the side that notices draws a new seed and sends
// it; a changed seed from the partner means "new pairing" to the receiver.
// An ICE restart on the same connection is tried first only when both sides
// said (`iceRestart` in their role message) that their engines support it;
// libdatachannel cannot apply one.
//
// Our clients tag offer/answer/candidate messages with the sender's current
// seed (`seed`), so that messages of an earlier pairing still in flight are
// recognised and dropped. Messages without the tag (libdatachannel
// applications) are taken as current.
#include <rendezvous/client/messages.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rendezvous::client {

enum class peer_role { undecided, polite, impolite };
std::string_view to_string(peer_role r) noexcept;

// RTCPeerConnectionState.
enum class pc_state { fresh, connecting, connected, disconnected, failed, closed };
std::string_view to_string(pc_state s) noexcept;

// The WebRTC engine as the negotiation drives it. One peer connection per
// (peer, gen); `gen` is unique for the negotiator's lifetime. Every call
// returns at once; results come back later through the negotiator's on_*
// members with the same (peer, gen), on the negotiator's thread. Results for
// a connection that was closed meanwhile are ignored, so an engine need not
// cancel anything.
class engine {
 public:
  virtual ~engine() = default;
  // A new peer connection. With `create_channel`, the data channel `label` is
  // created before the connection starts.
  virtual void create_connection(const std::string& peer, std::uint64_t gen, bool create_channel,
                                 const std::string& label) = 0;
  // Creates an offer (an answer) and sets it as the local description:
  // on_local_description, or on_engine_error.
  virtual void create_offer(const std::string& peer, std::uint64_t gen, bool ice_restart) = 0;
  virtual void create_answer(const std::string& peer, std::uint64_t gen) = 0;
  // on_remote_description_set, or on_engine_error.
  virtual void set_remote_description(const std::string& peer, std::uint64_t gen, const description& d) = 0;
  // Back to stable, dropping our local offer: on_rolled_back.
  virtual void rollback(const std::string& peer, std::uint64_t gen) = 0;
  // `mid` names the media section; an empty `candidate` means end of candidates.
  virtual void add_remote_candidate(const std::string& peer, std::uint64_t gen, const candidate& c) = 0;
  virtual void send_text(const std::string& peer, std::uint64_t gen, const std::string& text) = 0;
  virtual void close_connection(const std::string& peer, std::uint64_t gen) = 0;
  virtual bool supports_ice_restart() const { return false; }
};

// What the application hears about (all optional).
class negotiation_observer {
 public:
  virtual ~negotiation_observer() = default;
  virtual void on_role(const std::string& /*peer*/, peer_role /*role*/) {}
  virtual void on_channel_open(const std::string& /*peer*/) {}
  virtual void on_channel_message(const std::string& /*peer*/, const std::string& /*text*/) {}
  virtual void on_channel_closed(const std::string& /*peer*/) {}
  virtual void on_connection_state(const std::string& /*peer*/, pc_state /*state*/) {}
  // Perfect Negotiation events, for logs and tests.
  virtual void on_rollback(const std::string& /*peer*/) {}
  virtual void on_offer_ignored(const std::string& /*peer*/) {}
  // A failed connection is being recovered: how = "ice-restart" | "renegotiate".
  virtual void on_recovery(const std::string& /*peer*/, const std::string& /*how*/) {}
  virtual void on_error(const std::string& /*peer*/, const std::string& /*what*/) {}
};

struct negotiation_options {
  std::string session;  // random id of this instance, sent in role messages
  std::string label = "rendezvous";
  // Test-only: the impolite side creates a data channel and offers at once
  // too, so both offers cross ("glare").
  bool force_glare = false;
};

class negotiator {
 public:
  using send_fn = std::function<void(nlohmann::json)>;  // to the signaling client
  using random_fn = std::function<double()>;            // uniform in [0, 1)

  negotiator(engine& eng, send_fn send, random_fn random, negotiation_options options = {},
             negotiation_observer* observer = nullptr);

  // ---- signaling input ----
  void on_welcome(const welcome_event& w);
  void on_peer_joined(const std::string& peer);
  void on_peer_left(const std::string& peer);
  // role, offer, answer, candidate, bye. Returns false for other types.
  bool on_signal(const relayed_message& m);
  void on_signal_error(const error_event& e);

  // ---- engine input (ignored unless (peer, gen) is the current connection) ----
  void on_negotiation_needed(const std::string& peer, std::uint64_t gen);
  void on_local_description(const std::string& peer, std::uint64_t gen, const description& d);
  void on_remote_description_set(const std::string& peer, std::uint64_t gen);
  void on_rolled_back(const std::string& peer, std::uint64_t gen);
  void on_local_candidate(const std::string& peer, std::uint64_t gen, const candidate& c);
  void on_channel_open(const std::string& peer, std::uint64_t gen);
  void on_channel_message(const std::string& peer, std::uint64_t gen, const std::string& text);
  void on_channel_closed(const std::string& peer, std::uint64_t gen);
  void on_connection_state(const std::string& peer, std::uint64_t gen, pc_state s);
  void on_engine_error(const std::string& peer, std::uint64_t gen, const std::string& what);

  // ---- application ----
  // A closed channel is not recovered by itself (the partner may be leaving:
  // its `bye` follows). Call this a moment later if the partner is still in
  // the room: it renegotiates a fresh connection. False if there is nothing
  // to recover (unknown peer, channel open, no role yet).
  bool recover_peer(const std::string& peer);
  bool send_text(const std::string& peer, const std::string& text);
  std::size_t broadcast_text(const std::string& text);  // to every open channel; returns how many
  void close_all();                                     // closes every connection (shutdown)

  // ---- introspection ----
  enum class phase { stable, have_local_offer, have_remote_offer };
  struct peer_info {
    peer_role role = peer_role::undecided;
    double my_seed = 0;
    std::optional<double> their_seed;
    std::uint64_t gen = 0;  // 0: no connection
    phase signaling = phase::stable;
    bool making_offer = false;
    bool ignore_offer = false;
    bool channel_open = false;
    pc_state connection = pc_state::fresh;
    std::size_t buffered_remote_candidates = 0;
    int rollbacks = 0;
    int connections_made = 0;  // peer connections created for this peer so far
  };
  std::optional<peer_info> info(const std::string& peer) const;
  std::vector<std::string> peers() const;
  std::vector<std::string> open_channels() const;

 private:
  struct op {
    enum kind_t { offer, apply_remote } kind;
    bool ice_restart = false;
    description remote;
  };
  enum class stage { idle, offering, rolling_back, setting_remote, answering };

  struct peer_state {
    std::string id;
    // role assignment
    double my_seed = 0;
    std::optional<double> their_seed;
    bool their_session_known = false;
    std::string their_session;
    bool their_ice_restart = false;
    peer_role role = peer_role::undecided;
    // the current peer connection
    std::uint64_t gen = 0;
    phase signaling = phase::stable;
    bool ignore_offer = false;
    bool remote_answer_pending = false;
    bool remote_description_set = false;
    bool local_description_sent = false;
    bool negotiated = false;  // a first offer/answer exchange completed
    std::deque<op> ops;
    stage running = stage::idle;
    op current{};
    std::vector<candidate> remote_candidates;
    std::vector<candidate> local_candidates;
    bool channel_open = false;
    pc_state connection = pc_state::fresh;
    bool ever_connected = false;
    bool ice_restart_tried = false;
    int recoveries = 0;  // in a row, without an open channel in between
    int rollbacks = 0;
    int connections_made = 0;
  };

  peer_state* find(const std::string& peer);
  const peer_state* find(const std::string& peer) const;
  peer_state* current(const std::string& peer, std::uint64_t gen);
  peer_state& create_state(const std::string& peer);
  void forget(const std::string& peer);

  double draw();
  void send_role(peer_state& st);
  void new_pairing(peer_state& st, bool forget_partner_seed);
  void decide(peer_state& st);
  void open_connection(peer_state& st);
  void close_connection(peer_state& st);
  void recover(peer_state& st, const char* why);

  void on_description(peer_state& st, description d);
  void on_candidate(peer_state& st, candidate c);
  void on_role_message(const std::string& from, const role_message& r, std::optional<double> peer_seed);
  bool offer_pending(const peer_state& st) const;
  void run_next(peer_state& st);
  void op_done(peer_state& st);
  void flush_remote_candidates(peer_state& st);
  void flush_local_candidates(peer_state& st);
  void send_tagged(peer_state& st, nlohmann::json msg);

  engine& engine_;
  send_fn send_;
  random_fn random_;
  negotiation_options options_;
  negotiation_observer* observer_;
  negotiation_observer null_observer_;
  std::map<std::string, peer_state> peers_;
  std::string self_id_;
  std::uint64_t next_gen_ = 1;
};

}  // namespace rendezvous::client
