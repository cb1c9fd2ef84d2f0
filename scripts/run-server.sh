#!/usr/bin/env bash
# Quick start: installs dependencies, builds, and runs the server.
#
#   scripts/run-server.sh [server flags...]
#
# With no flags the server listens on 0.0.0.0:8080 (its defaults). Flags are
# passed to build/server/rendezvous-server unchanged, e.g.
#   scripts/run-server.sh --listen 127.0.0.1:9000 --log-level debug
#   scripts/run-server.sh --help
# Your working directory is kept, so relative paths (e.g. --config FILE) are
# relative to where you ran this.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" build >&2

exec "$ROOT/build/server/rendezvous-server" "$@"
