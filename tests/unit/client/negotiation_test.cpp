// The negotiation logic against a scripted fake engine: roles, the three
// offer-collision cases (the other side's offer before, during and after our
// own), both roles, candidate buffering, stale messages, restarts.
#include <rendezvous/client/negotiation.hpp>

#include <doctest/doctest.h>

#include <deque>
#include <set>
#include <string>
#include <vector>

using namespace rendezvous::client;

namespace {

// Records every engine call; the test completes them by hand (that is how
// "during" is scripted: a call stays pending until the test answers it).
struct fake_engine : engine {
  struct call {
    std::string what;  // create, offer, answer, remote-offer, remote-answer, rollback, candidate, send, close
    std::string peer;
    std::uint64_t gen;
    std::string arg;
  };
  std::vector<call> calls;
  bool ice_restart = false;

  void create_connection(const std::string& p, std::uint64_t g, bool ch, const std::string&) override {
    calls.push_back({ch ? "create+channel" : "create", p, g, {}});
  }
  void create_offer(const std::string& p, std::uint64_t g, bool restart) override {
    calls.push_back({"offer", p, g, restart ? "ice-restart" : ""});
  }
  void create_answer(const std::string& p, std::uint64_t g) override {
    calls.push_back({"answer", p, g, {}});
  }
  void set_remote_description(const std::string& p, std::uint64_t g, const description& d) override {
    calls.push_back({"remote-" + std::string(to_string(d.type)), p, g, d.sdp});
  }
  void rollback(const std::string& p, std::uint64_t g) override { calls.push_back({"rollback", p, g, {}}); }
  void add_remote_candidate(const std::string& p, std::uint64_t g, const candidate& c) override {
    calls.push_back({"candidate", p, g, c.candidate});
  }
  void send_text(const std::string& p, std::uint64_t g, const std::string& t) override {
    calls.push_back({"send", p, g, t});
  }
  void close_connection(const std::string& p, std::uint64_t g) override {
    calls.push_back({"close", p, g, {}});
  }
  bool supports_ice_restart() const override { return ice_restart; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& c : calls) out.push_back(c.what);
    return out;
  }
  bool has(const std::string& what) const {
    for (auto& c : calls)
      if (c.what == what) return true;
    return false;
  }
  std::size_t count(const std::string& what) const {
    std::size_t n = 0;
    for (auto& c : calls) n += c.what == what;
    return n;
  }
  void clear() { calls.clear(); }
};

struct recorder : negotiation_observer {
  std::vector<std::string> events;
  void on_role(const std::string& p, peer_role r) override {
    events.push_back(p + " role " + std::string(to_string(r)));
  }
  void on_channel_open(const std::string& p) override { events.push_back(p + " open"); }
  void on_channel_message(const std::string& p, const std::string& t) override {
    events.push_back(p + " msg " + t);
  }
  void on_channel_closed(const std::string& p) override { events.push_back(p + " closed"); }
  void on_rollback(const std::string& p) override { events.push_back(p + " rollback"); }
  void on_offer_ignored(const std::string& p) override { events.push_back(p + " ignored"); }
  void on_recovery(const std::string& p, const std::string& how) override {
    events.push_back(p + " recovery " + how);
  }
  void on_error(const std::string& p, const std::string& w) override { events.push_back(p + " error " + w); }
  bool saw(const std::string& e) const {
    for (auto& x : events)
      if (x == e) return true;
    return false;
  }
};

// One side under test: its negotiator, engine, observer and outbox.
struct side {
  fake_engine eng;
  recorder obs;
  std::vector<nlohmann::json> sent;
  std::deque<double> seeds;
  std::set<std::uint64_t> remote_applied;  // connections that got a remote description (back-to-back tests)
  negotiator neg;

  explicit side(std::deque<double> s, negotiation_options o = {"session-me", "rendezvous", false})
      : seeds(std::move(s)),
        neg(
            eng, [this](nlohmann::json m) { sent.push_back(std::move(m)); },
            [this] {
              double v = seeds.empty() ? 0.5 : seeds.front();
              if (!seeds.empty()) seeds.pop_front();
              return v;
            },
            std::move(o), &obs) {}

