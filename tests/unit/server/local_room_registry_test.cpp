// local_room_registry through the room_registry interface (join, leave,
// deliver, broadcast, hold_late, close_joins), with fake peer links that
// record what reaches them and a real io_context for the reconnect-grace
// timers: welcome peer lists, generated ids, peer-joined / peer-left notices,
// the four leave kinds, resume and its epochs, held messages and their
// bounds, grace expiry, hold_late, id-taken / room-full / max_rooms, the
// lobby, deliver's not-found cases, broadcast counts and close_joins.
//
// The registry is only built in `fixture` and only used through
// room_registry, so an internal restructuring needs one place adapted here.
// Timers only fire while a test runs the io_context, so "still held" is
// checked without running it; expiry is awaited with run_for and a deadline.
#include "local_room_registry.hpp"

#include "metrics.hpp"
#include "room_registry.hpp"

#include <rendezvous/protocol/errors.hpp>
#include <rendezvous/protocol/frame.hpp>
#include <rendezvous/protocol/result.hpp>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace doctest {
// Readable failure messages for the lists of recorded messages.
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return String((out + "]").c_str());
  }
};
}  // namespace doctest

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;
using rendezvous::protocol::error_code;
using rendezvous::protocol::leave_reason;
using rendezvous::protocol::peer_mode;
using rendezvous::protocol::result;
using rendezvous::server::deliver_status;
using rendezvous::server::drop_reason;
using rendezvous::server::join_granted;
using rendezvous::server::join_request;
using rendezvous::server::leave_kind;
using rendezvous::server::local_room_registry;
using rendezvous::server::metrics;
using rendezvous::server::peer_link;
using rendezvous::server::peer_ref;
using rendezvous::server::registry_limits;
using rendezvous::server::room_registry;
using rendezvous::server::shared_message;

// Records every message handed to it and every replaced() call; callable
// from any thread.
class fake_link final : public peer_link {
 public:
  void deliver(shared_message msg) override {
    std::lock_guard lock(mu_);
    got_.push_back(msg ? *msg : std::string("<null>"));
  }
  void replaced() override { replaced_.fetch_add(1); }

  // What arrived since the last take(), in order.
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(got_, {});
  }
  std::vector<std::string> received() const {
    std::lock_guard lock(mu_);
    return got_;
  }
  int replaced_count() const { return replaced_.load(); }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> got_;
  std::atomic<int> replaced_{0};
};

std::shared_ptr<fake_link> link() { return std::make_shared<fake_link>(); }
shared_message msg(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

std::vector<std::string> texts(const std::deque<shared_message>& held) {
  std::vector<std::string> out;
  for (const auto& m : held) out.push_back(m ? *m : std::string("<null>"));
  return out;
}
std::deque<shared_message> messages(std::initializer_list<const char*> list) {
  std::deque<shared_message> out;
  for (const char* s : list) out.push_back(msg(s));
  return out;
}

// Notices as the protocol defines them; compared as parsed JSON, so member
// order and spacing do not matter but every member and value does.
json peer_joined(const std::string& id) { return {{"type", "peer-joined"}, {"id", id}}; }
json peer_left(const std::string& id, const std::string& reason) {
  return {{"type", "peer-left"}, {"id", id}, {"reason", reason}};
}
json parsed(const std::vector<std::string>& got) {
  json out = json::array();
  for (const auto& text : got) out.push_back(json::parse(text));
  return out;
}

bool lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

registry_limits test_limits() {
  registry_limits l;
  l.max_peers_per_room = 8;
  l.max_rooms = 16;
  l.reconnect_grace = 50ms;
  l.held_max_messages = 64;
  l.held_max_bytes = 64 * 1024;
  return l;
}

// The one place the registry is made. Members are destroyed in reverse:
// the registry first, then the io_context (dropping unfired timers unrun).
struct fixture {
  net::io_context ioc;
  metrics stats;
  registry_limits limits;
  std::unique_ptr<room_registry> registry;

  explicit fixture(registry_limits l = test_limits())
      : limits(l), registry(std::make_unique<local_room_registry>(ioc.get_executor(), limits, stats)) {}

  room_registry& reg() { return *registry; }

  result<join_granted> try_join(const std::string& room, std::optional<std::string> id,
                                const std::shared_ptr<fake_link>& l,
                                std::optional<std::string> resume_token = std::nullopt) {
    join_request r;
    r.mode = peer_mode::room;
    r.room = room;
    r.id = std::move(id);
    r.resume_token = std::move(resume_token);
    r.link = l;
    return registry->join(std::move(r));
  }
  // Joins, or fails the test.
  join_granted join(const std::string& room, std::optional<std::string> id,
                    const std::shared_ptr<fake_link>& l,
                    std::optional<std::string> resume_token = std::nullopt) {
    auto r = try_join(room, std::move(id), l, std::move(resume_token));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
  }
  // Resumes `was` (same room, id and its last token) on a new link.
  join_granted resume(const join_granted& was, const std::shared_ptr<fake_link>& l) {
    return join(was.self.room, was.self.id, l, was.resume_token);
  }
  result<join_granted> try_join_lobby(const std::string& id, const std::shared_ptr<fake_link>& l) {
    join_request r;
    r.mode = peer_mode::lobby;
    r.id = id;
    r.link = l;
    return registry->join(std::move(r));
  }
  join_granted join_lobby(const std::string& id, const std::shared_ptr<fake_link>& l) {
    auto r = try_join_lobby(id, l);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
    return std::move(r.value());
  }

  // Runs the io_context until no timer is left, or `limit`; true if none is left.
  bool run_timers(std::chrono::milliseconds limit = 5000ms) {
    ioc.restart();
    ioc.run_for(limit);
    return ioc.stopped();
  }
  // Runs exactly one ready handler (waiting at most `limit`); true if one ran.
  bool run_one_timer(std::chrono::milliseconds limit = 5000ms) {
    ioc.restart();
    return ioc.run_one_for(limit) == 1;
  }

  double dropped(drop_reason r) { return stats.dropped(r).Value(); }
  double leaves(leave_reason r) { return stats.leave(r).Value(); }
};

registry_limits with(auto change) {
  auto l = test_limits();
  change(l);
  return l;
}

}  // namespace

