#!/usr/bin/env bash
# Runs the browser tests (tests/browser/*.test.mjs): headless Chromium (Debian's,
# driven by playwright-core), the demo page and client/js/rendezvous.js,
# against the real server, with libdatachannel (node-datachannel) and, when
# built, rendezvous-peer peers.
#
#   tests/browser/run.sh [--test-name-pattern=RE] [test files...]
#                                  (default: every *.test.mjs here)
#
# Chromium gathers no ICE candidates on loopback alone, and must not do WebRTC
# in the root namespace, so this script makes a network namespace of its own
# (a unique name; a veth with 10.99.0.1/24 and a default route), starts the
# server and runs the tests (which start the browser and the other peers)
# inside it, and always deletes the namespace at the end. It kills only the
# PIDs it started.
#
# Environment:
#   RENDEZVOUS_SERVER  the server binary (default: build/server/rendezvous-server)
#   RENDEZVOUS_PEER    the C++ rendezvous-peer (optional; when unset:
#                      build/client/rendezvous-peer if it exists; set and
#                      empty: none); without it the browser <-> rendezvous-peer
#                      tests skip themselves
#   CHROMIUM           the browser (default: /usr/bin/chromium)
#   RDV_ARTIFACTS      screenshots and the server log (default: tests/browser/artifacts)
#   RDV_SERVE_SOURCE=1 serve web/ and client/js/rendezvous.js from the source
#                      tree (--web-root on a temporary copy) instead of the
#                      copies built into the server: edit and re-run without
#                      rebuilding the server
#
# Exit status: the test runner's; 77 when the prerequisites are missing
# (chromium, iproute2, the npm packages, root / network namespaces), so that
# ctest reports a skip (SKIP_RETURN_CODE 77). Install them with
# scripts/install-deps-browser.sh.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SERVER="${RENDEZVOUS_SERVER:-$ROOT/build/server/rendezvous-server}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
ARTIFACTS="${RDV_ARTIFACTS:-$HERE/artifacts}"
ADDR=10.99.0.1

say() { printf '[browser-tests] %s\n' "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }

[[ -x "$SERVER" ]] || { say "no server binary at $SERVER (build it, or set RENDEZVOUS_SERVER)"; exit 1; }
[[ -x "$CHROMIUM" ]] || skip "no $CHROMIUM (scripts/install-deps-browser.sh installs Debian's chromium)"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2; scripts/install-deps-browser.sh)"
command -v node >/dev/null 2>&1 || skip "no node"
[[ -d "$HERE/node_modules/playwright-core" ]] ||
  skip "tests/browser/node_modules is missing (scripts/install-deps-browser.sh runs npm ci)"
[[ "$(id -u)" -eq 0 ]] || skip "network namespaces need root"

# Unset: the default build's peer, if any. Set but empty (ctest, when the
# build has no rendezvous-peer): none.
if [[ -z "${RENDEZVOUS_PEER+set}" && -x "$ROOT/build/client/rendezvous-peer" ]]; then
  RENDEZVOUS_PEER="$ROOT/build/client/rendezvous-peer"
fi

# Namespaces of earlier runs of this script that were killed before their
# cleanup could run (SIGKILL): named after a PID that no longer exists.
for old in $(ip netns list 2>/dev/null | grep -oE '^rdv-browser-[0-9]+-[0-9]+'); do
  owner="${old#rdv-browser-}"; owner="${owner%%-*}"
  if ! kill -0 "$owner" 2>/dev/null; then
    ip netns del "$old" 2>/dev/null && say "deleted stale namespace $old (its run is gone)"
  fi
done

NS="rdv-browser-$$-$RANDOM"
SERVER_PID=""
NS_MADE=0
SERVER_LOG=""
WEB_TMP=""

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    # The server drains and exits within its drain timeout; do not wait longer.
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  [[ -n "$WEB_TMP" ]] && rm -rf "$WEB_TMP"
  if ((NS_MADE)); then
    # Anything the tests left running in the namespace was started by them
    # (the node process group has exited by now); the namespace goes away.
    ip netns del "$NS" 2>/dev/null || say "could not delete network namespace $NS"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace (ip netns add): not permitted here"
NS_MADE=1
ip -n "$NS" link set lo up &&
  ip -n "$NS" link add c0 type veth peer name c1 &&
  ip -n "$NS" addr add "$ADDR/24" dev c0 &&
  ip -n "$NS" link set c0 up &&
  ip -n "$NS" link set c1 up &&
  ip -n "$NS" route add default dev c0 ||
  skip "cannot set up the namespace's veth (no veth support?)"

mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png "$ARTIFACTS"/server.log
SERVER_LOG="$ARTIFACTS/server.log"

SERVER_ARGS=(--listen "$ADDR:0" --log-level info)
if [[ "${RDV_SERVE_SOURCE:-0}" == 1 ]]; then
  WEB_TMP="$(mktemp -d /tmp/rdv-web.XXXXXX)"
  cp -R "$ROOT/web/." "$WEB_TMP/" && cp "$ROOT/client/js/rendezvous.js" "$WEB_TMP/rendezvous.js" ||
    { say "cannot copy web/ to $WEB_TMP"; exit 1; }
  SERVER_ARGS+=(--web-root "$WEB_TMP")
  say "serving the page from the source tree (a copy in $WEB_TMP)"
fi

# `ip netns exec` execs the server: $! is the server's own PID.
ip netns exec "$NS" "$SERVER" "${SERVER_ARGS[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Wait for the readiness line (a deadline, not a guess: we poll the log).
PORT=""
for _ in $(seq 1 300); do
  PORT="$(grep -m1 -oE "listening on $ADDR:[0-9]+" "$SERVER_LOG" 2>/dev/null | sed -E 's/.*://')"
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if [[ -z "$PORT" ]]; then
  say "the server did not start within 15 s:"
  cat "$SERVER_LOG" >&2
  exit 1
fi
say "server $SERVER (pid $SERVER_PID) on $ADDR:$PORT in namespace $NS"

# Options (--test-name-pattern=...) go to node's test runner; the default
# files are every *.test.mjs here.
node_opts=() files=()
for a in "$@"; do
  if [[ "$a" == --* ]]; then node_opts+=("$a"); else files+=("$a"); fi
done
((${#files[@]})) || files=("$HERE"/*.test.mjs)

ip netns exec "$NS" env \
  RDV_HTTP="http://$ADDR:$PORT" \
  RDV_ARTIFACTS="$ARTIFACTS" \
  CHROMIUM="$CHROMIUM" \
  RENDEZVOUS_PEER="${RENDEZVOUS_PEER:-}" \
  node --test --test-concurrency=1 --test-reporter=spec "${node_opts[@]}" "${files[@]}"
rc=$?
if ((rc != 0)); then
  say "tests failed (exit $rc); last lines of the server log ($SERVER_LOG):"
  tail -n 40 "$SERVER_LOG" >&2
fi
say "screenshots in $ARTIFACTS"
exit "$rc"
