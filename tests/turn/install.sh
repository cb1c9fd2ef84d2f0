#!/usr/bin/env bash
# Installs what tests/turn needs, on Debian 12: Debian's coturn (the
# `turnserver` binary; the test runs its own foreground instance inside a
# network namespace; on a machine running systemd the package's own service
# may start, which the test does not need), iproute2, and this folder's npm
# packages from package-lock.json (node-datachannel 0.33.4 prebuilt, ws).
#
#   tests/turn/install.sh
#
# Idempotent and non-interactive: apt runs only when coturn is missing, npm
# only when node_modules does not match the lock file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOG_TAG=turn/install
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

# coturn: the TURN server under test; iproute2: `ip netns` for the peers' namespaces.
ensure_packages coturn iproute2
command -v turnserver >/dev/null || { log "turnserver not found after installing coturn"; exit 1; }

npm_ci_dir "$HERE"
