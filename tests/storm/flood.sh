#!/usr/bin/env bash
# Flood test: one address (127.0.0.1) opens connections as fast as it can for
# 10 s while 8 peers from 127.0.0.2-9 join and relay; the server keeps its
# default per-address limits. flood.mjs has the checks and why the latency
# allowance is what it is.
#
#   tests/storm/flood.sh [flood.mjs options]     (ctest: flood; ~25 s)
#
# Environment: RENDEZVOUS_SERVER (default build/server/rendezvous-server),
# FLOOD_KEEP_LOG=1 keeps the server log when the test passes.
# Exit status: 0 pass, 1 fail, 77 skipped (no node or no ws in
# tests/storm/node_modules: scripts/install-deps.sh runs npm ci there).
# Only loopback; every process is ended by its own PID (trap EXIT).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SERVER="${RENDEZVOUS_SERVER:-$ROOT/build/server/rendezvous-server}"

say() { printf '[flood] %s\n' "$*" >&2; }
[[ -x "$SERVER" ]] || { say "no server binary at $SERVER"; exit 1; }
command -v node >/dev/null 2>&1 || { say "SKIP: no node"; exit 77; }
[[ -f "$HERE/node_modules/ws/package.json" ]] || { say "SKIP: tests/storm/node_modules is missing"; exit 77; }

WORK="$(mktemp -d /tmp/rdv-flood.XXXXXX)"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
NODE_PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null
    wait "$NODE_PID" 2>/dev/null
  fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if ((rc != 0)) || [[ "${FLOOD_KEEP_LOG:-0}" == 1 ]]; then say "server log kept in $SERVER_LOG"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

env_args=()
while IFS='=' read -r name _; do
  [[ "$name" == RENDEZVOUS_* ]] && env_args+=(-u "$name")
done < <(env)

# The defaults for every limit; two I/O threads (the box has 2 cores).
env "${env_args[@]}" "$SERVER" --listen 127.0.0.1:0 --threads 2 >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 200); do
  PORT="$(grep -a -m1 -oE 'listening on 127\.0\.0\.1:[0-9]+' "$SERVER_LOG" 2>/dev/null | sed -E 's/.*://')"
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
[[ -n "$PORT" ]] || { say "the server did not log 'listening on' within 10 s"; cat "$SERVER_LOG" >&2; exit 1; }

node "$HERE/flood.mjs" --port "$PORT" --server-log "$SERVER_LOG" "$@" &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=""

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  say "FAIL: the server process is gone"
  exit 1
fi
kill -TERM "$SERVER_PID"
for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  say "FAIL: the server did not exit within 5 s of SIGTERM"
  exit 1
fi
wait "$SERVER_PID"
code=$?
SERVER_PID=""
if ((code != 0)); then say "FAIL: the server exited with $code on SIGTERM"; rc=1; fi
exit "$rc"
