#!/usr/bin/env bash
# Installs everything Rendezvous needs to build and test, on Debian 12
# (scripts/test.sh runs it):
#
#   scripts/install-deps.sh
#
#  1. scripts/install-deps-server.sh: the compiler and the server's libraries
#     (all scripts/run-server.sh needs);
#  2. the test toolchain from Debian: doctest, clang + its sanitizer and
#     libFuzzer runtimes, clang-format, iproute2 (network namespaces), ...;
#  3. Node.js >= 20 (scripts/lib/deps.sh ensure_node: a node >= 20 already on
#     the machine is kept; with none, Debian's nodejs + npm; when that node is
#     older than 20, as Debian 12's 18 is, Node 20 from the npm registry as
#     /usr/local/bin/node);
#  4. the integration and storm tests' npm packages, from package-lock.json
#     with `npm ci` (skipped when node_modules matches the lock file and the
#     node version);
#  5. the parts with heavier dependencies, each its own idempotent script:
#     GStreamer for rendezvous-peer, coturn for the TURN test, Chromium for
#     the browser tests. RENDEZVOUS_DEPS=core skips them.
#
# Idempotent and non-interactive (safe with CI=true and no stdin): apt runs
# only when a package is missing, so a second run takes about a second. Uses
# sudo only when not root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=install-deps
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

"$ROOT/scripts/install-deps-server.sh"

PACKAGES=(
  build-essential               # make, dpkg-dev, libc headers (beyond g++)
  git
  doctest-dev                   # unit tests
  clang                         # fuzz targets (libFuzzer)
  libclang-rt-14-dev            # clang's sanitizer + libFuzzer runtimes
  clang-format                  # scripts/format.sh
  procps                        # ps, used by the integration tests
  curl                          # HTTP checks in docs and tests
  openssl                       # test certificates (wss tests)
  iproute2                      # network namespaces (TURN and browser tests)
  redis-server                  # the backplane of the cluster tests
  redis-tools                   # redis-cli, for the cluster tests
  haproxy                       # load balancer in front of two nodes (cluster tests)
)
ensure_packages "${PACKAGES[@]}"

# Node >= 20 and npm (integration, TURN, browser, client and storm tests).
ensure_node

# npm packages of the integration and storm tests.
npm_ci_dir "$ROOT/tests/integration"
npm_ci_dir "$ROOT/tests/storm"

if [[ "${RENDEZVOUS_DEPS:-all}" != core ]]; then
  for extra in scripts/install-deps-client.sh tests/turn/install.sh scripts/install-deps-browser.sh; do
    if [[ -x "$ROOT/$extra" ]]; then
      log "running $extra"
      "$ROOT/$extra"
    fi
  done
fi
log "done"
