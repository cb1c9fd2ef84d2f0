#!/usr/bin/env bash
# Storm test: one well-behaved pair keeps relaying while hundreds of hostile
# connections hit the server; the pair must not be slowed down much, the
# server must stay up, refuse or close every hostile connection the way
# docs/protocol.md says, and give its memory back afterwards.
#
#   tests/storm/run.sh [storm.mjs options]     (ctest: storm; ~45 s)
#
# What it does (storm.mjs has the phases, attack.mjs the hostile kinds):
#   - starts the real server on 127.0.0.1:0 with small limits (below), and
#     waits for its "listening on" log line;
#   - measures one pair's relay latency unloaded: rendezvous-bench, in its own
#     process, 2 peers at 400 msgs/s (200 B frames) for 8 s;
#   - 3 warm-up waves of hostile connections, then the server's RSS
#     (/proc/PID/status VmRSS) once it holds nothing: "before";
#   - the storm: a wave a second for ~14 s, 144 connections a wave spread
#     over the second (~2,000 in all, ~300 at once): malformed JSON and other
#     bad envelopes, binary frames, non-UTF-8 text, oversize frames, floods
#     past the rate limit, never-reading consumers sent ~7 MiB of 60 KB
#     frames each, invalid room names, WebSockets that never answer pings,
#     half HTTP requests, silent TCP connections; meanwhile the same pair is
#     measured again for 12 s, and RSS and /healthz are sampled;
#   - checks that every hostile connection got what the protocol says (the
#     counts by close code are printed), that /healthz answered throughout,
#     that RSS is back within 10% of "before" (polled every 200 ms, 30 s
#     deadline), measures the pair unloaded once more, and finally that the
#     server drains and exits 0 on SIGTERM.
#
# The latency threshold. The pair's p99 during the storm must stay under
#     max(2 x reference, reference + max(1 ms, 2 x storm send lag p99))
# where reference = the larger p99 of the two unloaded runs (before and after
# the storm) and "send lag" is how late the load generator itself woke up to
# send during the storm (scheduler noise, measured in the same run); a storm
# over the limit is measured once more (a second round, ~35 s) and the test
# fails only if that one is over its limit too. The server's own CPU during
# the storm must stay under half a core (measured: 10-11%), so that a server
# burning CPU on hostile input cannot hide behind the noise allowance. Why:
#   - On a shared 2-core box the unloaded loopback p99 is noisy: ~150-400 us
#     when the machine is quiet, 2-3.5 ms while a compiler runs next to us
#     (then it is mostly scheduler delay: the bench's own send lag, printed in
#     the summary, grows the same way). Measuring the reference before and
#     after the storm brackets the background load of the storm's period; a
#     single "before" taken in a quiet moment would fail the test whenever a
#     build starts during the storm. The confirming round covers a build that
#     runs during the storm only.
#   - 2x alone is too tight when the reference is ~200 us: the server, the
#     bench and the attacker share 2 cores, so the storm's CPU (the server's
#     own work on it, and the kernel copying the slow consumers' megabytes)
#     delays the bench's wakeups by hundreds of us at p99 (storm p99 measured
#     at 0.6-0.9 ms against references of 0.2-0.4 ms on a quiet machine).
#     The 1 ms floor absorbs that on a quiet box. On a busier one (CI: storm
#     p99 1.6-1.8 ms with the bench's own send lag at 1.0-1.2 ms p99 and the
#     server at 10% of a core) the noise is larger than 1 ms, so the
#     allowance follows the measured send lag. It is still far below what a real fault
#     looks like: a peer blocked behind a slow consumer, a server thread busy
#     with an oversize frame or a flood, or a stall on a full socket shows
#     up as tens of ms or as lost messages (which fail the test on their own:
#     the pair must lose, reorder, misroute or be refused nothing).
#   - The attacker process runs at nice 10, the slow consumers' feeders are
#     paced (4 frames every 30 ms) and each wave's connections are spread
#     over its second: on a real deployment attackers are on other machines;
#     here their CPU would compete with the server and the bench and be
#     counted as server latency. The server's own work on the hostile
#     traffic is still measured.
#   - The pair's rate (400 msgs/s over 2 peers) is under the per-connection
#     rate limit (500/s) and gives 3,200 samples unloaded and 4,800 in the
#     storm, so the p99 is the 32nd-48th worst sample, not a single outlier.
#
# The server runs one I/O thread: every hostile connection then shares the
# pair's event loop, the harshest case for head-of-line blocking; and the
# second core stays for the bench and the attacker. With 2 threads on 2
# cores the server's bursts take both cores and the storm p99 (about 1.1-1.3
# ms against 0.6 ms with one thread, quiet machine) measures co-location
# more than the server.
#
# The server's limits are small so that the storm reaches them at once:
# handshake timeout 1.5 s, ping every 1 s (silence for 2 s drops), rate limit
# 500/s burst 200 and 10 strikes, outbound queue 256 KiB, held messages
# 16 / 64 KiB, reconnect grace 2 s, 64 KiB frames. The outbound queue keeps
# its default of 256 messages: it must hold a rate-limit burst (200), or a
# well-behaved sender catching up after a scheduling hiccup (the bench sends
# what is due all at once) gets its fast partner dropped as a slow consumer.
#
# Environment:
#   RENDEZVOUS_SERVER  the server binary (default: build/server/rendezvous-server)
#   RENDEZVOUS_BENCH   the load generator (unset: build/bench/rendezvous-bench,
#                      built when RENDEZVOUS_BENCH=ON, the default; set and
#                      empty: none, the test is skipped)
#   STORM_KEEP_LOG=1   keep the server log even when the test passes
#   STORM_SERVER_THREADS  the server's I/O threads (default 1, see above)
#   STORM_SANITIZED=1  the binaries are an ASan/UBSan build (ctest sets it
#                      there): the p99 and RSS checks are printed, not
#                      counted (ASan's quarantine holds freed memory and its
#                      instrumentation changes the timing); every other
#                      check counts
#
# Exit status: 0 pass, 1 fail, 77 skipped (node, the npm package ws or
# rendezvous-bench missing: scripts/install-deps.sh runs `npm ci` here).
# Only loopback (hostile connections from 127.0.1.1-32, see attack.mjs); every process is ended by its own PID; nothing is left
# running (trap EXIT).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SERVER="${RENDEZVOUS_SERVER:-$ROOT/build/server/rendezvous-server}"
# Unset: the default build's. Set but empty (ctest, when the build has no
# rendezvous-bench, e.g. -DRENDEZVOUS_BENCH=OFF): none, skip.
BENCH="${RENDEZVOUS_BENCH-$ROOT/build/bench/rendezvous-bench}"

