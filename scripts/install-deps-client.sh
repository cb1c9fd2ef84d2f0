#!/usr/bin/env bash
# Installs what the C++ client peer (client/, rendezvous-peer) and its tests
# need on Debian 12, on top of scripts/install-deps.sh:
#
#   scripts/install-deps-client.sh
#
# - GStreamer webrtcbin (runtime + headers): the WebRTC engine of
#   rendezvous-peer. Without these, client/ still builds the signaling library
#   and the negotiation unit tests, and the end-to-end tests skip themselves.
# - the npm packages of tests/client (node-datachannel, a libdatachannel peer),
#   from tests/client/package-lock.json with `npm ci`.
#
# Idempotent and non-interactive: checks the packages with dpkg-query first and
# runs `apt-get update` + `apt-get install` only when one is missing (a second
# run takes about a second). Uses sudo only when not root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-deps-client] %s\n' "$*" >&2; }

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  log "not root and no sudo: cannot install packages"
  SUDO=(false)
fi

PACKAGES=(
  pkg-config                         # finds GStreamer at configure time
  libcli11-dev                       # rendezvous-peer's flags (header-only)
  gstreamer1.0-plugins-base          # runtime: core elements
  gstreamer1.0-plugins-bad           # runtime: webrtcbin, sctp, dtls
  gstreamer1.0-nice                  # runtime: ICE (libnice element)
  libgstreamer1.0-dev                # build: gstreamer-1.0
  libgstreamer-plugins-base1.0-dev   # build: gstreamer-sdp-1.0
  libgstreamer-plugins-bad1.0-dev    # build: gstreamer-webrtc-1.0 (pulls ~700 MB)
)

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

# npm packages of the client end-to-end tests (node-datachannel).
CLIENT_TESTS="$ROOT/tests/client"
if [[ -f "$CLIENT_TESTS/package-lock.json" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: run scripts/install-deps.sh first (it installs node + npm)"
    exit 1
  fi
  stamp="$CLIENT_TESTS/node_modules/.rendezvous-deps"
  want="$(node --version) $(sha256sum "$CLIENT_TESTS/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "tests/client/node_modules matches package-lock.json; skipping npm ci"
  else
    log "npm ci in tests/client"
    (cd "$CLIENT_TESTS" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null)
    printf '%s\n' "$want" >"$stamp"
  fi
fi
log "done"
