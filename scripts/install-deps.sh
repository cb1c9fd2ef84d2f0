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
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-deps] %s\n' "$*" >&2; }

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  log "not root and no sudo: cannot install packages"
  SUDO=(false)
fi

# What build + tests need (one line each, with what for).
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

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} Debian packages present; skipping apt"
else
  log "missing: ${missing[*]}"
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  ok=0
  for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${apt_opts[@]}" update </dev/null; then ok=1; break; fi
    log "apt-get update failed (attempt $attempt); retrying"
    sleep $((attempt * 5))
  done
  ((ok)) || { log "apt-get update failed"; exit 1; }
  ok=0
  for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null; then
      ok=1; break
    fi
    log "apt-get install failed (attempt $attempt); retrying"
    sleep $((attempt * 5))
  done
  ((ok)) || { log "apt-get install failed"; exit 1; }
  still=()
  for pkg in "${missing[@]}"; do is_installed "$pkg" || still+=("$pkg"); done
  if ((${#still[@]})); then
    log "still missing after apt-get install: ${still[*]}"
    exit 1
  fi
  log "installed: ${missing[*]}"
fi

# npm packages of the integration tests.
INTEGRATION="$ROOT/tests/integration"
if [[ -f "$INTEGRATION/package-lock.json" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "node is $(command -v node) but npm is missing; install the npm that goes with it"
    exit 1
  fi
  stamp="$INTEGRATION/node_modules/.rendezvous-deps"
  want="$(node --version) $(sha256sum "$INTEGRATION/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "tests/integration/node_modules matches package-lock.json; skipping npm ci"
  else
    log "npm ci in tests/integration"
    (cd "$INTEGRATION" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null)
    printf '%s\n' "$want" >"$stamp"
  fi
fi
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
