#!/usr/bin/env bash
# Installs what building and running the server (rendezvous-server) needs on
# Debian 12, and nothing else: a C++ compiler, CMake + Ninja and the
# libraries' -dev packages. scripts/run-server.sh runs this; the test
# toolchain (Node, clang, GStreamer, Chromium, coturn, ...) is
# scripts/install-deps.sh, which runs this first.
#
#   scripts/install-deps-server.sh
#
# Idempotent and non-interactive: checks the packages with dpkg-query first
# and runs `apt-get update` + `apt-get install` only when one is missing (a
# second run takes well under a second). Uses sudo only when not root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=install-deps-server
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

# Keep in step with the build stage of docker/Dockerfile (the same build).
SERVER_PACKAGES=(
  g++                           # C++20 compiler (GCC 12)
  cmake                         # build system (>= 3.25)
  ninja-build                   # generator used by scripts/build.sh
  pkg-config                    # finds libjwt
  libboost-dev                  # Boost.Beast / Boost.Asio (header-only)
  nlohmann-json3-dev            # config + server messages
  libspdlog-dev                 # logging
  prometheus-cpp-dev            # /metrics
  libcli11-dev                  # command-line flags
  libssl-dev                    # OpenSSL (TLS, HMAC)
  libjwt-dev                    # JWT HS256 join tokens
  libhiredis-dev                # RESP encoder/decoder for the Redis backplane
)

ensure_packages "${SERVER_PACKAGES[@]}"
log "done"
