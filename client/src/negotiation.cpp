#include <rendezvous/client/negotiation.hpp>

#include <algorithm>
#include <set>

namespace rendezvous::client {

std::string_view to_string(peer_role r) noexcept {
  switch (r) {
    case peer_role::undecided: return "undecided";
    case peer_role::polite: return "polite";
    case peer_role::impolite: return "impolite";
  }
  return "?";
}

std::string_view to_string(pc_state s) noexcept {
  switch (s) {
    case pc_state::fresh: return "new";
    case pc_state::connecting: return "connecting";
    case pc_state::connected: return "connected";
    case pc_state::disconnected: return "disconnected";
    case pc_state::failed: return "failed";
    case pc_state::closed: return "closed";
  }
  return "?";
}

namespace {
// Recoveries in a row without reaching `connected` before we give up on a
// peer (until it joins again): an engine that fails every time must not make
// two peers ping-pong role messages forever.
constexpr int max_recoveries = 5;
}  // namespace

negotiator::negotiator(engine& eng, send_fn send, random_fn random, negotiation_options options,
                       negotiation_observer* observer)
    : engine_(eng),
      send_(std::move(send)),
      random_(std::move(random)),
      options_(std::move(options)),
      observer_(observer ? observer : &null_observer_) {}

// ---- state lookup ----

negotiator::peer_state* negotiator::find(const std::string& peer) {
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : &it->second;
}

const negotiator::peer_state* negotiator::find(const std::string& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : &it->second;
}

negotiator::peer_state* negotiator::current(const std::string& peer, std::uint64_t gen) {
  auto* st = find(peer);
  return st && gen != 0 && st->gen == gen ? st : nullptr;
}

negotiator::peer_state& negotiator::create_state(const std::string& peer) {
  auto& st = peers_[peer];
  st.id = peer;
  st.my_seed = draw();
  return st;
}

void negotiator::forget(const std::string& peer) {
  auto* st = find(peer);
  if (!st) return;
  close_connection(*st);
  peers_.erase(peer);
}

double negotiator::draw() {
  double r = random_ ? random_() : 0.5;
  return r >= 0.0 && r < 1.0 ? r : 0.5;
}

// ---- signaling input ----

void negotiator::on_welcome(const welcome_event& w) {
  self_id_ = w.id;
  if (w.resumed) return;  // nothing was lost: the server replays what it held
  // A fresh welcome after a reconnect means a restarted server: peers it does
  // not list may still come back (peer-joined). Keep the connections that
  // still work; the others will be negotiated again when they do.
  std::set<std::string> listed(w.peers.begin(), w.peers.end());
  std::vector<std::string> stale;
  for (auto& [id, st] : peers_)
    if (!listed.count(id) && !st.channel_open) stale.push_back(id);
  for (auto& id : stale) forget(id);
  for (const auto& p : w.peers) on_peer_joined(p);
}

void negotiator::on_peer_joined(const std::string& peer) {
  if (peer.empty() || peer == self_id_) return;
  auto* st = find(peer);
  if (!st) {
    send_role(create_state(peer));
    return;
  }
  // Our connection to it still works: this is the same partner coming back
  // after a server restart. A new instance of it sends a role message from
  // another session, and we pair again then.
  if (st->channel_open) return;
  new_pairing(*st, /*forget_partner_seed=*/true);
}

void negotiator::on_peer_left(const std::string& peer) { forget(peer); }

bool negotiator::on_signal(const relayed_message& m) {
  if (m.from.empty() || m.from == self_id_) return false;
  if (m.type == "role") {
    auto r = parse_role(m);
    if (!r) {
      observer_->on_error(m.from, "role message without a numeric seed");
      return true;
    }
    std::optional<double> peer_seed;
    if (auto it = m.body.find("peerSeed"); it != m.body.end() && it->is_number())
      peer_seed = it->get<double>();
    on_role_message(m.from, *r, peer_seed);
    return true;
  }
  if (m.type == "bye") {
    forget(m.from);
    return true;
  }
  if (m.type != "offer" && m.type != "answer" && m.type != "candidate") return false;

  auto* st = find(m.from);
  if (!st || st->gen == 0) return true;  // not paired (yet): it belongs to no connection of ours
  if (auto it = m.body.find("seed");
      it != m.body.end() && it->is_number() && st->their_seed && it->get<double>() != *st->their_seed)
    return true;  // sent for an earlier pairing
  if (m.type == "candidate") {
    auto c = parse_candidate(m);
    if (!c) {
      observer_->on_error(m.from, "malformed candidate message");
      return true;
    }
    on_candidate(*st, std::move(*c));
  } else {
    auto d = parse_description(m);
    if (!d) {
      observer_->on_error(m.from, "malformed " + m.type + " message");
      return true;
    }
    on_description(*st, std::move(*d));
  }
  return true;
}

void negotiator::on_signal_error(const error_event& e) {
  if (e.code != "peer-not-found" || e.id.empty()) return;
  // It is not in the room (e.g. not back yet after a server restart): keep a
  // working connection, drop the rest; a peer-joined starts again.
  auto* st = find(e.id);
  if (st && !st->channel_open) forget(e.id);
}

// ---- roles ----

void negotiator::send_role(peer_state& st) {
  auto msg = make_role_message(st.id, {st.my_seed, options_.session, engine_.supports_ice_restart()});
  if (st.their_seed) msg["peerSeed"] = *st.their_seed;
  send_(std::move(msg));
}

void negotiator::new_pairing(peer_state& st, bool forget_partner_seed) {
  close_connection(st);
  st.my_seed = draw();
  if (forget_partner_seed) {
    st.their_seed.reset();
    st.role = peer_role::undecided;
  }
  send_role(st);
  if (!forget_partner_seed) decide(st);
}

void negotiator::on_role_message(const std::string& from, const role_message& r,
                                 std::optional<double> peer_seed) {
  auto* st = find(from);
  bool fresh = st == nullptr;
  if (fresh) st = &create_state(from);
  bool replaced = st->their_session_known && r.session != st->their_session;
  bool changed = st->their_seed && *st->their_seed != r.seed;
  if (!fresh && !replaced && !changed && st->their_seed) {
    // The same seed again: nothing changes, but make sure it knows ours.
    if (!peer_seed || *peer_seed != st->my_seed) send_role(*st);
    return;
  }
  if (replaced) {
    // Another instance of this peer: its old connection is gone; draw again.
    close_connection(*st);
    st->my_seed = draw();
    st->role = peer_role::undecided;
  } else if (changed) {
    // It started a new pairing (recovery, or it lost track of us): a fresh
    // connection on both sides.
    close_connection(*st);
    st->role = peer_role::undecided;
  }
  st->their_session_known = true;
  st->their_session = r.session;
  st->their_ice_restart = r.ice_restart;
  st->their_seed = r.seed;
  if (r.seed == st->my_seed) {
    // A tie: both sides see it and draw again.
    st->my_seed = draw();
    send_role(*st);
    return;
  }
  if (!peer_seed || *peer_seed != st->my_seed) send_role(*st);
  decide(*st);
}

void negotiator::decide(peer_state& st) {
  if (!st.their_seed) return;
  if (*st.their_seed == st.my_seed) {
    st.my_seed = draw();
    send_role(st);
    return;
  }
  auto role = st.my_seed < *st.their_seed ? peer_role::polite : peer_role::impolite;
  bool changed = role != st.role;
  st.role = role;
  if (changed) {
    close_connection(st);
    observer_->on_role(st.id, role);
  }
  if (st.gen == 0) open_connection(st);
}

// ---- connections ----

void negotiator::open_connection(peer_state& st) {
  st.gen = next_gen_++;
  st.signaling = phase::stable;
  st.ignore_offer = st.remote_answer_pending = st.remote_description_set = false;
  st.local_description_sent = st.negotiated = false;
  st.ops.clear();
  st.running = stage::idle;
  st.remote_candidates.clear();
  st.local_candidates.clear();
  st.channel_open = false;
  st.connection = pc_state::fresh;
  st.ever_connected = st.ice_restart_tried = false;
  ++st.connections_made;
  // The polite side creates the channel, and so offers first, when the
  // engine reports that negotiation is needed. With force_glare the impolite
  // side creates one too and both offer at once, so the offers cross.
  bool channel = st.role == peer_role::polite || options_.force_glare;
  engine_.create_connection(st.id, st.gen, channel, options_.label);
  if (options_.force_glare) {
    st.ops.push_back(op{op::offer, false, {}});
    run_next(st);
  }
}

void negotiator::close_connection(peer_state& st) {
  if (st.gen == 0) return;
  bool was_open = st.channel_open;
  auto gen = st.gen;
  st.gen = 0;
  st.ops.clear();
  st.running = stage::idle;
  st.channel_open = false;
  st.remote_candidates.clear();
  st.local_candidates.clear();
  st.signaling = phase::stable;
  st.connection = pc_state::closed;
  engine_.close_connection(st.id, gen);
  if (was_open) observer_->on_channel_closed(st.id);
}

void negotiator::recover(peer_state& st, const char* why) {
  if (++st.recoveries > max_recoveries) {
    observer_->on_error(st.id, std::string(why) + "; giving up after " + std::to_string(max_recoveries) +
                                   " attempts to recover (until it joins again)");
    close_connection(st);
    return;
  }
  bool failed = std::string_view(why) == "connection failed";
  if (failed && st.ever_connected && !st.ice_restart_tried && st.their_ice_restart &&
      engine_.supports_ice_restart()) {
    st.ice_restart_tried = true;
    observer_->on_recovery(st.id, "ice-restart");
    if (!offer_pending(st)) {
      st.ops.push_back(op{op::offer, true, {}});
      run_next(st);
    }
    return;
  }
  observer_->on_recovery(st.id, "renegotiate");
  new_pairing(st, /*forget_partner_seed=*/false);
}

// ---- perfect negotiation ----

bool negotiator::offer_pending(const peer_state& st) const {
  if (st.running == stage::offering) return true;
  return std::any_of(st.ops.begin(), st.ops.end(), [](const op& o) { return o.kind == op::offer; });
}

void negotiator::on_description(peer_state& st, description d) {
  bool making_offer = offer_pending(st);
  bool ready_for_offer = !making_offer && (st.signaling == phase::stable || st.remote_answer_pending);
  bool collision = d.type == sdp_type::offer && !ready_for_offer;
  st.ignore_offer = st.role == peer_role::impolite && collision;
  if (st.ignore_offer) {
    observer_->on_offer_ignored(st.id);
    return;
  }
  if (collision && st.running != stage::offering) {
    // Our offer has not started yet: the answer we are about to give
    // completes the negotiation instead of it.
    std::erase_if(st.ops, [](const op& o) { return o.kind == op::offer; });
  }
  if (d.type == sdp_type::answer) st.remote_answer_pending = true;
  st.ops.push_back(op{op::apply_remote, false, std::move(d)});
  run_next(st);
}

void negotiator::on_candidate(peer_state& st, candidate c) {
  if (st.ignore_offer) return;  // it belongs to the offer we ignored: dropped, no error
  bool remote_pending =
      st.running == stage::rolling_back || st.running == stage::setting_remote ||
      std::any_of(st.ops.begin(), st.ops.end(), [](const op& o) { return o.kind == op::apply_remote; });
  if (!st.remote_description_set || remote_pending) {
    st.remote_candidates.push_back(std::move(c));
    return;
  }
  engine_.add_remote_candidate(st.id, st.gen, c);
}

void negotiator::run_next(peer_state& st) {
  while (st.running == stage::idle && !st.ops.empty() && st.gen != 0) {
    st.current = std::move(st.ops.front());
    st.ops.pop_front();
    auto& o = st.current;
    if (o.kind == op::offer) {
      // A remote offer came first: our answer did the job. (Our sessions
      // carry one data channel: after the first exchange only an ICE restart
      // needs another offer.)
      if (st.signaling != phase::stable || (st.negotiated && !o.ice_restart)) continue;
      st.running = stage::offering;
      engine_.create_offer(st.id, st.gen, o.ice_restart);
      return;
    }
    if (o.remote.type == sdp_type::answer && st.signaling != phase::have_local_offer) {
      st.remote_answer_pending = false;
      observer_->on_error(st.id, "answer without an offer of ours: ignored");
      continue;
    }
    if (o.remote.type == sdp_type::offer && st.signaling == phase::have_local_offer) {
      // Polite side of a collision: roll our offer back, then take theirs.
      st.running = stage::rolling_back;
      ++st.rollbacks;
      observer_->on_rollback(st.id);
      engine_.rollback(st.id, st.gen);
      return;
    }
    st.running = stage::setting_remote;
    engine_.set_remote_description(st.id, st.gen, o.remote);
    return;
  }
}

void negotiator::op_done(peer_state& st) {
  st.running = stage::idle;
  run_next(st);
}

void negotiator::flush_remote_candidates(peer_state& st) {
  auto pending = std::exchange(st.remote_candidates, {});
  for (const auto& c : pending) engine_.add_remote_candidate(st.id, st.gen, c);
}

void negotiator::flush_local_candidates(peer_state& st) {
  auto pending = std::exchange(st.local_candidates, {});
  for (const auto& c : pending) send_tagged(st, make_candidate_message(st.id, c));
}

void negotiator::send_tagged(peer_state& st, nlohmann::json msg) {
  msg["seed"] = st.my_seed;
  send_(std::move(msg));
}

// ---- engine input ----

void negotiator::on_negotiation_needed(const std::string& peer, std::uint64_t gen) {
  auto* st = current(peer, gen);
  if (!st || st->negotiated || st->signaling != phase::stable || offer_pending(*st)) return;
  st->ops.push_back(op{op::offer, false, {}});
  run_next(*st);
}

void negotiator::on_local_description(const std::string& peer, std::uint64_t gen, const description& d) {
  auto* st = current(peer, gen);
  if (!st) return;
  if (st->running == stage::offering && d.type == sdp_type::offer) {
    st->signaling = phase::have_local_offer;
  } else if (st->running == stage::answering && d.type == sdp_type::answer) {
    st->signaling = phase::stable;
    st->negotiated = true;
  } else {
    observer_->on_error(peer, "unexpected local description from the engine: ignored");
    return;
  }
  send_tagged(*st, make_description_message(peer, d));
  st->local_description_sent = true;
  flush_local_candidates(*st);
  op_done(*st);
}

void negotiator::on_remote_description_set(const std::string& peer, std::uint64_t gen) {
  auto* st = current(peer, gen);
  if (!st || st->running != stage::setting_remote) return;
  st->remote_description_set = true;
  bool is_offer = st->current.remote.type == sdp_type::offer;
  if (is_offer) {
    st->signaling = phase::have_remote_offer;
  } else {
    st->signaling = phase::stable;
    st->remote_answer_pending = false;
    st->negotiated = true;
  }
  flush_remote_candidates(*st);
  if (is_offer) {
    st->running = stage::answering;
    engine_.create_answer(peer, gen);
    return;
  }
  op_done(*st);
}

void negotiator::on_rolled_back(const std::string& peer, std::uint64_t gen) {
  auto* st = current(peer, gen);
  if (!st || st->running != stage::rolling_back) return;
  st->signaling = phase::stable;
  st->local_description_sent = false;
  st->local_candidates.clear();
  st->running = stage::setting_remote;
  engine_.set_remote_description(peer, gen, st->current.remote);
}

void negotiator::on_local_candidate(const std::string& peer, std::uint64_t gen, const candidate& c) {
  auto* st = current(peer, gen);
  if (!st) return;
  if (!st->local_description_sent) {
    st->local_candidates.push_back(c);
    return;
  }
  send_tagged(*st, make_candidate_message(peer, c));
}

void negotiator::on_channel_open(const std::string& peer, std::uint64_t gen) {
  auto* st = current(peer, gen);
  if (!st || st->channel_open) return;  // engines may report a remote channel twice
  st->channel_open = true;
  st->recoveries = 0;
  observer_->on_channel_open(peer);
}

void negotiator::on_channel_message(const std::string& peer, std::uint64_t gen, const std::string& text) {
  if (current(peer, gen)) observer_->on_channel_message(peer, text);
}

void negotiator::on_channel_closed(const std::string& peer, std::uint64_t gen) {
  auto* st = current(peer, gen);
  if (!st || !st->channel_open) return;
  st->channel_open = false;
  // Not recovered here: a partner that leaves closes its channel just before
  // its `bye` arrives. The application calls recover_peer() if the partner is
  // still there a moment later.
  observer_->on_channel_closed(peer);
}

bool negotiator::recover_peer(const std::string& peer) {
  auto* st = find(peer);
  if (!st || st->channel_open || st->role == peer_role::undecided) return false;
  recover(*st, "channel closed");
  return true;
}

void negotiator::on_connection_state(const std::string& peer, std::uint64_t gen, pc_state s) {
  auto* st = current(peer, gen);
  if (!st || st->connection == s) return;
  st->connection = s;
  if (s == pc_state::connected) {
    st->ever_connected = true;
    st->ice_restart_tried = false;
  }
  observer_->on_connection_state(peer, s);
  if (s == pc_state::failed) recover(*st, "connection failed");
}

void negotiator::on_engine_error(const std::string& peer, std::uint64_t gen, const std::string& what) {
  auto* st = current(peer, gen);
  if (!st) return;
  observer_->on_error(peer, what);
  st->running = stage::idle;
  recover(*st, "engine error");
}

// ---- application ----

bool negotiator::send_text(const std::string& peer, const std::string& text) {
  auto* st = find(peer);
  if (!st || !st->channel_open) return false;
  engine_.send_text(peer, st->gen, text);
  return true;
}

std::size_t negotiator::broadcast_text(const std::string& text) {
  std::size_t n = 0;
  for (auto& [id, st] : peers_) {
    if (!st.channel_open) continue;
    engine_.send_text(id, st.gen, text);
    ++n;
  }
  return n;
}

void negotiator::close_all() {
  for (auto& [id, st] : peers_) close_connection(st);
  peers_.clear();
}

std::optional<negotiator::peer_info> negotiator::info(const std::string& peer) const {
  auto* st = find(peer);
  if (!st) return std::nullopt;
  peer_info i;
  i.role = st->role;
  i.my_seed = st->my_seed;
  i.their_seed = st->their_seed;
  i.gen = st->gen;
  i.signaling = st->signaling;
  i.making_offer = offer_pending(*st);
  i.ignore_offer = st->ignore_offer;
  i.channel_open = st->channel_open;
  i.connection = st->connection;
  i.buffered_remote_candidates = st->remote_candidates.size();
  i.rollbacks = st->rollbacks;
  i.connections_made = st->connections_made;
  return i;
}

std::vector<std::string> negotiator::peers() const {
  std::vector<std::string> out;
  for (const auto& [id, st] : peers_) out.push_back(id);
  return out;
}

std::vector<std::string> negotiator::open_channels() const {
  std::vector<std::string> out;
  for (const auto& [id, st] : peers_)
    if (st.channel_open) out.push_back(id);
  return out;
}

}  // namespace rendezvous::client
