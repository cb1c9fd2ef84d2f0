#!/usr/bin/env bash
# Quick start: installs what the server needs, builds it, and runs it.
#
#   scripts/run-server.sh [server flags...]
#
# With no flags the server listens on 0.0.0.0:8080 (its defaults). Flags are
# passed to build/server/rendezvous-server unchanged, e.g.
#   scripts/run-server.sh --listen 127.0.0.1:9000 --log-level debug
#   scripts/run-server.sh --help
# Your working directory is kept, so relative paths (e.g. --config FILE) are
# relative to where you ran this.
#
# Only the server: scripts/install-deps-server.sh (compiler, CMake, the
# server's libraries; no Node, clang, GStreamer or browser) and the
# rendezvous-server target, configured without tests, bench tools or the C++
# client (scripts/test.sh installs and builds the rest).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$ROOT/scripts/install-deps-server.sh"
"$ROOT/scripts/build.sh" build -DRENDEZVOUS_TESTS=OFF -DRENDEZVOUS_BENCH=OFF -DRENDEZVOUS_CLIENT=OFF \
  --target rendezvous-server >&2

exec "$ROOT/build/server/rendezvous-server" "$@"