  std::vector<nlohmann::json> take(const std::string& type) {
    std::vector<nlohmann::json> out, rest;
    for (auto& m : sent) (m["type"] == type ? out : rest).push_back(m);
    sent = rest;
    return out;
  }
  std::uint64_t gen(const std::string& peer = "bob") const { return neg.info(peer)->gen; }
};

relayed_message from(const std::string& peer, nlohmann::json body) {
  body["id"] = peer;
  relayed_message m;
  m.type = body["type"].get<std::string>();
  m.from = peer;
  m.body = std::move(body);
  return m;
}

relayed_message role_from(const std::string& peer, double seed, const std::string& session = "session-bob",
                          std::optional<double> peer_seed = std::nullopt) {
  nlohmann::json j = {{"type", "role"}, {"seed", seed}, {"session", session}};
  if (peer_seed) j["peerSeed"] = *peer_seed;
  return from(peer, j);
}

relayed_message offer_from(const std::string& peer, const std::string& sdp = "v=0 remote-offer") {
  return from(peer, {{"type", "offer"}, {"description", sdp}});
}
relayed_message answer_from(const std::string& peer, const std::string& sdp = "v=0 remote-answer") {
  return from(peer, {{"type", "answer"}, {"description", sdp}});
}
relayed_message candidate_from(const std::string& peer, const std::string& c, const std::string& mid = "0") {
  return from(peer, {{"type", "candidate"}, {"candidate", c}, {"mid", mid}});
}

// Joins `me` with bob already in the room and settles the roles with the
// given seeds. Returns with the engine calls cleared.
void pair_up(side& me, double their_seed) {
  welcome_event w;
  w.id = "me";
  w.room = "r";
  w.peers = {"bob"};
  me.neg.on_welcome(w);
  me.neg.on_signal(role_from("bob", their_seed));
}

}  // namespace

TEST_CASE("roles: each side sends its seed; the higher seed is impolite, the lower polite") {
  side me({0.25});
  welcome_event w;
  w.id = "me";
  w.peers = {"bob"};
  me.neg.on_welcome(w);
  auto roles = me.take("role");
  REQUIRE(roles.size() == 1);
  CHECK(roles[0]["id"] == "bob");
  CHECK(roles[0]["seed"] == 0.25);
  CHECK(roles[0]["session"] == "session-me");
  CHECK(me.neg.info("bob")->role == peer_role::undecided);
  CHECK(me.eng.calls.empty());

  me.neg.on_signal(role_from("bob", 0.75, "session-bob", 0.25));
  CHECK(me.neg.info("bob")->role == peer_role::polite);
  CHECK(me.obs.saw("bob role polite"));
  // It knew our seed (peerSeed): no second role message.
  CHECK(me.take("role").empty());
  // The polite side creates the channel, and so offers first.
  CHECK(me.eng.names() == std::vector<std::string>{"create+channel"});
  me.neg.on_negotiation_needed("bob", me.gen());
  CHECK(me.eng.names() == std::vector<std::string>{"create+channel", "offer"});
  me.neg.on_negotiation_needed("bob", me.gen());  // webrtcbin may say it twice
  CHECK(me.eng.count("offer") == 1);
}

TEST_CASE("roles: the impolite side creates no channel and waits for the offer") {
  side me({0.9});
  pair_up(me, 0.1);
  CHECK(me.neg.info("bob")->role == peer_role::impolite);
  CHECK(me.eng.names() == std::vector<std::string>{"create"});
}

TEST_CASE("roles: a peer that joins later gets our seed; a tie draws again") {
  side me({0.5, 0.125});
  welcome_event w;
  w.id = "me";
  me.neg.on_welcome(w);
  me.neg.on_peer_joined("bob");
  CHECK(me.take("role").size() == 1);
  me.neg.on_signal(role_from("bob", 0.5));  // tie
  CHECK(me.neg.info("bob")->role == peer_role::undecided);
  auto again = me.take("role");
  REQUIRE(again.size() == 1);
  CHECK(again[0]["seed"] == 0.125);
  CHECK(me.eng.calls.empty());
  me.neg.on_signal(role_from("bob", 0.625, "session-bob", 0.125));  // bob drew again too
  CHECK(me.neg.info("bob")->role == peer_role::polite);
  CHECK(me.eng.has("create+channel"));
}

