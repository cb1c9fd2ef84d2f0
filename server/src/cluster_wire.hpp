#pragma once
// What the backplane writes in Redis: key and channel names, and the events
// on a room's channel. Pure functions, unit-tested without Redis.
//
// Names: a room's keys and channel share the hash tag {room}, so one Redis
// Cluster slot holds them and SPUBLISH from a script touching them is legal;
// peer and room names cannot contain braces, so no name can fake a tag.
//
// Events: one text line of space-separated fields, then for relayed traffic
// '\n' and the message exactly as the target receives it.
//   J <seq> <node> <id>            joined (seq = its join order)
//   L <seq> <node> <id> <reason>   left for good
//   R <seq> <node> <id> <old node> resumed onto <node>
//   H <seq> <node> <id>            held: <node> died (reconnect grace)
//   A <seq> <node> <id> <join seq>  <node> put the place back (after an outage)
//   M <node> <to>\n<msg>           message to one peer
//   B <node> <from>\n<msg>         message to every other peer
//   F <node> <id>\n<msg>           a held message, handed to the node that resumed <id>
//   S <node> <id>                  no more F for <id> (the seal)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rendezvous::server::cluster_wire {

std::string room_members_key(std::string_view prefix, std::string_view room);
std::string room_counter_key(std::string_view prefix, std::string_view room);
std::string room_channel(std::string_view prefix, std::string_view room);
std::string lobby_key(std::string_view prefix);
std::string lobby_channel(std::string_view prefix);
std::string nodes_key(std::string_view prefix);
std::string node_rooms_key(std::string_view prefix, std::string_view node);
std::string node_lobby_key(std::string_view prefix, std::string_view node);
// The room a channel name belongs to, if it is a room channel of `prefix`.
std::optional<std::string> room_of_channel(std::string_view prefix, std::string_view channel);

struct event {
  char kind = 0;
  std::uint64_t seq = 0;  // J L R H A
  std::string node;
  std::string id;            // peer id (to / from for M / B)
  std::string extra;         // L: reason; R: old node
  std::string_view message;  // M B F: points into the parsed text
};

// Parses what arrived on a channel; nullopt if it is not an event.
std::optional<event> parse_event(std::string_view text);

std::string make_relay(char kind, std::string_view node, std::string_view id, std::string_view msg);
std::string make_seal(std::string_view node, std::string_view id);

// Member record "<node>|<seq>|<L|H>|<token hash>".
struct member_record {
  std::string node;
  std::uint64_t seq = 0;
  bool held = false;
  std::string token_hash;
};
std::optional<member_record> parse_member(std::string_view text);

// SHA-256 of a resume token, hex: Redis never sees a usable token.
std::string token_hash(std::string_view token);

}  // namespace rendezvous::server::cluster_wire
