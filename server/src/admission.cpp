#include "admission.hpp"

#include "upgrade_request.hpp"

#include <rendezvous/protocol/server_messages.hpp>

namespace rendezvous::server {

protocol::result<admission> admit(admission_request request, const session_settings& settings,
                                  room_registry& registry) {
  auto decided = decide_join(request.target, request.origin, request.authorization,
                             {settings.auth_secret, settings.allowed_origins}, request.now_s);
  if (!decided) return decided.error();
  join_request join = std::move(decided.value());
  join.link = std::move(request.link);

  auto granted = registry.join(std::move(join));
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
  welcome.ice_servers = make_ice_servers(settings.ice, out.self.id, request.now_s);
  welcome.resumed = granted->resumed;
  out.first.reserve(1 + granted->held.size());
  out.first.push_back(std::make_shared<const std::string>(protocol::make_welcome(welcome)));
  for (auto& msg : granted->held) out.first.push_back(std::move(msg));
  return out;
}

}  // namespace rendezvous::server