TEST_CASE("roles: a relayed seed that the other side does not know yet is sent again") {
  side me({0.3});
  pair_up(me, 0.6);  // bob's role came without peerSeed: it has not seen ours
  auto roles = me.take("role");
  REQUIRE(roles.size() == 2);  // the first announcement, then the reply
  CHECK(roles[1]["peerSeed"] == 0.6);
  me.neg.on_signal(role_from("bob", 0.6, "session-bob", 0.3));  // a duplicate: nothing changes
  CHECK(me.take("role").empty());
  CHECK(me.neg.info("bob")->connections_made == 1);
}

TEST_CASE("polite offerer: offer, answer, candidates flow; candidates before the answer are buffered") {
  side me({0.2});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.neg.on_negotiation_needed("bob", g);
  me.eng.clear();
  me.neg.on_local_candidate("bob", g, {"a=candidate:early", "0"});  // before our offer is out: held
  CHECK(me.take("candidate").empty());
  me.neg.on_local_description("bob", g, {sdp_type::offer, "v=0 my-offer"});
  auto offers = me.take("offer");
  REQUIRE(offers.size() == 1);
  CHECK(offers[0]["description"] == "v=0 my-offer");
  CHECK(offers[0]["id"] == "bob");
  CHECK(offers[0]["seed"] == 0.2);  // tagged with our pairing
  auto cands = me.take("candidate");
  REQUIRE(cands.size() == 1);
  CHECK(cands[0]["candidate"] == "a=candidate:early");
  CHECK(cands[0]["mid"] == "0");

  me.neg.on_signal(candidate_from("bob", "a=candidate:before-answer"));
  CHECK(me.neg.info("bob")->buffered_remote_candidates == 1);
  CHECK_FALSE(me.eng.has("candidate"));
  me.neg.on_signal(answer_from("bob"));
  CHECK(me.eng.names() == std::vector<std::string>{"remote-answer"});
  me.neg.on_signal(candidate_from("bob", "a=candidate:during-srd"));
  CHECK_FALSE(me.eng.has("candidate"));
  me.neg.on_remote_description_set("bob", g);
  CHECK(me.eng.count("candidate") == 2);
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
  me.neg.on_signal(candidate_from("bob", "a=candidate:late"));
  CHECK(me.eng.count("candidate") == 3);

  me.neg.on_connection_state("bob", g, pc_state::connected);
  me.neg.on_channel_open("bob", g);
  me.neg.on_channel_open("bob", g);  // engines may report it twice
  CHECK(me.obs.events.back() == "bob open");
  CHECK(me.neg.send_text("bob", "hi"));
  CHECK(me.eng.calls.back().what == "send");
  me.neg.on_channel_message("bob", g, "hello");
  CHECK(me.obs.saw("bob msg hello"));
}

TEST_CASE("impolite answerer: applies the offer, answers, buffers early candidates") {
  side me({0.9});
  pair_up(me, 0.1);
  auto g = me.gen();
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  me.neg.on_signal(candidate_from("bob", "a=candidate:1"));
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer"});
  me.neg.on_remote_description_set("bob", g);
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer", "candidate", "answer"});
  me.neg.on_local_candidate("bob", g, {"a=candidate:mine", "0"});
  CHECK(me.take("candidate").empty());  // our answer is not out yet
  me.neg.on_local_description("bob", g, {sdp_type::answer, "v=0 my-answer"});
  CHECK(me.take("answer").size() == 1);
  CHECK(me.take("candidate").size() == 1);
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
}

TEST_CASE(
    "collision BEFORE our offer, polite: their offer comes before negotiation-needed; no offer of ours") {
  side me({0.2});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  CHECK_FALSE(me.neg.info("bob")->ignore_offer);
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer"});
  me.neg.on_negotiation_needed("bob", g);  // our channel wants an offer: queued behind the remote offer
  me.neg.on_remote_description_set("bob", g);
  me.neg.on_local_description("bob", g, {sdp_type::answer, "v=0 my-answer"});
  CHECK(me.take("answer").size() == 1);
  // The answer carried our channel too: no offer, no rollback.
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer", "answer"});
  CHECK(me.neg.info("bob")->rollbacks == 0);
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
  me.neg.on_negotiation_needed("bob", g);
  CHECK_FALSE(me.eng.has("offer"));
}

