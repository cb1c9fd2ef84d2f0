// admission without sockets: a real registry and fake links. A room join is
// the welcome (peers, token, ICE servers) as the first message; a resume is
// the welcome then what was held, in order; a lobby join sends nothing; and a
// refusal names its code and leaves the registry untouched.
#include "admission.hpp"

#include "local_room_registry.hpp"
#include "metrics.hpp"

#include <rendezvous/protocol/endpoint.hpp>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

using namespace rendezvous::server;
using rendezvous::protocol::error_code;
using rendezvous::protocol::parse_endpoint;
using rendezvous::protocol::peer_mode;
using json = nlohmann::json;

namespace {
struct null_link final : peer_link {
  std::vector<std::string> got;
  void deliver(shared_message m) override { got.push_back(*m); }
  void replaced() override {}
};

struct fixture {
  boost::asio::io_context ioc;
  metrics stats;
  local_room_registry registry{ioc.get_executor(), registry_limits{}, stats};
  room_registry& reg = registry;  // used, as sessions use it, through the interface
  session_settings settings;

  auto admit_to(const std::string& target, const std::shared_ptr<null_link>& link, std::string origin = {}) {
    return admit({parse_endpoint(target), std::move(origin), {}, link, 1700000000}, settings, reg);
  }
};
}  // namespace

TEST_CASE("a room join: the welcome is the first message, with the peers and a resume token") {
  fixture f;
  f.settings.ice.stun_uris = {"stun:stun.example:3478"};
  auto a = std::make_shared<null_link>(), b = std::make_shared<null_link>();
  auto first = f.admit_to("/rooms/demo?peer=alice", a);
  REQUIRE(first.ok());
  CHECK(first->self.id == "alice");
  CHECK(first->self.mode == peer_mode::room);
  CHECK_FALSE(first->resumed);
  REQUIRE(first->first.size() == 1);
  auto second = f.admit_to("/rooms/demo?peer=bob", b);
  REQUIRE(second.ok());
  REQUIRE(second->first.size() == 1);
  auto welcome = json::parse(*second->first[0]);
  CHECK(welcome["type"] == "welcome");
  CHECK(welcome["id"] == "bob");
  CHECK(welcome["room"] == "demo");
  CHECK(welcome["peers"] == json::array({"alice"}));
  CHECK(welcome["resume"].get<std::string>().size() == 32);
  CHECK(welcome["iceServers"][0]["urls"] == json::array({"stun:stun.example:3478"}));
  // The others learn of the join from the registry, not from admission.
  REQUIRE(a->got.size() == 1);
  CHECK(json::parse(a->got[0])["type"] == "peer-joined");
}

TEST_CASE("a resume: the welcome says resumed, then the held messages in order") {
  fixture f;
  auto a = std::make_shared<null_link>(), b = std::make_shared<null_link>();
  auto alice = f.admit_to("/rooms/demo?peer=alice", a);
  auto bob = f.admit_to("/rooms/demo?peer=bob", b);
  REQUIRE((alice.ok() && bob.ok()));
  const std::string token = json::parse(*alice->first[0])["resume"];
  f.reg.leave(alice->self, leave_kind::dropped);
  f.reg.deliver(bob->self, "alice", std::make_shared<const std::string>("m1"));
  f.reg.deliver(bob->self, "alice", std::make_shared<const std::string>("m2"));
  auto back = f.admit_to("/rooms/demo?peer=alice&resume=" + token, std::make_shared<null_link>());
  REQUIRE(back.ok());
  CHECK(back->resumed);
  REQUIRE(back->first.size() == 3);
  auto welcome = json::parse(*back->first[0]);
  CHECK(welcome["resumed"] == true);
  CHECK(welcome["peers"] == json::array({"bob"}));
  CHECK(*back->first[1] == "m1");
  CHECK(*back->first[2] == "m2");
}

TEST_CASE("a lobby join sends nothing first") {
  fixture f;
  auto joined = f.admit_to("/lobbyist", std::make_shared<null_link>());
  REQUIRE(joined.ok());
  CHECK(joined->self.mode == peer_mode::lobby);
  CHECK(joined->first.empty());
}

TEST_CASE("refusals: the request's own, then the registry's; neither changes the room") {
  fixture f;
  f.settings.allowed_origins = {"https://app.example"};
  auto bad_origin =
      f.admit_to("/rooms/demo?peer=alice", std::make_shared<null_link>(), "https://evil.example");
  REQUIRE_FALSE(bad_origin.ok());
  CHECK(bad_origin.error().code == error_code::forbidden);
  auto bad_name = f.admit_to("/rooms/demo?peer=bad%20name", std::make_shared<null_link>());
  REQUIRE_FALSE(bad_name.ok());
  CHECK(bad_name.error().code == error_code::bad_request);
  CHECK(f.stats.joins.Value() == 0);

  auto ok = f.admit_to("/rooms/demo?peer=alice", std::make_shared<null_link>(), "https://app.example");
  REQUIRE(ok.ok());
  auto taken = f.admit_to("/rooms/demo?peer=alice", std::make_shared<null_link>());
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().code == error_code::id_taken);
  CHECK(f.stats.joins.Value() == 1);
}
