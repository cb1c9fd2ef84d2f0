#!/usr/bin/env bash
# Installs everything Rendezvous needs to build and test, on Debian 12.
#
#   scripts/install-deps.sh
#
# Idempotent and non-interactive (safe with CI=true and no stdin). Checks the
# Debian packages with dpkg-query first and runs apt only when one is missing,
# so a second run takes about a second. Uses sudo only when not root.
# Then installs the integration tests' npm packages (tests/integration) from
# package-lock.json with `npm ci`, skipped when node_modules already matches
# the lock file and the node version.
#
# Node.js: an existing `node` (e.g. Node 20 from NodeSource) is kept as it is;
# Debian's nodejs and npm are installed only when there is no node at all.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=install-deps
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

PACKAGES=(
  build-essential               # g++, make, libc headers
  cmake                         # build system (>= 3.25)
  ninja-build                   # generator used by scripts/build.sh
  pkg-config
  git
  libboost-dev                  # Boost.Beast / Boost.Asio (header-only)
  libboost-program-options-dev  # required by the top-level CMakeLists
  nlohmann-json3-dev            # config + server messages
  libspdlog-dev                 # logging
  doctest-dev                   # unit tests
  prometheus-cpp-dev            # /metrics
  libcli11-dev                  # command-line flags
  libssl-dev                    # OpenSSL (TLS, HMAC)
  libjwt-dev                    # JWT HS256 join tokens (found with pkg-config)
  clang                         # fuzz targets (libFuzzer)
  libclang-rt-14-dev            # clang's sanitizer + libFuzzer runtimes
  clang-format                  # scripts/format.sh
  procps                        # ps, used by the integration tests
  curl                          # HTTP checks in docs and tests
  openssl                       # test certificates (wss tests)
  iproute2                      # network namespaces (TURN and browser tests)
)
if ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)        # integration tests (node --test, ws)
fi

ensure_packages "${PACKAGES[@]}"

# npm packages of the integration tests.
npm_ci_dir "$ROOT/tests/integration"
npm_ci_dir "$ROOT/tests/storm"

# The parts with heavier dependencies have their own scripts (each idempotent):
# GStreamer for rendezvous-peer, coturn for the TURN test, Chromium for the
# browser tests. RENDEZVOUS_DEPS=core skips them.
if [[ "${RENDEZVOUS_DEPS:-all}" != core ]]; then
  for extra in scripts/install-deps-client.sh tests/turn/install.sh scripts/install-deps-browser.sh; do
    if [[ -x "$ROOT/$extra" ]]; then
      log "running $extra"
      "$ROOT/$extra"
    fi
  done
fi
log "done"