TEST_CASE("collision BEFORE our offer, impolite: the polite side's offer is answered; we never offer") {
  side me({0.9});
  pair_up(me, 0.1);
  auto g = me.gen();
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  CHECK_FALSE(me.neg.info("bob")->ignore_offer);
  me.neg.on_remote_description_set("bob", g);
  me.neg.on_local_description("bob", g, {sdp_type::answer, "a"});
  me.neg.on_negotiation_needed("bob", g);
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer", "answer"});
  CHECK_FALSE(me.obs.saw("bob ignored"));
}

TEST_CASE("collision DURING our offer, polite: our offer is rolled back and theirs answered") {
  side me({0.2});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.neg.on_negotiation_needed("bob", g);
  me.eng.clear();
  // create_offer issued, not complete: making an offer.
  CHECK(me.neg.info("bob")->making_offer);
  me.neg.on_signal(offer_from("bob"));
  me.neg.on_signal(candidate_from("bob", "a=candidate:theirs"));
  CHECK_FALSE(me.neg.info("bob")->ignore_offer);
  CHECK(me.eng.calls.empty());  // chained behind our offer
  me.neg.on_local_description("bob", g, {sdp_type::offer, "v=0 mine"});
  CHECK(me.take("offer").size() == 1);
  // Now in have-local-offer: the queued remote offer rolls ours back first.
  CHECK(me.eng.names() == std::vector<std::string>{"rollback"});
  CHECK(me.obs.saw("bob rollback"));
  me.neg.on_rolled_back("bob", g);
  CHECK(me.eng.names() == std::vector<std::string>{"rollback", "remote-offer"});
  me.neg.on_remote_description_set("bob", g);
  CHECK(me.eng.names() == std::vector<std::string>{"rollback", "remote-offer", "candidate", "answer"});
  me.neg.on_local_description("bob", g, {sdp_type::answer, "v=0 my-answer"});
  CHECK(me.take("answer").size() == 1);
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
  CHECK(me.neg.info("bob")->rollbacks == 1);
  CHECK(me.neg.info("bob")->connections_made == 1);  // the same connection: rolled back, not replaced
}

TEST_CASE("collision DURING our offer, impolite (forced glare): their offer and its candidates are ignored") {
  side me({0.9}, {"s", "rendezvous", /*force_glare=*/true});
  pair_up(me, 0.1);
  auto g = me.gen();
  CHECK(me.eng.names() == std::vector<std::string>{"create+channel", "offer"});
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  CHECK(me.neg.info("bob")->ignore_offer);
  CHECK(me.obs.saw("bob ignored"));
  me.neg.on_signal(candidate_from("bob", "a=candidate:of-ignored-offer"));
  CHECK(me.eng.calls.empty());
  CHECK(me.neg.info("bob")->buffered_remote_candidates == 0);
  // No error for the dropped candidates.
  for (auto& e : me.obs.events) CHECK(e.find("error") == std::string::npos);
  me.neg.on_local_description("bob", g, {sdp_type::offer, "v=0 mine"});
  me.neg.on_signal(answer_from("bob"));  // bob (polite) rolled back and answered ours
  CHECK_FALSE(me.neg.info("bob")->ignore_offer);
  me.neg.on_signal(candidate_from("bob", "a=candidate:of-answer"));
  me.neg.on_remote_description_set("bob", g);
  CHECK(me.eng.names() == std::vector<std::string>{"remote-answer", "candidate"});
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
}

TEST_CASE("collision AFTER our offer went out (have-local-offer), polite: rollback then answer") {
  side me({0.2});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.neg.on_negotiation_needed("bob", g);
  me.neg.on_local_description("bob", g, {sdp_type::offer, "v=0 mine"});
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::have_local_offer);
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  CHECK(me.eng.names() == std::vector<std::string>{"rollback"});
  me.neg.on_rolled_back("bob", g);
  me.neg.on_remote_description_set("bob", g);
  me.neg.on_local_description("bob", g, {sdp_type::answer, "v=0 a"});
  CHECK(me.neg.info("bob")->signaling == negotiator::phase::stable);
  // Bob had ignored our offer, so the answer it never sends does not matter;
  // a stale answer would be dropped without harm:
  me.neg.on_signal(answer_from("bob"));
  CHECK(me.obs.saw("bob error answer without an offer of ours: ignored"));
}

