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
LOG_TAG=install-deps-client
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

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

ensure_packages "${PACKAGES[@]}"

# npm packages of the client end-to-end tests (node-datachannel).
npm_ci_dir "$ROOT/tests/client"
log "done"
