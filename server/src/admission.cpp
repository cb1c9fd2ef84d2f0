#include "admission.hpp"

#include "upgrade_request.hpp"

#include <rendezvous/protocol/server_messages.hpp>

namespace rendezvous::server {

namespace {
protocol::result<join_request> prepare(admission_request& request, const session_settings& settings) {
  auto decided = decide_join(request.target, request.origin, request.authorization,
                             {settings.auth_secret, settings.allowed_origins}, request.now_s);
  if (!decided) return decided.error();
  join_request join = std::move(decided.value());
  join.link = std::move(request.link);
  return join;
}

protocol::result<admission> welcome_for(protocol::result<join_granted> granted,
                                        const session_settings& settings, std::int64_t now_s) {
  if (!granted) return granted.error();
  admission out;
  out.self = granted->self;
  out.resumed = granted->resumed;
  if (out.self.mode == protocol::peer_mode::lobby) return out;  // libdatachannel mode: no welcome

  protocol::welcome_info welcome;
  welcome.id = out.self.id;
  welcome.room = out.self.room;
  welcome.peers = std::move(granted->peers);
  welcome.resume_token = std::move(granted->resume_token);
  welcome.ice_servers = make_ice_servers(settings.ice, out.self.id, now_s);
  welcome.resumed = granted->resumed;
  out.first.reserve(1 + granted->held.size());
  out.first.push_back(std::make_shared<const std::string>(protocol::make_welcome(welcome)));
  for (auto& msg : granted->held) out.first.push_back(std::move(msg));
  return out;
}

}  // namespace

protocol::result<admission> admit(admission_request request, const session_settings& settings,
                                  room_registry& registry) {
  auto join = prepare(request, settings);
  if (!join) return join.error();
  return welcome_for(registry.join(std::move(join.value())), settings, request.now_s);
}

void admit_async(admission_request request, const session_settings& settings, room_registry& registry,
                 admission_handler done) {
  auto join = prepare(request, settings);
  if (!join) return done(join.error());
  registry.join_async(std::move(join.value()), [&settings, now_s = request.now_s,
                                                done = std::move(done)](protocol::result<join_granted> g) {
    done(welcome_for(std::move(g), settings, now_s));
  });
}

}  // namespace rendezvous::server