TEST_CASE("collision AFTER our offer went out, impolite: their offer ignored, our offer answered") {
  side me({0.9}, {"s", "rendezvous", true});
  pair_up(me, 0.1);
  auto g = me.gen();
  me.neg.on_local_description("bob", g, {sdp_type::offer, "v=0 mine"});
  me.eng.clear();
  me.neg.on_signal(offer_from("bob"));
  CHECK(me.eng.calls.empty());
  CHECK(me.neg.info("bob")->ignore_offer);
  me.neg.on_signal(answer_from("bob"));
  CHECK(me.eng.names() == std::vector<std::string>{"remote-answer"});
}

TEST_CASE("stale messages of an earlier pairing (tagged with an old seed) are dropped") {
  side me({0.9});
  pair_up(me, 0.1);
  me.eng.clear();
  auto stale = offer_from("bob");
  stale.body["seed"] = 0.05;
  me.neg.on_signal(stale);
  CHECK(me.eng.calls.empty());
  auto current = offer_from("bob");
  current.body["seed"] = 0.1;
  me.neg.on_signal(current);
  CHECK(me.eng.names() == std::vector<std::string>{"remote-offer"});
}

TEST_CASE("restart: a failed connection is renegotiated on a fresh connection through role messages") {
  side me({0.2, 0.7});
  pair_up(me, 0.8);
  auto g1 = me.gen();
  me.neg.on_negotiation_needed("bob", g1);
  me.neg.on_local_description("bob", g1, {sdp_type::offer, "o"});
  me.neg.on_signal(answer_from("bob"));
  me.neg.on_remote_description_set("bob", g1);
  me.neg.on_connection_state("bob", g1, pc_state::connected);
  me.neg.on_channel_open("bob", g1);
  me.take("role");
  me.eng.clear();

  me.neg.on_connection_state("bob", g1, pc_state::failed);
  CHECK(me.obs.saw("bob recovery renegotiate"));
  CHECK(me.obs.saw("bob closed"));
  auto roles = me.take("role");
  REQUIRE(roles.size() == 1);
  CHECK(roles[0]["seed"] == 0.7);  // a new draw tells bob "new pairing"
  CHECK(roles[0]["peerSeed"] == 0.8);
  // 0.7 < 0.8: still polite; a fresh connection, which offers.
  auto g2 = me.gen();
  CHECK(g2 != g1);
  me.neg.on_negotiation_needed("bob", g2);
  CHECK(me.eng.names() == std::vector<std::string>{"close", "create+channel", "offer"});
  // Events of the old connection are ignored.
  me.neg.on_channel_message("bob", g1, "late");
  CHECK_FALSE(me.obs.saw("bob msg late"));
}

TEST_CASE("restart: the other side's new seed makes us replace our connection too, without a reply loop") {
  side me({0.9});
  pair_up(me, 0.1);  // impolite
  auto g1 = me.gen();
  me.take("role");
  me.eng.clear();
  me.neg.on_signal(role_from("bob", 0.95, "session-bob", 0.9));  // bob renegotiates; now bob is impolite
  CHECK(me.neg.info("bob")->role == peer_role::polite);
  CHECK(me.eng.names() == std::vector<std::string>{"close", "create+channel"});
  CHECK(me.gen() != g1);
  CHECK(me.take("role").empty());  // bob knows our seed: no reply needed
}

TEST_CASE("restart: an ICE restart is tried first when both sides support it") {
  side me({0.2});
  me.eng.ice_restart = true;
  welcome_event w;
  w.id = "me";
  w.peers = {"bob"};
  me.neg.on_welcome(w);
  auto r = role_from("bob", 0.8, "session-bob", 0.2);
  r.body["iceRestart"] = true;
  me.neg.on_signal(r);
  auto g = me.gen();
  me.neg.on_negotiation_needed("bob", g);
  me.neg.on_local_description("bob", g, {sdp_type::offer, "o"});
  me.neg.on_signal(answer_from("bob"));
  me.neg.on_remote_description_set("bob", g);
  me.neg.on_connection_state("bob", g, pc_state::connected);
  me.neg.on_channel_open("bob", g);
  me.eng.clear();
  me.neg.on_connection_state("bob", g, pc_state::failed);
  CHECK(me.obs.saw("bob recovery ice-restart"));
  REQUIRE(me.eng.calls.size() == 1);
  CHECK(me.eng.calls[0].what == "offer");
  CHECK(me.eng.calls[0].arg == "ice-restart");
  CHECK(me.gen() == g);  // the same connection
}

