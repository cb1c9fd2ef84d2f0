#!/usr/bin/env bash
# Runs the cluster tests (tests/cluster/*.test.mjs: real rendezvous-server
# nodes over a real redis-server on a unix socket of their own), after
# checking what they need:
#
#   tests/cluster/run.sh [node --test options...]
#
# Exit status: the test runner's; 77 after one `SKIP: <reason>` line when
# redis-server, redis-cli, node or the integration tests' npm packages are
# missing (scripts/install-deps.sh installs them all).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREREQ_TAG=cluster
# shellcheck source=tests/lib/prereq.sh
source "$ROOT/tests/lib/prereq.sh"

export RENDEZVOUS_SERVER="${RENDEZVOUS_SERVER:-$ROOT/build/server/rendezvous-server}"
[[ -x "$RENDEZVOUS_SERVER" ]] ||
  { echo "[cluster] no server binary at $RENDEZVOUS_SERVER (build it, or set RENDEZVOUS_SERVER)" >&2; exit 1; }
command -v node >/dev/null 2>&1 || skip_test "no node (scripts/install-deps.sh installs it)"
command -v redis-server >/dev/null 2>&1 || skip_test "no redis-server (Debian's redis-server: scripts/install-deps.sh)"
command -v redis-cli >/dev/null 2>&1 || skip_test "no redis-cli (Debian's redis-tools: scripts/install-deps.sh)"
command -v haproxy >/dev/null 2>&1 || skip_test "no haproxy (Debian's haproxy: scripts/install-deps.sh)"
[[ -f "$ROOT/tests/turn/node_modules/node-datachannel/package.json" ]] ||
  skip_test "tests/turn/node_modules/node-datachannel is missing (tests/turn/install.sh runs npm ci)"
[[ -f "$ROOT/tests/integration/node_modules/ws/package.json" ]] ||
  skip_test "tests/integration/node_modules/ws is missing (scripts/install-deps.sh runs npm ci)"

exec node --test --test-concurrency=1 --test-reporter=spec "$@" "$HERE"/*.test.mjs
