#!/usr/bin/env bash
# Runs the TURN test (tests/turn/*.test.mjs: Debian's coturn, relay-only
# node-datachannel peers in network namespaces of their own) with node's test
# runner, after checking what it needs:
#
#   tests/turn/run.sh [node --test options...]
#
# Exit status: the test runner's; 77 after one `SKIP: <reason>` line when the
# machine cannot provide a prerequisite (root and network namespaces with veth
# pairs, coturn, node, this folder's npm packages: tests/turn/install.sh), so
# that ctest reports a skip (SKIP_RETURN_CODE 77) instead of a failure.
#
# Environment: RENDEZVOUS_SERVER, the server binary (default:
# build/server/rendezvous-server).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREREQ_TAG=turn
# shellcheck source=tests/lib/prereq.sh
source "$ROOT/tests/lib/prereq.sh"

export RENDEZVOUS_SERVER="${RENDEZVOUS_SERVER:-$ROOT/build/server/rendezvous-server}"
[[ -x "$RENDEZVOUS_SERVER" ]] ||
  { echo "[turn] no server binary at $RENDEZVOUS_SERVER (build it, or set RENDEZVOUS_SERVER)" >&2; exit 1; }
command -v node >/dev/null 2>&1 || skip_test "no node (scripts/install-deps.sh installs it)"
command -v turnserver >/dev/null 2>&1 || skip_test "no turnserver (Debian's coturn: tests/turn/install.sh)"
for pkg in node-datachannel ws; do
  [[ -f "$HERE/node_modules/$pkg/package.json" ]] ||
    skip_test "tests/turn/node_modules/$pkg is missing (tests/turn/install.sh runs npm ci)"
done
if ! why="$(netns_problem)"; then skip_test "$why"; fi

exec node --test --test-concurrency=1 --test-reporter=spec "$@" "$HERE"/*.test.mjs