TEST_CASE("restart: no ICE restart when the other side cannot apply one (libdatachannel)") {
  side me({0.2, 0.3});
  me.eng.ice_restart = true;
  pair_up(me, 0.8);  // bob's role has no iceRestart
  auto g = me.gen();
  me.neg.on_connection_state("bob", g, pc_state::connected);
  me.neg.on_connection_state("bob", g, pc_state::failed);
  CHECK(me.obs.saw("bob recovery renegotiate"));
  CHECK(me.gen() != g);
}

TEST_CASE("partner replaced: a role from another session draws again and starts over") {
  side me({0.2, 0.6});
  pair_up(me, 0.8);
  auto g1 = me.gen();
  me.take("role");
  me.eng.clear();
  me.neg.on_signal(role_from("bob", 0.4, "session-bob-2"));
  CHECK(me.eng.calls.front().what == "close");
  auto roles = me.take("role");
  REQUIRE(roles.size() == 1);
  CHECK(roles[0]["seed"] == 0.6);
  CHECK(me.neg.info("bob")->role == peer_role::impolite);  // 0.6 > 0.4
  CHECK(me.gen() != g1);
}

TEST_CASE("server restart: a peer-joined for a partner whose channel works keeps the connection") {
  side me({0.2});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.neg.on_channel_open("bob", g);
  me.take("role");
  me.eng.clear();
  welcome_event w;  // fresh welcome from a restarted server: bob not back yet
  w.id = "me";
  me.neg.on_welcome(w);
  me.neg.on_peer_joined("bob");
  CHECK(me.eng.calls.empty());
  CHECK(me.take("role").empty());
  CHECK(me.gen() == g);
  CHECK(me.neg.send_text("bob", "still here"));
}

TEST_CASE("server restart: a partner without a working connection is paired again") {
  side me({0.2, 0.3});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.take("role");
  me.neg.on_peer_joined("bob");
  CHECK(me.neg.info("bob")->role == peer_role::undecided);
  CHECK(me.take("role").size() == 1);
  CHECK(me.gen() == 0);
  CHECK(me.eng.has("close"));
  (void)g;
}

TEST_CASE("bye, peer-left and peer-not-found end the pairing") {
  side me({0.2});
  pair_up(me, 0.8);
  me.neg.on_signal(from("bob", {{"type", "bye"}}));
  CHECK_FALSE(me.neg.info("bob"));
  CHECK(me.eng.has("close"));

  side other({0.2});
  pair_up(other, 0.8);
  other.neg.on_peer_left("bob");
  CHECK_FALSE(other.neg.info("bob"));

  side third({0.2});
  pair_up(third, 0.8);
  error_event e;
  e.code = "peer-not-found";
  e.id = "bob";
  third.neg.on_signal_error(e);
  CHECK_FALSE(third.neg.info("bob"));
}

TEST_CASE("offers and candidates from a peer without a role are dropped; unknown types are not ours") {
  side me({0.2});
  welcome_event w;
  w.id = "me";
  me.neg.on_welcome(w);
  CHECK(me.neg.on_signal(offer_from("carol")));
  CHECK(me.eng.calls.empty());
  CHECK_FALSE(me.neg.on_signal(from("carol", {{"type", "chat"}, {"text", "hi"}})));
}

TEST_CASE("an engine that keeps failing is given up on after a few recoveries") {
  side me({0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26});
  pair_up(me, 0.8);
  for (int i = 0; i < 6; ++i) me.neg.on_engine_error("bob", me.gen(), "boom");
  bool gave_up = false;
  for (auto& e : me.obs.events) gave_up |= e.find("giving up") != std::string::npos;
  CHECK(gave_up);
  CHECK(me.gen() == 0);
}