say() { printf '[storm] %s\n' "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }

[[ -x "$SERVER" ]] || { say "no server binary at $SERVER (build it, or set RENDEZVOUS_SERVER)"; exit 1; }
command -v node >/dev/null 2>&1 || skip "no node"
[[ -f "$HERE/node_modules/ws/package.json" ]] ||
  skip "tests/storm/node_modules is missing (scripts/install-deps.sh runs npm ci there)"
[[ -n "$BENCH" && -x "$BENCH" ]] ||
  skip "no rendezvous-bench${BENCH:+ at $BENCH} (configure with -DRENDEZVOUS_BENCH=ON, or set RENDEZVOUS_BENCH)"
[[ -r /proc/self/status ]] || skip "no /proc (RSS is read from /proc/PID/status)"

SERVER_ARGS=(
  --listen 127.0.0.1:0
  --threads "${STORM_SERVER_THREADS:-1}"
  --log-level info
  --handshake-timeout-ms 1500
  --ping-interval-ms 1000
  --max-message-bytes 65536
  --rate-limit-per-s 500
  --rate-limit-burst 200
  --rate-limit-strikes 10
  --outbound-max-messages 256
  --outbound-max-bytes 262144
  --held-max-messages 16
  --held-max-bytes 65536
  --reconnect-grace-ms 2000
  --drain-timeout-ms 3000
)

WORK="$(mktemp -d /tmp/rdv-storm.XXXXXX)"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
NODE_PID=""
KEEP_LOG="${STORM_KEEP_LOG:-0}"

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    # storm.mjs ends its own children (bench, attacker) on SIGTERM.
    kill -TERM "$NODE_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$NODE_PID" 2>/dev/null
    wait "$NODE_PID" 2>/dev/null
  fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if ((rc != 0)) || [[ "$KEEP_LOG" == 1 ]]; then
    say "server log kept in $SERVER_LOG"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The caller's RENDEZVOUS_* settings must not change what this test configures.
env_args=()
while IFS='=' read -r name _; do
  [[ "$name" == RENDEZVOUS_* ]] && env_args+=(-u "$name")
done < <(env)

env "${env_args[@]}" "$SERVER" "${SERVER_ARGS[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Wait for the readiness line (polling the log, with a deadline).
PORT=""
for _ in $(seq 1 200); do
  PORT="$(grep -a -m1 -oE 'listening on 127\.0\.0\.1:[0-9]+' "$SERVER_LOG" 2>/dev/null | sed -E 's/.*://')"
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if [[ -z "$PORT" ]]; then
  say "the server did not log 'listening on' within 10 s:"
  cat "$SERVER_LOG" >&2
  exit 1
fi
say "server $SERVER (pid $SERVER_PID) on 127.0.0.1:$PORT; bench $BENCH"

# In the background + wait, so that a TERM/INT reaches the trap at once.
SANITIZED_FLAG=()
[[ "${STORM_SANITIZED:-0}" == 1 ]] && SANITIZED_FLAG=(--sanitized)
node "$HERE/storm.mjs" "${SANITIZED_FLAG[@]}" --port "$PORT" --server-pid "$SERVER_PID" --bench "$BENCH" --server-log "$SERVER_LOG" "$@" -- "${SERVER_ARGS[@]}" &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=""

# The server must still be there, and drain and exit 0 on SIGTERM.
if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ "$(ps -o stat= -p "$SERVER_PID" 2>/dev/null)" == Z* ]]; then
  say "FAIL: the server process is gone"
  rc=1
else
  kill -TERM "$SERVER_PID"
  stopped=0
  for _ in $(seq 1 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ "$(ps -o stat= -p "$SERVER_PID" 2>/dev/null)" == Z* ]]; then
      stopped=1
      break
    fi
    sleep 0.05
  done
  if ((stopped)); then
    wait "$SERVER_PID"
    code=$?
    SERVER_PID=""
    if ((code != 0)); then
      say "FAIL: the server exited with $code on SIGTERM"
      rc=1
    fi
  else
    say "FAIL: the server did not exit within 5 s of SIGTERM"
    rc=1
  fi
fi

if ((rc != 0)); then
  say "last lines of the server log:"
  tail -n 30 "$SERVER_LOG" >&2
fi
exit "$rc"