TEST_SUITE("local_room_registry") {
  TEST_CASE("the first peer of a room: no peers, the id it asked for, a resume token") {
    fixture f;
    auto a = link();
    auto alice = f.join("demo", "alice", a);
    CHECK(alice.self.mode == peer_mode::room);
    CHECK(alice.self.room == "demo");
    CHECK(alice.self.id == "alice");
    CHECK(alice.peers.empty());
    CHECK_FALSE(alice.resumed);
    CHECK(alice.held.empty());
    CHECK(alice.resume_token.size() == 32);
    CHECK(lower_hex(alice.resume_token));
    CHECK(a->received().empty());
    CHECK(f.stats.joins.Value() == 1);
    CHECK(f.stats.resumes.Value() == 0);
    CHECK(f.stats.rooms.Value() == 1);
  }

  TEST_CASE("a join without an id gets 12 lower-case hex characters, different per peer") {
    fixture f;
    auto a = link(), b = link(), c = link();
    auto first = f.join("demo", std::nullopt, a);
    auto second = f.join("demo", std::nullopt, b);
    for (const auto& g : {first, second}) {
      CHECK(g.self.id.size() == 12);
      CHECK(lower_hex(g.self.id));
    }
    CHECK(first.self.id != second.self.id);
    CHECK(first.resume_token != second.resume_token);
    CHECK(first.self.epoch != second.self.epoch);
    // A generated id is a member like any other: the others see it and can reach it.
    CHECK(second.peers == std::vector<std::string>{first.self.id});
    CHECK(parsed(a->take()) == json::array({peer_joined(second.self.id)}));
    CHECK(f.reg().deliver(second.self, first.self.id, msg("hi")) == deliver_status::delivered);
    CHECK(a->take() == std::vector<std::string>{"hi"});
    // A generated id in another room is independent.
    auto other = f.join("elsewhere", std::nullopt, c);
    CHECK(other.peers.empty());
  }

  TEST_CASE("welcome peers: the others, oldest first, held peers included, not the joiner") {
    fixture f;
    auto a = link(), b = link(), c = link(), b2 = link(), d = link(), e = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    CHECK(bob.peers == std::vector<std::string>{"alice"});
    auto carol = f.join("demo", "carol", c);
    CHECK(carol.peers == std::vector<std::string>{"alice", "bob"});
    // bob leaves and comes back fresh: now he is the newest.
    f.reg().leave(bob.self, leave_kind::closed);
    auto bob2 = f.join("demo", "bob", b2);
    CHECK(bob2.peers == std::vector<std::string>{"alice", "carol"});
    // A held peer is still listed, in its place.
    f.reg().leave(alice.self, leave_kind::dropped);
    auto dave = f.join("demo", "dave", d);
    CHECK(dave.peers == std::vector<std::string>{"alice", "carol", "bob"});
    // Other rooms do not show.
    auto erin = f.join("other", "erin", e);
    CHECK(erin.peers.empty());
  }

  TEST_CASE("peer-joined goes to every other member, not to the joiner, not to other rooms") {
    fixture f;
    auto a = link(), b = link(), c = link(), x = link();
    f.join("demo", "alice", a);
    f.join("other", "xavier", x);
    f.join("demo", "bob", b);
    CHECK(parsed(a->take()) == json::array({peer_joined("bob")}));
    CHECK(b->received().empty());
    f.join("demo", "carol", c);
    CHECK(parsed(a->take()) == json::array({peer_joined("carol")}));
    CHECK(parsed(b->take()) == json::array({peer_joined("carol")}));
    CHECK(c->received().empty());
    CHECK(x->received().empty());
  }

  TEST_CASE("leave closed: peer-left closed to the others at once, and the id is free again") {
    fixture f;
    auto a = link(), b = link(), c = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    f.join("demo", "bob", b);
    f.join("demo", "carol", c);
    a->take();
    b->take();
    f.reg().leave(alice.self, leave_kind::closed);
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "closed")}));
    CHECK(parsed(c->take()) == json::array({peer_left("alice", "closed")}));
    CHECK(a->received().empty());
    CHECK(f.leaves(leave_reason::closed) == 1);
    CHECK(f.leaves(leave_reason::kicked) == 0);
    // Gone for good: a fresh join of the same id is not a resume.
    auto again = f.join("demo", "alice", a2);
    CHECK_FALSE(again.resumed);
    CHECK(again.peers == std::vector<std::string>{"bob", "carol"});
    CHECK(parsed(b->take()) == json::array({peer_joined("alice")}));
  }

  TEST_CASE("leave kicked: peer-left kicked to the others at once") {
    fixture f;
    auto a = link(), b = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    f.reg().leave(alice.self, leave_kind::kicked);
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "kicked")}));
    CHECK(f.leaves(leave_reason::kicked) == 1);
    CHECK(f.leaves(leave_reason::closed) == 0);
    CHECK(f.reg().deliver(bob.self, "alice", msg("x")) == deliver_status::not_found);
  }

  TEST_CASE("leave silent: the member is gone and nobody is told") {
    fixture f;
    auto a = link(), b = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    a->take();
    f.reg().leave(alice.self, leave_kind::silent);
    CHECK(b->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("x")) == deliver_status::not_found);
    CHECK(f.run_timers());  // no grace timer either: nothing comes later
    CHECK(b->received().empty());
  }

  TEST_CASE("leave dropped: the place is held silently; after the grace, peer-left timeout") {
    fixture f;
    auto a = link(), b = link(), c = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    a->take();
    const auto dropped_at = std::chrono::steady_clock::now();
    f.reg().leave(alice.self, leave_kind::dropped);
    // Held (no timer can fire while the io_context is not run): nothing said,
    // messages are held, the id is listed and taken.
    CHECK(b->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("m1")) == deliver_status::held);
    CHECK(f.reg().deliver(bob.self, "alice", msg("m2")) == deliver_status::held);
    CHECK(a->received().empty());
    auto carol = f.join("demo", "carol", c);
    CHECK(carol.peers == std::vector<std::string>{"alice", "bob"});
    CHECK(f.try_join("demo", "alice", a2).error().code == error_code::id_taken);
    CHECK(f.leaves(leave_reason::timeout) == 0);
    b->take();

    REQUIRE(f.run_timers());
    CHECK(std::chrono::steady_clock::now() - dropped_at >= f.limits.reconnect_grace);
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "timeout")}));
    CHECK(parsed(c->take()) == json::array({peer_left("alice", "timeout")}));
    CHECK(f.leaves(leave_reason::timeout) == 1);
    // What was held died with the place: m1, m2 and carol's peer-joined.
    CHECK(f.dropped(drop_reason::closed) == 3);
    CHECK(f.reg().deliver(bob.self, "alice", msg("late")) == deliver_status::not_found);
    // The old token is worthless now: a fresh join, not a resume.
    auto fresh = f.join("demo", "alice", a2, alice.resume_token);
    CHECK_FALSE(fresh.resumed);
    CHECK(fresh.held.empty());
    CHECK(parsed(b->take()) == json::array({peer_joined("alice")}));
  }

  TEST_CASE("leave dropped with a grace of 0: peer-left timeout at once, nothing held") {
    fixture f(with([](registry_limits& l) { l.reconnect_grace = 0ms; }));
    auto a = link(), b = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    f.reg().leave(alice.self, leave_kind::dropped, messages({"unsent"}));
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "timeout")}));
    CHECK(f.leaves(leave_reason::timeout) == 1);
    CHECK(f.reg().deliver(bob.self, "alice", msg("x")) == deliver_status::not_found);
    CHECK_FALSE(f.join("demo", "alice", link(), alice.resume_token).resumed);
  }

  TEST_CASE("the last member leaving removes the room") {
    fixture f;
    auto alice = f.join("demo", "alice", link());
    auto bob = f.join("demo", "bob", link());
    CHECK(f.stats.rooms.Value() == 1);
    f.reg().leave(alice.self, leave_kind::closed);
    CHECK(f.stats.rooms.Value() == 1);
    f.reg().leave(bob.self, leave_kind::dropped);  // held: the room lives on
    CHECK(f.stats.rooms.Value() == 1);
    REQUIRE(f.run_timers());
    CHECK(f.stats.rooms.Value() == 0);
  }

  TEST_CASE("resume of a held place: resumed, a new token and epoch, held messages oldest first") {
    fixture f;
    auto a = link(), b = link(), c = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    f.join("demo", "carol", c);
    a->take();
    b->take();
    c->take();
    // What alice's connection had queued but not written comes first.
    f.reg().leave(alice.self, leave_kind::dropped, messages({"u1", "u2"}));
    CHECK(f.reg().deliver(bob.self, "alice", msg("m3")) == deliver_status::held);
    f.reg().hold_late(alice.self, msg("m4"));
    CHECK(f.reg().broadcast(bob.self, msg("m5")) == 2);
    c->take();

    auto back = f.resume(alice, a2);
    CHECK(back.resumed);
    CHECK(back.self.id == "alice");
    CHECK(back.self.room == "demo");
    CHECK(back.self.epoch != alice.self.epoch);
    CHECK(back.resume_token != alice.resume_token);
    CHECK(back.resume_token.size() == 32);
    CHECK(back.peers == std::vector<std::string>{"bob", "carol"});
    CHECK(texts(back.held) == std::vector<std::string>{"u1", "u2", "m3", "m4", "m5"});
    // Nobody else sees anything; the resumed link gets later messages directly.
    CHECK(b->received().empty());
    CHECK(c->received().empty());
    CHECK(a->received().empty());
    CHECK(a2->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("m6")) == deliver_status::delivered);
    CHECK(a2->take() == std::vector<std::string>{"m6"});
    CHECK(f.stats.resumes.Value() == 1);
    CHECK(f.stats.joins.Value() == 3);
    // The grace timer still fires, but finds a resumed member: no peer-left.
    REQUIRE(f.run_timers());
    CHECK(b->received().empty());
    CHECK(f.leaves(leave_reason::timeout) == 0);
    CHECK(f.reg().deliver(bob.self, "alice", msg("m7")) == deliver_status::delivered);
    CHECK(a2->take() == std::vector<std::string>{"m7"});
  }

  TEST_CASE("resume of a connected place (half-open): the old link is replaced, the new one takes over") {
    fixture f;
    auto a = link(), b = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    a->take();
    auto back = f.resume(alice, a2);
    CHECK(back.resumed);
    CHECK(back.held.empty());
    CHECK(back.peers == std::vector<std::string>{"bob"});
    CHECK(a->replaced_count() == 1);
    CHECK(a2->replaced_count() == 0);
    CHECK(b->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("to new")) == deliver_status::delivered);
    CHECK(a2->take() == std::vector<std::string>{"to new"});
    CHECK(a->received().empty());
    // Resuming a held place calls replaced() on nobody.
    f.reg().leave(back.self, leave_kind::dropped);
    auto a3 = link();
    f.resume(back, a3);
    CHECK(a2->replaced_count() == 0);
    CHECK(a3->replaced_count() == 0);
  }

  TEST_CASE("a resume token works once; a wrong, missing or used one is id-taken while the id is there") {
    fixture f;
    auto a = link();
    auto alice = f.join("demo", "alice", a);
    CHECK(f.try_join("demo", "alice", link()).error().code == error_code::id_taken);
    CHECK(f.try_join("demo", "alice", link(), std::string(32, '0')).error().code == error_code::id_taken);
    CHECK(f.try_join("demo", "alice", link(), std::string()).error().code == error_code::id_taken);
    auto back = f.resume(alice, link());
    CHECK(f.try_join("demo", "alice", link(), alice.resume_token).error().code == error_code::id_taken);
    // Held, too.
    f.reg().leave(back.self, leave_kind::dropped);
    CHECK(f.try_join("demo", "alice", link()).error().code == error_code::id_taken);
    CHECK(f.try_join("demo", "alice", link(), alice.resume_token).error().code == error_code::id_taken);
    // A token belongs to its room.
    CHECK_FALSE(f.join("other", "alice", link(), back.resume_token).resumed);
    CHECK(f.resume(back, link()).resumed);
    CHECK(a->replaced_count() == 1);
  }

  TEST_CASE("calls on behalf of a replaced connection are ignored; its unsent messages go to the new one") {
    fixture f;
    auto a = link(), b = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    a->take();
    auto back = f.resume(alice, a2);
    REQUIRE(a->replaced_count() == 1);
    // The old connection reacts to replaced() by leaving with its own epoch.
    f.reg().leave(alice.self, leave_kind::dropped, messages({"u1", "u2"}));
    CHECK(a2->take() == std::vector<std::string>{"u1", "u2"});
    CHECK(b->received().empty());
    // Old-epoch leaves of every kind change nothing.
    f.reg().leave(alice.self, leave_kind::closed);
    f.reg().leave(alice.self, leave_kind::kicked);
    f.reg().leave(alice.self, leave_kind::silent);
    CHECK(b->received().empty());
    CHECK(f.leaves(leave_reason::closed) + f.leaves(leave_reason::kicked) + f.leaves(leave_reason::timeout) ==
          0);
    // Old-epoch sends are refused.
    CHECK(f.reg().deliver(alice.self, "bob", msg("stale")) == deliver_status::not_found);
    CHECK(f.reg().broadcast(alice.self, msg("stale")) == 0);
    CHECK(b->received().empty());
    // The new epoch works.
    CHECK(f.reg().deliver(back.self, "bob", msg("fresh")) == deliver_status::delivered);
    CHECK(f.reg().broadcast(back.self, msg("all")) == 1);
    CHECK(b->take() == std::vector<std::string>{"fresh", "all"});
    CHECK(f.reg().deliver(bob.self, "alice", msg("reply")) == deliver_status::delivered);
    CHECK(a2->take() == std::vector<std::string>{"reply"});
    // Nothing was held: no timer was started by the old-epoch leave.
    CHECK(f.run_timers());
    CHECK(b->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("still")) == deliver_status::delivered);
  }

  TEST_CASE("resume, then drop again: the first grace timer does not end the second hold") {
    fixture f;
    auto a = link(), b = link(), a2 = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    f.reg().leave(alice.self, leave_kind::dropped);  // timer 1
    auto back = f.resume(alice, a2);
    f.reg().leave(back.self, leave_kind::dropped);  // timer 2, later deadline
    // Timer 1 (the earlier deadline) fires first and must find nothing to do.
    REQUIRE(f.run_one_timer());
    CHECK(b->received().empty());
    CHECK(f.reg().deliver(bob.self, "alice", msg("kept")) == deliver_status::held);
    // Timer 2 ends the second hold.
    REQUIRE(f.run_timers());
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "timeout")}));
    CHECK(f.leaves(leave_reason::timeout) == 1);
    CHECK(f.reg().deliver(bob.self, "alice", msg("gone")) == deliver_status::not_found);
  }

  TEST_CASE("held messages: beyond held_max_messages the oldest are dropped and counted") {
    fixture f(with([](registry_limits& l) { l.held_max_messages = 3; }));
    auto alice = f.join("demo", "alice", link());
    auto bob = f.join("demo", "bob", link());
    f.reg().leave(alice.self, leave_kind::dropped);
    for (int i = 1; i <= 5; ++i)
      CHECK(f.reg().deliver(bob.self, "alice", msg("m" + std::to_string(i))) == deliver_status::held);
    CHECK(f.dropped(drop_reason::held_overflow) == 2);
    auto back = f.resume(alice, link());
    CHECK(texts(back.held) == std::vector<std::string>{"m3", "m4", "m5"});
    CHECK(f.dropped(drop_reason::held_overflow) == 2);
  }

  TEST_CASE("held messages: the bound counts the unsent messages of leave, broadcasts and hold_late too") {
    fixture f(with([](registry_limits& l) { l.held_max_messages = 3; }));
    auto alice = f.join("demo", "alice", link());
    auto bob = f.join("demo", "bob", link());
    f.reg().leave(alice.self, leave_kind::dropped, messages({"u1", "u2"}));
    f.reg().broadcast(bob.self, msg("b3"));
    f.reg().hold_late(alice.self, msg("l4"));
    CHECK(f.dropped(drop_reason::held_overflow) == 1);
    CHECK(texts(f.resume(alice, link()).held) == std::vector<std::string>{"u2", "b3", "l4"});
  }

  TEST_CASE(
      "held messages: beyond held_max_bytes the oldest are dropped; one over the bound is dropped itself") {
    fixture f(with([](registry_limits& l) { l.held_max_bytes = 10; }));
    auto alice = f.join("demo", "alice", link());
    auto bob = f.join("demo", "bob", link());
    f.reg().leave(alice.self, leave_kind::dropped);
    f.reg().deliver(bob.self, "alice", msg("aaaa"));  // 4 bytes
    f.reg().deliver(bob.self, "alice", msg("bbbb"));  // 8
    CHECK(f.dropped(drop_reason::held_overflow) == 0);
    f.reg().deliver(bob.self, "alice", msg("cccc"));  // 12 > 10: aaaa goes
    CHECK(f.dropped(drop_reason::held_overflow) == 1);
    f.reg().deliver(bob.self, "alice", msg("dd"));  // 10: fits exactly
    CHECK(f.dropped(drop_reason::held_overflow) == 1);
    // Larger than the whole bound: dropped, the queue left alone.
    CHECK(f.reg().deliver(bob.self, "alice", msg("eeeeeeeeeee")) == deliver_status::held);
    CHECK(f.dropped(drop_reason::held_overflow) == 2);
    auto back = f.resume(alice, link());
    CHECK(texts(back.held) == std::vector<std::string>{"bbbb", "cccc", "dd"});
  }

  TEST_CASE("held messages are taken by the resume: a second resume gets none of them again") {
    fixture f;
    auto alice = f.join("demo", "alice", link());
    auto bob = f.join("demo", "bob", link());
    f.reg().leave(alice.self, leave_kind::dropped);
    f.reg().deliver(bob.self, "alice", msg("once"));
    auto back = f.resume(alice, link());
    CHECK(texts(back.held) == std::vector<std::string>{"once"});
    f.reg().leave(back.self, leave_kind::dropped);
    CHECK(f.resume(back, link()).held.empty());
  }

  TEST_CASE("hold_late: kept for a held member, passed to a resumed one, dropped for a gone one") {
    fixture f;
    auto b = link();
    auto bob = f.join("demo", "bob", b);
    b->take();

    SUBCASE("held member: kept for the resume, after what was already held") {
      auto alice = f.join("demo", "alice", link());
      b->take();
      f.reg().leave(alice.self, leave_kind::dropped, messages({"u1"}));
      f.reg().hold_late(alice.self, msg("late"));
      f.reg().deliver(bob.self, "alice", msg("m2"));
      CHECK(texts(f.resume(alice, link()).held) == std::vector<std::string>{"u1", "late", "m2"});
      CHECK(f.dropped(drop_reason::closed) == 0);
    }
    SUBCASE("resumed member: goes to the connection that took the place") {
      auto alice = f.join("demo", "alice", link());
      b->take();
      f.reg().leave(alice.self, leave_kind::dropped);
      auto a2 = link();
      auto back = f.resume(alice, a2);
      CHECK(back.held.empty());
      f.reg().hold_late(alice.self, msg("late"));
      CHECK(a2->take() == std::vector<std::string>{"late"});
      CHECK(f.dropped(drop_reason::closed) == 0);
    }
    SUBCASE("gone member: dropped and counted") {
      auto alice = f.join("demo", "alice", link());
      f.reg().leave(alice.self, leave_kind::dropped);
      REQUIRE(f.run_timers());
      const double before = f.dropped(drop_reason::closed);
      f.reg().hold_late(alice.self, msg("late"));
      CHECK(f.dropped(drop_reason::closed) == before + 1);
      CHECK(parsed(b->take()) == json::array({peer_joined("alice"), peer_left("alice", "timeout")}));
    }
    SUBCASE("gone room: dropped and counted") {
      fixture g;
      auto alone = g.join("solo", "alice", link());
      g.reg().leave(alone.self, leave_kind::closed);
      g.reg().hold_late(alone.self, msg("late"));
      CHECK(g.dropped(drop_reason::closed) == 1);
    }
    SUBCASE("lobby: no resume, dropped and counted") {
      auto x = f.join_lobby("x", link());
      f.reg().leave(x.self, leave_kind::dropped);
      f.reg().hold_late(x.self, msg("late"));
      CHECK(f.dropped(drop_reason::closed) == 1);
    }
    CHECK(b->received().empty());
  }

  TEST_CASE("hold_late for a membership that ended does not reach a new peer of the same id") {
    // A message that reached a dropped connection late belongs to that place
    // only, not to whoever has the id now.
    fixture f(with([](registry_limits& l) { l.reconnect_grace = 0ms; }));
    auto b = link(), a1 = link(), a2 = link();
    f.join("demo", "bob", b);
    auto alice = f.join("demo", "alice", a1);
    f.reg().leave(alice.self, leave_kind::dropped);  // grace 0: gone at once (timeout)
    auto fresh = f.join("demo", "alice", a2);
    REQUIRE_FALSE(fresh.resumed);
    const double before = f.dropped(drop_reason::closed);
    f.reg().hold_late(alice.self, msg("for the old alice"));
    CHECK(a2->received().empty());
    CHECK(f.dropped(drop_reason::closed) == before + 1);
  }

  TEST_CASE("the unsent messages of an ended membership do not reach a new peer of the same id") {
    // An epoch mismatch means "replaced by a resume" only while the place
    // lives: once it is gone, a fresh join of the id is someone else.
    fixture f;
    auto b = link(), a1 = link(), a2 = link(), a3 = link();
    f.join("demo", "bob", b);
    auto alice = f.join("demo", "alice", a1);
    auto back = f.resume(alice, a2);  // a1 is replaced; its leave is still on its way
    f.reg().leave(back.self, leave_kind::closed);
    REQUIRE_FALSE(f.join("demo", "alice", a3).resumed);
    f.reg().leave(alice.self, leave_kind::dropped, messages({"for the old alice"}));
    CHECK(a3->received().empty());
  }

  TEST_CASE("room-full: one more joiner is refused; held members count; a resume is never refused") {
    fixture f(with([](registry_limits& l) { l.max_peers_per_room = 2; }));
    auto a = link(), b = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    a->take();
    auto refused = f.try_join("demo", "carol", link());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == error_code::room_full);
    CHECK(f.try_join("demo", std::nullopt, link()).error().code == error_code::room_full);
    CHECK(a->received().empty());  // a refused join is not announced
    CHECK(b->received().empty());
    // Another room is not affected.
    CHECK(f.try_join("other", "carol", link()).ok());
    // A held member keeps its seat...
    f.reg().leave(alice.self, leave_kind::dropped);
    CHECK(f.try_join("demo", "carol", link()).error().code == error_code::room_full);
    // ...and gets it back, though the room is full.
    auto back = f.resume(alice, link());
    CHECK(back.resumed);
    // Even a connected member can be resumed in a full room.
    CHECK(f.resume(bob, link()).resumed);
    // A seat freed by a leave can be taken.
    f.reg().leave(back.self, leave_kind::closed);
    CHECK(f.try_join("demo", "carol", link()).ok());
    CHECK(f.stats.joins.Value() == 4);
  }

  TEST_CASE("max_rooms: a join that would create a room is unavailable; an emptied room frees a slot") {
    fixture f(with([](registry_limits& l) { l.max_rooms = 2; }));
    auto alice = f.join("one", "alice", link());
    f.join("two", "bob", link());
    auto refused = f.try_join("three", "carol", link());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == error_code::unavailable);
    CHECK(f.stats.rooms.Value() == 2);
    // Joining an existing room still works, and the lobby is not a room.
    auto dave = f.join("one", "dave", link());
    CHECK(f.try_join("two", "dave", link()).ok());
    CHECK(f.try_join_lobby("lobbyist", link()).ok());
    // Room one lives while it has a member.
    f.reg().leave(alice.self, leave_kind::closed);
    CHECK(f.try_join("three", "carol", link()).error().code == error_code::unavailable);
    // A leave of another epoch, or by a made-up reference, does not empty it.
    auto other_epoch = dave.self;
    other_epoch.epoch += 1000;
    f.reg().leave(other_epoch, leave_kind::closed);
    f.reg().leave(peer_ref{peer_mode::room, "one", "dave", dave.self.epoch, nullptr, nullptr},
                  leave_kind::closed);
    CHECK(f.try_join("three", "carol", link()).error().code == error_code::unavailable);
    f.reg().leave(dave.self, leave_kind::closed);
    CHECK(f.stats.rooms.Value() == 1);
    CHECK(f.try_join("three", "carol", link()).ok());
    CHECK(f.try_join("four", "carol", link()).error().code == error_code::unavailable);
  }

  TEST_CASE("max_rooms: rooms that emptied do not use up the limit") {
    fixture f(with([](registry_limits& l) { l.max_rooms = 1; }));
    for (int i = 0; i < 5; ++i) {
      auto g = f.join("room" + std::to_string(i), "alice", link());
      CHECK(f.try_join("other" + std::to_string(i), "bob", link()).error().code == error_code::unavailable);
      f.reg().leave(g.self, i % 2 ? leave_kind::closed : leave_kind::kicked);
      CHECK(f.stats.rooms.Value() == 0);
    }
    // A held-only room counts until its grace ends.
    auto held = f.join("held", "alice", link());
    f.reg().leave(held.self, leave_kind::dropped);
    CHECK(f.try_join("next", "bob", link()).error().code == error_code::unavailable);
    REQUIRE(f.run_timers());
    CHECK(f.try_join("next", "bob", link()).ok());
  }

  TEST_CASE("lobby: an id is unique while connected; no peers, no notices, no resume") {
    fixture f;
    auto x = link(), y = link(), room_x = link();
    auto gx = f.join_lobby("x", x);
    CHECK(gx.self.mode == peer_mode::lobby);
    CHECK(gx.self.id == "x");
    CHECK(gx.self.room.empty());
    CHECK(gx.peers.empty());
    CHECK_FALSE(gx.resumed);
    auto taken = f.try_join_lobby("x", link());
    REQUIRE_FALSE(taken.ok());
    CHECK(taken.error().code == error_code::id_taken);
    auto gy = f.join_lobby("y", y);
    CHECK(gy.peers.empty());
    CHECK(x->received().empty());  // no peer-joined in the lobby
    // A room peer may have the same id as a lobby peer.
    CHECK(f.try_join("demo", "x", room_x).ok());
    CHECK(x->received().empty());
    // Leaving frees the id at once, whatever the kind; nobody is told.
    f.reg().leave(gy.self, leave_kind::dropped);
    CHECK(x->received().empty());
    CHECK(f.reg().deliver(gx.self, "y", msg("gone")) == deliver_status::not_found);
    CHECK(f.try_join_lobby("y", link()).ok());
    f.reg().leave(gx.self, leave_kind::kicked);
    CHECK(f.leaves(leave_reason::kicked) == 1);
    CHECK(f.try_join_lobby("x", link()).ok());
    // An old epoch's leave does not remove the new holder of the id.
    f.reg().leave(gx.self, leave_kind::closed);
    CHECK(f.try_join_lobby("x", link()).error().code == error_code::id_taken);
    CHECK(f.run_timers());  // no grace timer in the lobby
  }

  TEST_CASE("lobby deliver: to another lobby peer; self and unknown ids are not found; rooms are apart") {
    fixture f;
    auto x = link(), y = link(), room_y = link(), room_z = link();
    auto gx = f.join_lobby("x", x);
    f.join_lobby("y", y);
    auto ry = f.join("demo", "y", room_y);
    f.join("demo", "z", room_z);
    room_y->take();

    CHECK(f.reg().deliver(gx.self, "y", msg("hello y")) == deliver_status::delivered);
    CHECK(y->take() == std::vector<std::string>{"hello y"});
    CHECK(room_y->received().empty());
    CHECK(f.stats.relayed.Value() == 1);
    CHECK(f.reg().deliver(gx.self, "x", msg("self")) == deliver_status::not_found);
    CHECK(x->received().empty());
    CHECK(f.reg().deliver(gx.self, "nobody", msg("?")) == deliver_status::not_found);
    CHECK(f.reg().deliver(gx.self, "z", msg("room peer")) == deliver_status::not_found);
    CHECK(room_z->received().empty());
    // No broadcast in the lobby.
    CHECK(f.reg().broadcast(gx.self, msg("all")) == 0);
    CHECK(y->received().empty());
    // And a room peer reaches the room's y, not the lobby's.
    CHECK(f.reg().deliver(ry.self, "x", msg("lobby peer")) == deliver_status::not_found);
    CHECK(f.reg().broadcast(ry.self, msg("room only")) == 1);
    CHECK(room_z->take() == std::vector<std::string>{"room only"});
    CHECK(x->received().empty());
    CHECK(y->received().empty());
  }

  TEST_CASE(
      "room deliver: to the target only, in order; not found for unknown, other rooms, self, stale senders") {
    fixture f;
    auto a = link(), b = link(), c = link(), x = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    f.join("demo", "carol", c);
    auto xavier = f.join("other", "xavier", x);
    a->take();
    b->take();

    for (int i = 0; i < 5; ++i)
      CHECK(f.reg().deliver(alice.self, "bob", msg("offer" + std::to_string(i))) ==
            deliver_status::delivered);
    CHECK(b->take() == std::vector<std::string>{"offer0", "offer1", "offer2", "offer3", "offer4"});
    CHECK(c->received().empty());
    CHECK(a->received().empty());
    CHECK(f.stats.relayed.Value() == 5);

    CHECK(f.reg().deliver(alice.self, "nobody", msg("x")) == deliver_status::not_found);
    CHECK(f.reg().deliver(alice.self, "xavier", msg("x")) == deliver_status::not_found);
    CHECK(f.reg().deliver(xavier.self, "bob", msg("x")) == deliver_status::not_found);
    CHECK(f.reg().deliver(alice.self, "alice", msg("x")) == deliver_status::not_found);
    // A sender of an older epoch (replaced by a resume) or one that left.
    auto back = f.resume(alice, link());
    CHECK(f.reg().deliver(alice.self, "bob", msg("stale")) == deliver_status::not_found);
    f.reg().leave(back.self, leave_kind::closed);
    CHECK(f.reg().deliver(back.self, "bob", msg("left")) == deliver_status::not_found);
    // A made-up reference (no handles from a join).
    CHECK(f.reg().deliver(peer_ref{peer_mode::room, "nowhere", "bob", bob.self.epoch, nullptr, nullptr},
                          "bob", msg("x")) == deliver_status::not_found);
    CHECK(parsed(b->take()) == json::array({peer_left("alice", "closed")}));
    CHECK(f.stats.relayed.Value() == 5);
    CHECK(x->received().empty());
  }

  TEST_CASE("room deliver to a member whose link is gone: delivered, but counted as dropped") {
    fixture f;
    auto b = link();
    f.join("demo", "alice", link());  // the session is gone, without a leave (yet)
    auto bob = f.join("demo", "bob", b);
    const double before = f.dropped(drop_reason::closed);
    CHECK(f.reg().deliver(bob.self, "alice", msg("x")) == deliver_status::delivered);
    CHECK(f.dropped(drop_reason::closed) == before + 1);
    CHECK(f.reg().broadcast(bob.self, msg("y")) == 1);
    CHECK(f.dropped(drop_reason::closed) == before + 2);
  }

  TEST_CASE("broadcast: every other member, held ones included; the count; alone, nothing") {
    fixture f;
    auto a = link(), b = link(), c = link(), d = link(), x = link();
    auto alice = f.join("demo", "alice", a);
    CHECK(f.reg().broadcast(alice.self, msg("alone")) == 0);
    CHECK(f.stats.relayed.Value() == 0);
    f.join("demo", "bob", b);
    auto carol = f.join("demo", "carol", c);
    f.join("demo", "dave", d);
    f.join("other", "xavier", x);
    a->take();
    b->take();
    c->take();
    f.reg().leave(carol.self, leave_kind::dropped);
    CHECK(f.reg().broadcast(alice.self, msg("all")) == 3);
    CHECK(f.stats.relayed.Value() == 3);
    CHECK(a->received().empty());
    CHECK(b->take() == std::vector<std::string>{"all"});
    CHECK(d->take() == std::vector<std::string>{"all"});
    CHECK(x->received().empty());
    CHECK(texts(f.resume(carol, c).held) == std::vector<std::string>{"all"});
    // From an unknown sender or another room's member: nobody.
    CHECK(f.reg().broadcast(peer_ref{peer_mode::room, "demo", "mallory", 0, nullptr, nullptr}, msg("x")) ==
          0);
    CHECK(b->received().empty());
  }

  TEST_CASE("close_joins: every join is refused unavailable; no peer-left is sent after it") {
    fixture f;
    auto a = link(), b = link(), c = link(), d = link(), e = link();
    auto alice = f.join("demo", "alice", a);
    auto bob = f.join("demo", "bob", b);
    auto carol = f.join("demo", "carol", c);
    auto dave = f.join("demo", "dave", d);
    auto erin = f.join("demo", "erin", e);
    f.reg().leave(alice.self, leave_kind::dropped);  // held before the drain
    e->take();

    f.reg().close_joins();
    for (auto refused :
         {f.try_join("demo", "frank", link()), f.try_join("new", "frank", link()),
          f.try_join("demo", std::nullopt, link()), f.try_join("demo", "alice", link(), alice.resume_token),
          f.try_join_lobby("y", link())}) {
      REQUIRE_FALSE(refused.ok());
      CHECK(refused.error().code == error_code::unavailable);
    }
    f.reg().leave(bob.self, leave_kind::closed);
    f.reg().leave(carol.self, leave_kind::kicked);
    f.reg().leave(dave.self, leave_kind::dropped);  // not held during a drain: gone
    CHECK(f.reg().deliver(erin.self, "dave", msg("x")) == deliver_status::not_found);
    CHECK(f.reg().deliver(erin.self, "alice", msg("x")) == deliver_status::held);
    REQUIRE(f.run_timers());  // alice's grace ends during the drain
    CHECK(f.reg().deliver(erin.self, "alice", msg("x")) == deliver_status::not_found);
    CHECK(e->received().empty());
    CHECK(f.leaves(leave_reason::closed) == 1);
    CHECK(f.leaves(leave_reason::kicked) == 1);
    CHECK(f.leaves(leave_reason::timeout) == 2);
  }

  TEST_CASE("concurrent senders: each sender's messages reach the target in order, none lost") {
    fixture f;
    auto t = link();
    f.join("demo", "target", t);
    constexpr int senders = 4;
    constexpr int per_sender = 500;
    std::vector<std::shared_ptr<fake_link>> links;
    std::vector<peer_ref> from;
    for (int s = 0; s < senders; ++s) {
      links.push_back(link());
      from.push_back(f.join("demo", "s" + std::to_string(s), links.back()).self);
    }
    t->take();
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s) {
      threads.emplace_back([&, s] {
        for (int i = 0; i < per_sender; ++i) {
          auto text = std::to_string(s) + ":" + std::to_string(i);
          if (f.reg().deliver(from[s], "target", msg(text)) != deliver_status::delivered)
            refused.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(refused.load() == 0);
    auto got = t->take();
    REQUIRE(got.size() == static_cast<std::size_t>(senders * per_sender));
    std::vector<int> next(senders, 0);
    int out_of_order = 0;
    for (const auto& m : got) {
      auto colon = m.find(':');
      int s = std::stoi(m.substr(0, colon));
      int i = std::stoi(m.substr(colon + 1));
      if (i != next[s]) ++out_of_order;
      next[s] = i + 1;
    }
    CHECK(out_of_order == 0);
    CHECK(f.stats.relayed.Value() == senders * per_sender);
  }

  TEST_CASE("concurrent joins of one id: exactly one is admitted, the others get id-taken") {
    fixture f;
    constexpr int tries = 8;
    std::vector<std::shared_ptr<fake_link>> links;
    for (int i = 0; i < tries; ++i) links.push_back(link());
    std::atomic<int> admitted{0}, taken{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < tries; ++i) {
      threads.emplace_back([&, i] {
        auto r = f.try_join("demo", "alice", links[i]);
        if (r.ok()) {
          admitted.fetch_add(1);
        } else if (r.error().code == error_code::id_taken) {
          taken.fetch_add(1);
        } else {
          other.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(admitted.load() == 1);
    CHECK(taken.load() == tries - 1);
    CHECK(other.load() == 0);
    CHECK(f.stats.joins.Value() == 1);
    CHECK(f.stats.rooms.Value() == 1);
  }
}