TEST_CASE("two negotiators wired back to back connect with opposite roles") {
  // Both sides scripted together: every message is delivered, every engine
  // call completes at once, in order.
  side a({0.3}), b({0.7});
  welcome_event wa;
  wa.id = "me";
  a.neg.on_welcome(wa);
  // Rename for b: it sees "me" as "bob"'s counterpart; keep ids simple by
  // routing: a's peer is "bob", b's peer is "bob" too (symmetry of the fake).
  welcome_event wb;
  wb.id = "me";
  wb.peers = {"bob"};
  b.neg.on_welcome(wb);
  a.neg.on_peer_joined("bob");
  auto pump = [](side& src, side& dst) {
    auto msgs = std::exchange(src.sent, {});
    for (auto& m : msgs) {
      dst.neg.on_signal(from("bob", m));
    }
    return !msgs.empty();
  };
  auto complete = [](side& s) {
    bool any = false;
    auto calls = std::exchange(s.eng.calls, {});
    for (auto& c : calls) {
      any = true;
      if (c.what == "create+channel") s.neg.on_negotiation_needed(c.peer, c.gen);
      if (c.what == "offer") s.neg.on_local_description(c.peer, c.gen, {sdp_type::offer, "o"});
      if (c.what == "answer") s.neg.on_local_description(c.peer, c.gen, {sdp_type::answer, "a"});
      if (c.what.starts_with("remote-")) s.neg.on_remote_description_set(c.peer, c.gen);
      if (c.what == "rollback") s.neg.on_rolled_back(c.peer, c.gen);
    }
    return any;
  };
  for (int i = 0; i < 20; ++i) {
    bool any = pump(a, b) | pump(b, a) | complete(a) | complete(b);
    if (!any) break;
  }
  CHECK(a.neg.info("bob")->role == peer_role::polite);
  CHECK(b.neg.info("bob")->role == peer_role::impolite);
  CHECK(a.neg.info("bob")->signaling == negotiator::phase::stable);
  CHECK(b.neg.info("bob")->signaling == negotiator::phase::stable);
  CHECK(a.neg.info("bob")->connections_made == 1);
  CHECK(b.neg.info("bob")->connections_made == 1);
}

namespace {

// Two negotiators back to back ("a" and "b"): every message is delivered in
// order, every engine call completes, and a connection whose two ends are
// both negotiated "connects" (connected + channel open on both sides).
struct world {
  side a, b;
  world(std::deque<double> sa, std::deque<double> sb, bool glare = false)
      : a(std::move(sa), {"session-a", "rendezvous", glare}),
        b(std::move(sb), {"session-b", "rendezvous", glare}) {}

  static bool deliver(side& src, const std::string& src_id, side& dst) {
    auto msgs = std::exchange(src.sent, {});
    for (auto& m : msgs) dst.neg.on_signal(from(src_id, m));
    return !msgs.empty();
  }
  static bool complete(side& s) {
    auto calls = std::exchange(s.eng.calls, {});
    for (auto& c : calls) {
      if (c.what == "create+channel") s.neg.on_negotiation_needed(c.peer, c.gen);
      if (c.what == "offer") s.neg.on_local_description(c.peer, c.gen, {sdp_type::offer, "o"});
      if (c.what == "answer") s.neg.on_local_description(c.peer, c.gen, {sdp_type::answer, "a"});
      if (c.what.starts_with("remote-")) {
        s.remote_applied.insert(c.gen);
        s.neg.on_remote_description_set(c.peer, c.gen);
      }
      if (c.what == "rollback") s.neg.on_rolled_back(c.peer, c.gen);
    }
    return !calls.empty();
  }
  void connect_if_ready() {
    auto ia = a.neg.info("b"), ib = b.neg.info("a");
    if (!ia || !ib || ia->gen == 0 || ib->gen == 0 || ia->channel_open) return;
    if (ia->signaling != negotiator::phase::stable || ib->signaling != negotiator::phase::stable) return;
    if (ia->making_offer || ib->making_offer || ia->role == ib->role) return;
    // Really negotiated: each end applied the other's description.
    if (!a.remote_applied.count(ia->gen) || !b.remote_applied.count(ib->gen)) return;
    a.neg.on_connection_state("b", ia->gen, pc_state::connected);
    b.neg.on_connection_state("a", ib->gen, pc_state::connected);
    a.neg.on_channel_open("b", ia->gen);
    b.neg.on_channel_open("a", ib->gen);
  }
  void run() {
    for (int i = 0; i < 100; ++i) {
      bool any = deliver(a, "a", b) | deliver(b, "b", a) | complete(a) | complete(b);
      if (!any) {
        connect_if_ready();
        if (!(deliver(a, "a", b) | deliver(b, "b", a) | complete(a) | complete(b))) return;
      }
    }
    FAIL("did not settle");
  }
  void join() {
    welcome_event wa;
    wa.id = "a";
    a.neg.on_welcome(wa);
    welcome_event wb;
    wb.id = "b";
    wb.peers = {"a"};
    b.neg.on_welcome(wb);
    a.neg.on_peer_joined("b");
  }
};

}  // namespace

