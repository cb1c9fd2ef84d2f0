#pragma once
// The backplane's Lua scripts. Each touches the keys of one room (or of the
// lobby, or the node list) only, all hash-tagged alike, so each runs in one
// Redis Cluster slot. A script is one atomic step: the checks and the write
// cannot be split by another node's join (no read-then-write race).
//
// A member record (hash field = peer id): "<node>|<join seq>|<L or H>|<token hash>"
//   node: the incarnation that has the place (node id + a nonce per start)
//   L: live on that node; H: held after that node died (reconnect grace)
// Every change increments the room's event counter and publishes one event on
// the room's channel, tagged with that number (cluster_wire.hpp).
namespace rendezvous::server::cluster_scripts {

// KEYS: members, counter. ARGV: id, node, new token hash, max peers, resume
// token hash ("" for none), channel.
// -> {"taken"} | {"full"} | {"joined"|"resumed", event, join seq, old node, HGETALL}
inline constexpr const char* join = R"lua(
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if rec then
  local node, seq, state, tok = string.match(rec, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if ARGV[5] == '' or tok ~= ARGV[5] then return {'taken'} end
  local ev = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. seq .. '|L|' .. ARGV[3])
  redis.call('SPUBLISH', ARGV[6], 'R ' .. ev .. ' ' .. ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. node)
  return {'resumed', ev, tonumber(seq), node, redis.call('HGETALL', KEYS[1])}
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'full'} end
local ev = redis.call('INCR', KEYS[2])
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ev .. '|L|' .. ARGV[3])
redis.call('SPUBLISH', ARGV[6], 'J ' .. ev .. ' ' .. ARGV[2] .. ' ' .. ARGV[1])
return {'joined', ev, ev, '', redis.call('HGETALL', KEYS[1])}
)lua";

// Ends a place if `node` still has it. KEYS: members, counter. ARGV: id,
// node, reason (closed|kicked|timeout), channel. -> event number, or 0.
// The counter outlives an empty room by an hour, so numbers never go back
// for a node that still listens to the room.
inline constexpr const char* leave = R"lua(
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
if string.match(rec, '^([^|]*)|') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local ev = redis.call('INCR', KEYS[2])
redis.call('SPUBLISH', ARGV[4], 'L ' .. ev .. ' ' .. ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[3])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('EXPIRE', KEYS[2], 3600) end
return ev
)lua";

// A dead node's live places become held. KEYS: members, counter. ARGV: dead
// node, channel. -> ids marked
inline constexpr const char* mark_held = R"lua(
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local node, seq, state, tok = string.match(all[i + 1], '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if node == ARGV[1] and state == 'L' then
    redis.call('HSET', KEYS[1], all[i], node .. '|' .. seq .. '|H|' .. tok)
    local ev = redis.call('INCR', KEYS[2])
    redis.call('SPUBLISH', ARGV[2], 'H ' .. ev .. ' ' .. node .. ' ' .. all[i])
    out[#out + 1] = all[i]
  end
end
return out
)lua";

// After Redis lost its data (or this node its connection): puts back this
// node's places that are missing, each with an A event, so that a node that
// saw them leave meanwhile learns they are back. Keeps the counter above
// every join order it puts back. KEYS: members, counter. ARGV: node,
// channel, then (id, join seq, token hash) triples. -> {event, HGETALL}
inline constexpr const char* reassert = R"lua(
local ev = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 3, #ARGV, 3 do
  local seq = tonumber(ARGV[i + 1])
  if seq > ev then ev = seq end
end
for i = 3, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. '|' .. ARGV[i + 1] .. '|L|' .. ARGV[i + 2])
    ev = ev + 1
    redis.call('SPUBLISH', ARGV[2], 'A ' .. ev .. ' ' .. ARGV[1] .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 1])
  end
end
redis.call('SET', KEYS[2], ev)
return {ev, redis.call('HGETALL', KEYS[1])}
)lua";

// KEYS: node list (sorted set, score = expiry in Redis's ms clock). ARGV:
// node, ttl ms. Renews this node; removes and returns the expired ones (the
// caller reaps them: only one node gets each) and returns the live ones.
// -> {dead nodes, live nodes}
inline constexpr const char* heartbeat = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
for _, d in ipairs(dead) do redis.call('ZREM', KEYS[1], d) end
return {dead, redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')}
)lua";

// Lobby: KEYS: lobby hash. ARGV: id, node. -> 1 taken by this call, 0 taken before
inline constexpr const char* lobby_join = R"lua(
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
)lua";

// KEYS: lobby hash. ARGV: id, node. Frees the id if `node` has it.
inline constexpr const char* lobby_leave = R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
)lua";

}  // namespace rendezvous::server::cluster_scripts