TEST_CASE("back to back: opposite roles, one connection each, channel open both ways") {
  world w({0.3}, {0.7});
  w.join();
  w.run();
  auto ia = w.a.neg.info("b"), ib = w.b.neg.info("a");
  CHECK(ia->role == peer_role::polite);
  CHECK(ib->role == peer_role::impolite);
  CHECK(ia->channel_open);
  CHECK(ib->channel_open);
  CHECK(ia->connections_made == 1);
  CHECK(ib->connections_made == 1);
  CHECK(ia->rollbacks + ib->rollbacks == 0);
}

TEST_CASE("back to back, forced glare: both offer, the polite side rolls back once, one connection each") {
  world w({0.3}, {0.7}, /*glare=*/true);
  w.join();
  w.run();
  auto ia = w.a.neg.info("b"), ib = w.b.neg.info("a");
  CHECK(ia->channel_open);
  CHECK(ib->channel_open);
  CHECK(ia->rollbacks == 1);  // a is polite
  CHECK(ib->rollbacks == 0);
  CHECK(w.b.obs.saw("a ignored"));
  CHECK(ia->connections_made == 1);
  CHECK(ib->connections_made == 1);
}

TEST_CASE("back to back, tie: both draw again and still end with opposite roles") {
  world w({0.5, 0.2}, {0.5, 0.9});
  w.join();
  w.run();
  CHECK(w.a.neg.info("b")->role == peer_role::polite);
  CHECK(w.b.neg.info("a")->role == peer_role::impolite);
  CHECK(w.a.neg.info("b")->channel_open);
}

TEST_CASE("back to back, restart: a failure on one side renegotiates fresh connections on both") {
  world w({0.3, 0.8}, {0.7});
  w.join();
  w.run();
  auto g_a = w.a.neg.info("b")->gen, g_b = w.b.neg.info("a")->gen;
  w.a.neg.on_connection_state("b", g_a, pc_state::failed);
  w.run();
  auto ia = w.a.neg.info("b"), ib = w.b.neg.info("a");
  CHECK(ia->gen != g_a);
  CHECK(ib->gen != g_b);
  CHECK(ia->channel_open);
  CHECK(ib->channel_open);
  CHECK(ia->role == peer_role::impolite);  // a drew 0.8 > 0.7: the roles swapped
  CHECK(ib->role == peer_role::polite);
  CHECK(ia->connections_made == 2);
  CHECK(ib->connections_made == 2);
  CHECK(w.a.obs.saw("b recovery renegotiate"));
}

TEST_CASE("a closed channel is not renegotiated by itself; recover_peer() does it if the partner stayed") {
  side me({0.2, 0.4});
  pair_up(me, 0.8);
  auto g = me.gen();
  me.neg.on_channel_open("bob", g);
  me.take("role");
  me.eng.clear();
  me.neg.on_channel_closed("bob", g);
  CHECK(me.obs.saw("bob closed"));
  CHECK(me.eng.calls.empty());
  CHECK(me.take("role").empty());
  CHECK(me.neg.recover_peer("bob"));
  CHECK(me.obs.saw("bob recovery renegotiate"));
  CHECK(me.take("role").size() == 1);
  CHECK(me.gen() != g);
  // Nothing to recover for a peer that said bye meanwhile, or one we do not know.
  me.neg.on_signal(from("bob", {{"type", "bye"}}));
  CHECK_FALSE(me.neg.recover_peer("bob"));
  CHECK_FALSE(me.neg.recover_peer("nobody"));
}
